"""Online capacity calibration: how much heavier the real load weighs than the plan's capacity model says. Pure."""

from __future__ import annotations

import math
from dataclasses import dataclass

from llmop.autoscale.capacity import CapacityModel, itl_ms

# The learned factor multiplies the offered load before it meets the capacity model: 1.5 means one replica
# serves two thirds of what the plan says. Bounded: a model off by more than this is a plan to fix, not to learn.
# Learning only corrects optimism (the factor never goes below 1): in the benchmark grid, letting it also go
# below 1 (to x0.5) was worse or equal in every spec and GPU speed (BENCHMARKS.md, `calibration-both-ways`),
# since the windows that say "lighter than planned" come from the flat part of the latency curve, before its
# cliff.
MIN_LOAD_SCALE = 1.0
MAX_LOAD_SCALE = 3.0


@dataclass(frozen=True)
class CalibrationSettings:
    """How fast and from which readings the factor is learned."""

    percentile: float | None = None  # the latency the readings give: the SLO's percentile (None: the mean)
    half_life_s: float = 90.0  # an informative reading halves the weight of what was learned before in this time
    tick_s: float = 15.0  # the autoscaler's interval: one reading per tick
    informative_share: float = 0.3  # a reading teaches only above floor + this share of (target - floor) ...
    max_latency_factor: float = 2.0  # ... and below target x this (beyond, the batch is at its cap: saturated)
    event_move: float = 0.15  # an Event when the factor moved by more than this since the last one
    # A valid window that teaches nothing (the flat part of the curve) pulls the factor back toward the plan (1.0)
    # at this half-life, so a factor learned from a transient (a queue draining into the window) unwinds. 30 min:
    # on the quick grid as good as none (34 cells within a point either way) for 2 % fewer GPU-hours; 10 min lost
    # 4 cells and 1.7 SLO-minute points (BENCHMARKS.md, "the factor's decay"). None: no decay.
    decay_half_life_s: float | None = 1800.0
    # A window on the flat part of the curve teaches no load factor, but it shows the step time: a GPU slower than
    # planned raises the floor itself. Its mean inter-token time over the model's mean beyond this ratio teaches a
    # step-time factor (every cost of the model times it), at `step_weight` of a full reading. 1.1: on the grid's
    # L4 and L40S specs such windows read a median 0.86-0.90x the model at the planned speed (p95 0.99-1.06x) and
    # 1.17x with a 20 % slower GPU (p5 1.11-1.14x); the 70B H100 spec reads 1.12x at the planned speed, a model
    # ~12 % optimistic there, which is learned (BENCHMARKS.md item 11). None: no step factor.
    step_dead_band: float | None = 1.1
    step_weight: float = 0.5
    # A queue on every replica shows full batches only when a limit is in sight: the KV cache at least this full
    # (the engine's gauge) or the running sequences at this share of max-num-seqs. Without that, a queue is requests
    # waiting for the step's token budget behind a long prompt's prefill, not a batch limit. None: any such queue
    # teaches the limit (as for an engine without the gauge).
    batch_full_share: float | None = 0.9


@dataclass(frozen=True)
class Reading:
    """One window's evidence: the per-replica load, the latency percentile it gave and its mean (the histogram's
    sum over its count: exact whatever the buckets)."""

    rps_per_replica: float
    prompt_tokens: float
    output_tokens: float
    latency_ms: float
    mean_ms: float | None = None


def load_scale_sample(
    model: CapacityModel, reading: Reading, target_ms: float, floor_ms: float, settings: CalibrationSettings
) -> tuple[float, float] | None:
    """(factor, weight) this reading implies, or None when it says nothing about capacity.

    The model's latency curve keeps its shape and is stretched along the load axis: the factor `s` solves
    `model(rps x s) = observed`. That absorbs a slower GPU, a wrong per-token cost and the gap between the
    model's mean and the SLO's percentile alike. Near the floor the curve is flat (any `s` fits), so a reading
    counts only where the observed latency or the model's own figure stands clearly above the floor; the
    weight grows with that distance."""
    gap = target_ms - floor_ms
    if reading.rps_per_replica <= 0 or gap <= 0 or not math.isfinite(reading.latency_ms):
        return None
    if reading.latency_ms > target_ms * settings.max_latency_factor:
        return None
    modelled = itl_ms(model, reading.rps_per_replica, reading.prompt_tokens, reading.output_tokens, settings.percentile)
    lift = max(reading.latency_ms, min(modelled, target_ms * settings.max_latency_factor)) - floor_ms
    share = lift / gap
    if share < settings.informative_share:
        return None
    weight = min(1.0, (share - settings.informative_share) / (1.0 - settings.informative_share) + 0.25)
    return _solve(model, reading, settings.percentile), weight


def _solve(model: CapacityModel, reading: Reading, percentile: float | None) -> float:
    """`s` in [MIN, MAX] with model latency at `rps x s` equal to the observed latency (bisection on log s)."""

    def latency(scale: float) -> float:
        return itl_ms(model, reading.rps_per_replica * scale, reading.prompt_tokens, reading.output_tokens, percentile)

    low, high = math.log(MIN_LOAD_SCALE), math.log(MAX_LOAD_SCALE)
    if latency(math.exp(low)) >= reading.latency_ms:
        return MIN_LOAD_SCALE
    if latency(math.exp(high)) <= reading.latency_ms:
        return MAX_LOAD_SCALE
    for _ in range(40):
        middle = (low + high) / 2
        if latency(math.exp(middle)) < reading.latency_ms:
            low = middle
        else:
            high = middle
    return math.exp((low + high) / 2)


def updated_scale(previous: float | None, sample: float, weight: float, settings: CalibrationSettings) -> float:
    """Exponential moving average in log space (a factor 2 off and a factor 1/2 off weigh alike), clamped."""
    prior = 1.0 if previous is None else previous
    alpha = weight * (1.0 - 0.5 ** (settings.tick_s / settings.half_life_s))
    value = math.exp((1 - alpha) * math.log(prior) + alpha * math.log(sample))
    return min(MAX_LOAD_SCALE, max(MIN_LOAD_SCALE, value))


def updated_step_scale(
    previous: float | None,
    model: CapacityModel,
    reading: Reading,
    target_ms: float,
    floor_ms: float,
    settings: CalibrationSettings,
) -> float | None:
    """The step-time factor after this window. Only a window where the model's curve is flat (its percentile
    within `informative_share` of the room above the floor) speaks: there no load factor explains a latency above
    the model's, a slower step does. The evidence is the window's mean inter-token time against the model's mean,
    not the percentile: a mean is exact whatever the histogram's buckets (a percentile in a coarse first bucket
    is only an upper bound), and it does not sit among the few steps that carry a prefill chunk. Over the model's
    mean beyond `step_dead_band`, it is learned as `updated_scale` learns the load factor, at `step_weight`; under
    the model's, learned the same way (toward the plan, clamped there); more than `max_latency_factor` over it is a
    burst, not a step time, and like the dead band keeps the factor. The load factor is then read against the model
    at the new step time."""
    mean = reading.mean_ms
    if settings.step_dead_band is None or reading.rps_per_replica <= 0 or mean is None or not math.isfinite(mean):
        return previous
    gap = target_ms - floor_ms
    load, prompt, output = reading.rps_per_replica, reading.prompt_tokens, reading.output_tokens
    at_percentile = itl_ms(model, load, prompt, output, settings.percentile)
    modelled = itl_ms(model, load, prompt, output)
    if gap <= 0 or not math.isfinite(at_percentile) or not math.isfinite(modelled) or modelled <= 0:
        return previous
    if (at_percentile - floor_ms) / gap >= settings.informative_share:
        return previous
    ratio = mean / modelled
    if ratio > settings.max_latency_factor:  # a burst or a queue draining through the window, not a step time
        return previous
    if ratio < 1.0:  # faster than the plan: learned the same way, toward the ratio, clamped at the plan
        return None if previous is None else updated_scale(previous, ratio, settings.step_weight, settings)
    if ratio <= settings.step_dead_band:
        return previous
    return updated_scale(previous, ratio, settings.step_weight, settings)


def decayed_scale(previous: float | None, settings: CalibrationSettings) -> float | None:
    """The factor one uninformative tick later: back toward the plan (1.0) in log space, at `decay_half_life_s`."""
    if previous is None or settings.decay_half_life_s is None:
        return previous
    return math.exp(math.log(previous) * 0.5 ** (settings.tick_s / settings.decay_half_life_s))


def moved(reported: float | None, scale: float, settings: CalibrationSettings) -> bool:
    """Whether the factor moved by more than `event_move` since it was last announced (the plan: 1.0)."""
    base = 1.0 if reported is None else reported
    return abs(scale / base - 1.0) > settings.event_move


def capacity_rps(
    model: CapacityModel, scale: float, prompt: float, output: float, target_ms: float, percentile: float | None = None
) -> float:
    """Requests/s one replica serves with its mean ITL at `target_ms`, by the model with the load times `scale`."""
    low, high = 0.0, 1.0
    while itl_ms(model, high, prompt, output, percentile) <= target_ms and high < 1e6:
        low, high = high, high * 2
    for _ in range(40):
        middle = (low + high) / 2
        if itl_ms(model, middle, prompt, output, percentile) <= target_ms:
            low = middle
        else:
            high = middle
    return low / scale
