"""The scaling policy: (config, state, observation, replicas, now) -> Decision. Pure and deterministic."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from llmop.api.spec import AutoscalingSpec, DecodeLatencySLO, TimeToFirstTokenSLO
from llmop.api.times import parse_rfc3339, rfc3339
from llmop.autoscale import calibration
from llmop.autoscale.calibration import CalibrationSettings
from llmop.autoscale.capacity import CapacityModel, itl_ms, replicas_for
from llmop.autoscale.metrics import Observation
from llmop.catalog.versions import parse_version
from llmop.engines import buckets_for
from llmop.engines.base import bucket_around
from llmop.plan.types import Plan

Direction = Literal["up", "down", "hold"]


@dataclass(frozen=True)
class PolicyConfig:
    """Targets and limits of one LLMDeployment (build it with `from_plan`)."""

    target_ms: float
    percentile: float
    min_replicas: int
    max_replicas: int
    scale_up_stabilization_s: float = 30.0
    scale_down_stabilization_s: float = 300.0
    tolerance: float = 0.1
    capacity_per_replica: int | None = None  # sequences one replica runs within the SLO (plan.max_concurrency_at_slo)
    decode_floor_ms: float = 0.0
    min_samples: float = 200.0  # tokens in the window below which the latency is not judged
    window_s: float = 120.0  # the SLO window: after a scale step, latency is re-judged only on data after it
    max_staleness_s: float = 180.0
    scale_down_step_s: float = 60.0  # between successive down steps (the first one waits the full window)
    fast_down_step_s: float = 15.0  # ... while the load plus `fast_down_margin` fits one fewer (large headroom)
    fast_down_margin: float = 0.25
    capacity_model: CapacityModel | None = None  # Little's law over the decode model, at the observed lengths
    startup_s: float = 0.0  # the plan's start-up estimate: how far ahead a load trend is projected
    trend_span_s: float = 60.0  # the request-rate trend is a slope between samples at least this far apart
    max_trend_share: float = 0.25  # a trend adds at most this share of the current rate (a step is not a trend)
    ttft_target_ms: float | None = None  # spec.slo.timeToFirstToken: pressure while its percentile is above
    ttft_percentile: float | None = None
    coarse_edge_ms: float | None = None  # the target is inside a histogram bucket: judged at the edge below it
    flap_hold_s: float = 900.0  # after a scale-in had to be undone, no scale-in below the restored count this long
    queue_per_replica: float = 1.0  # waiting requests per ready replica that are pressure on their own
    calibration: CalibrationSettings | None = field(default_factory=CalibrationSettings)  # None: the plan's model as is
    percentile_model: bool = True  # the capacity model predicts the SLO's percentile (prefill steps), not the mean
    share_rule: bool = True  # size and guard by the share of tokens above the SLO's edge (its error budget)
    max_share_factor: float = 2.0  # a scale-up sized by that share at most doubles the ready replicas (HPA's default)
    share_pressure: bool = True  # more than `slow_budget` above the edge is pressure before the percentile crosses

    @property
    def slow_budget(self) -> float:
        """The share of tokens allowed above the SLO, inside the tolerance band (p95: 5 % x 0.9 = 4.5 %)."""
        return (1.0 - self.percentile / 100.0) * (1.0 - self.tolerance)

    @property
    def model_percentile(self) -> float | None:
        return self.percentile if self.percentile_model else None

    @classmethod
    def from_plan(
        cls, plan: Plan, slo: DecodeLatencySLO, scaling: AutoscalingSpec, ttft: TimeToFirstTokenSLO | None = None
    ) -> PolicyConfig:
        """From an accepted `Plan` plus the spec's SLOs and stabilization windows."""
        return cls(
            ttft_target_ms=None if ttft is None else float(ttft.target_ms),
            coarse_edge_ms=coarse_edge_ms(plan, float(slo.target_ms)),
            ttft_percentile=None if ttft is None else float(ttft.percentile),
            target_ms=float(slo.target_ms),
            percentile=float(slo.percentile),
            min_replicas=int(plan.min_replicas),
            max_replicas=int(plan.max_replicas),
            scale_up_stabilization_s=scaling.scale_up_s,
            scale_down_stabilization_s=scaling.scale_down_s,
            capacity_per_replica=plan.max_concurrency_at_slo or None,
            decode_floor_ms=float(plan.decode_floor_ms),
            window_s=slo.window_s,
            capacity_model=CapacityModel.from_plan(plan),
            startup_s=float(plan.startup_seconds),
        )

    @property
    def lead_s(self) -> float:
        """How far ahead pressure must be seen: the up window, half the rate window's lag, then the start-up."""
        return self.startup_s + self.scale_up_stabilization_s + self.trend_span_s / 2 if self.startup_s > 0 else 0.0

    def clamp(self, replicas: int) -> int:
        return max(self.min_replicas, min(self.max_replicas, replicas))


def coarse_edge_ms(plan: Plan, target_ms: float) -> float | None:
    """The bucket edge at or below the target when the engine's histogram has none within 0.5 ms of it."""
    version = parse_version(plan.engine_version) if plan.engine_version else None
    bucket = bucket_around(buckets_for(plan.engine, version), target_ms)
    return None if bucket is None else bucket[0]


def _iso(value: float | None) -> str | None:
    if value is None:
        return None
    return rfc3339(value, digits=3)


def _parse_time(value: Any) -> float | None:
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return parse_rfc3339(value) if isinstance(value, str) else None


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


@dataclass(frozen=True)
class PolicyState:
    """What the policy remembers between ticks; stored in status.autoscaler so a restart resumes without a jump."""

    breach_since: float | None = None  # pressure to scale up has held since
    headroom_since: float | None = None  # n-1 replicas would have met the SLO since
    last_scale_at: float | None = None
    last_scale_direction: Direction | None = None
    last_ready: int | None = None
    ready_changed_at: float | None = None
    trend_at: float | None = None  # when `trend_rps` was sampled
    trend_rps: float | None = None  # arrivals (req/s) at `trend_at`
    trend_slope: float | None = None  # growth of the arrivals over the last span, req/s per second
    trend_growth: float | None = None  # sustained growth: the lesser of the last two spans' slopes, >= 0
    load_scale: float | None = None  # learned: the real load weighs this much more than the capacity model says
    announced_scale: float | None = None  # the learned factor last announced in an Event (the plan: 1.0)
    batch_cap: float | None = None  # learned: sequences one replica runs at most (its running count while queueing)
    hold_floor: int | None = None  # scale-in stops here until `hold_until`: going below it was undone recently
    hold_until: float | None = None

    _KEYS = (
        ("breach_since", "breachSince"),
        ("headroom_since", "headroomSince"),
        ("last_scale_at", "lastScaleAt"),
        ("ready_changed_at", "readyChangedAt"),
        ("trend_at", "trendAt"),
        ("hold_until", "holdUntil"),
    )
    _NUMBERS = (("trend_rps", "trendRps"), ("trend_slope", "trendSlope"), ("trend_growth", "trendGrowth"))

    def to_dict(self) -> dict[str, Any]:
        """camelCase, JSON-safe: times as RFC 3339 strings."""
        data: dict[str, Any] = {key: _iso(getattr(self, attr)) for attr, key in self._KEYS}
        data["lastScaleDirection"] = self.last_scale_direction
        data["lastReady"] = self.last_ready
        data["holdFloor"] = self.hold_floor
        for attr, key in self._NUMBERS:
            value = getattr(self, attr)
            data[key] = None if value is None else round(value, 6)
        capacity = {"loadScale": self.load_scale, "announcedScale": self.announced_scale, "batchCap": self.batch_cap}
        data["capacity"] = {k: round(v, 3) for k, v in capacity.items() if v is not None} or None
        return {key: value for key, value in data.items() if value is not None}

    @classmethod
    def from_dict(cls, data: Any) -> PolicyState:
        """Tolerant: unknown or malformed fields are dropped (a fresh window is the safe default)."""
        if not isinstance(data, dict):
            return cls()
        times = {attr: _parse_time(data.get(key)) for attr, key in cls._KEYS}
        direction = data.get("lastScaleDirection")
        ready = data.get("lastReady")
        floor = data.get("holdFloor")
        numbers = {attr: _number(data.get(key)) for attr, key in cls._NUMBERS}
        stored = data.get("capacity")
        capacity: dict[str, Any] = stored if isinstance(stored, dict) else {}
        scales = {attr: _scale(capacity.get(key)) for attr, key in (("load_scale", "loadScale"),
                                                                    ("announced_scale", "announcedScale"))}  # fmt: skip
        cap = _number(capacity.get("batchCap"))
        scales["batch_cap"] = cap if cap is not None and cap >= 1 else None
        return cls(
            **times,
            **numbers,
            **scales,
            last_scale_direction=direction if direction in ("up", "down") else None,
            last_ready=ready if isinstance(ready, int) and not isinstance(ready, bool) and ready >= 0 else None,
            hold_floor=floor if isinstance(floor, int) and not isinstance(floor, bool) and floor > 0 else None,
        )


def _scale(value: Any) -> float | None:
    number = _number(value)
    if number is None or not calibration.MIN_LOAD_SCALE <= number <= calibration.MAX_LOAD_SCALE:
        return None
    return number


@dataclass(frozen=True)
class Decision:
    """The outcome of one tick: what to set, why (with numbers), and what to report."""

    desired: int
    direction: Direction
    reason: str
    slo_met: bool | None
    metrics_available: bool
    metrics_reason: str
    state: PolicyState
    capacity_note: str | None = None  # the learned capacity moved by more than the Event threshold: say so


def _ms(value: float) -> str:
    return f"{value:.0f} ms" if value >= 10 else f"{value:.1f} ms"


def _seconds(value: float) -> str:
    return f"{value:.0f} s"


@dataclass(frozen=True)
class _Reading:
    """The observation as the policy judges it."""

    latency: float | None  # None: not judged (too few samples, or below resolution under a sub-10 ms target)
    label: str  # e.g. "p95 TPOT 61 ms"
    demand: float  # running + waiting requests
    waiting: float
    rps: float | None = None  # finished requests/s plus the backlog spread over one window
    prompt: float = 0.0
    output: float = 0.0
    arrivals: float | None = None  # finished requests/s plus queue growth: the offered rate, without the backlog
    trend: float = 0.0  # req/s the arrivals are projected to add by the time a replica started now serves
    probed: bool = False  # the latency is an active probe's (one stream on an idle engine), not the window's
    scale: float = 1.0  # the learned load factor (calibration): the model sees the load times this
    batch_cap: float | None = None  # the learned batch limit per replica (calibration)
    over_edge: bool = False  # a coarse histogram: more than the SLO's share of tokens is above the edge below target
    ttft_ms: float | None = None  # the TTFT objective's percentile over the window
    slow_share: float | None = None  # share of the window's tokens above the SLO's edge (None: no such edge, no data)
    slow_edge_ms: float = 0.0  # that edge

    def share_on(self, config: PolicyConfig, ready: int, replicas: int) -> float | None:
        """The slow share projected onto `replicas` (it grows with the prefill chunks per replica: linear in the
        load per replica, an underestimate when fewer replicas also slow the steps); None when not judged."""
        if self.slow_share is None or self.latency is None or self.probed or ready <= 0 or replicas <= 0:
            return None
        return self.slow_share * ready / replicas

    def model(self, config: PolicyConfig) -> CapacityModel | None:
        """The plan's capacity model with the learned batch limit."""
        model = config.capacity_model
        if model is None or self.batch_cap is None:
            return model
        return replace(model, max_num_seqs=max(1, min(model.max_num_seqs, int(self.batch_cap))))

    def need(self, config: PolicyConfig, target_ms: float, ahead: bool = False) -> int | None:
        """Replicas the capacity model asks for at this load (`ahead`: plus the trend); None without the model."""
        model = self.model(config)
        if model is None or self.rps is None:
            return None
        rps = (self.rps + (self.trend if ahead else 0.0)) * self.scale
        limit = max(config.max_replicas, 1) * 2
        return replicas_for(model, rps, self.prompt, self.output, target_ms, limit, config.model_percentile)

    def load_fits(self, config: PolicyConfig, replicas: int, factor: float = 1.0) -> bool | None:
        """Whether the offered load (arrivals plus trend, without the backlog; times `factor`) fits `replicas` inside
        the tolerance band by the capacity model; None without the model or the load figures."""
        model = self.model(config)
        if model is None or self.arrivals is None or replicas <= 0:
            return None
        rps = (self.arrivals + self.trend) * factor * self.scale
        limit = config.target_ms * (1 - config.tolerance)
        wanted = replicas_for(model, rps, self.prompt, self.output, limit, replicas + 1, config.model_percentile)
        return wanted <= replicas

    def rps_text(self, ahead: bool = True) -> str:
        if ahead and self.trend > 0.05:
            return f"{self.rps or 0.0:.1f} req/s (+{self.trend:.1f} by trend)"
        return f"{self.rps or 0.0:.1f} req/s"

    def model_itl(self, config: PolicyConfig, replicas: int) -> float | None:
        model = self.model(config)
        if model is None or self.rps is None or replicas <= 0:
            return None
        return itl_ms(model, self.rps * self.scale / replicas, self.prompt, self.output, config.model_percentile)

    def concurrency(self, config: PolicyConfig) -> float | None:
        """Sequences one replica runs within the SLO: the plan's figure over the learned load factor."""
        return config.capacity_per_replica / self.scale if config.capacity_per_replica else None


def _read(config: PolicyConfig, obs: Observation) -> tuple[_Reading, str]:
    name = f"p{config.percentile:g} TPOT"
    demand = (obs.running or 0.0) + (obs.waiting or 0.0)
    waiting = obs.waiting if obs.waiting is not None and obs.waiting >= 0.5 else 0.0  # a count of requests
    load: dict[str, Any] = {}
    if obs.request_rate is not None and obs.mean_prompt_tokens and obs.mean_output_tokens:
        # Offered load: what finishes, plus how fast the queue grows, plus the backlog drained over one window.
        growth = obs.waiting_growth_rps or 0.0
        arrivals = max(obs.request_rate + growth, 0.0)  # what finishes plus what queues (a draining queue: less)
        rps = obs.request_rate + max(growth, 0.0) + waiting / max(config.window_s, 1.0)
        load = {"rps": rps, "prompt": obs.mean_prompt_tokens, "output": obs.mean_output_tokens, "arrivals": arrivals}
    if obs.source == "probe" and obs.latency_ms is not None:
        # Too few tokens in the window, so the shell probed the engine: its TPOT is judged without a sample guard.
        return _Reading(obs.latency_ms, f"probe TPOT {_ms(obs.latency_ms)}", demand, waiting, probed=True, **load), "ok"
    if obs.latency_ms is None or obs.samples < config.min_samples:
        note = f"{obs.samples:.0f} tokens in the window < {config.min_samples:.0f}: latency not judged"
        return _Reading(None, f"{name} n/a", demand, waiting, **load), note
    if obs.below_resolution and obs.latency_ms > config.target_ms:
        note = f"{name} {obs.latency_text()} is below the histogram's resolution and the {_ms(config.target_ms)} SLO"
        return _Reading(None, f"{name} {obs.latency_text()}", demand, waiting, **load), note
    label, over_edge = f"{name} {obs.latency_text()}", False
    edge, share = _slow_share(config, obs)
    # A target inside a bucket: interpolation there is a guess. Judge at the edge below (conservative).
    if config.coarse_edge_ms is not None and share is not None and share > 1.0 - config.percentile / 100.0 + 1e-12:
        over_edge = True
        label += f" ({share:.1%} of tokens above the {_ms(config.coarse_edge_ms)} edge below the SLO)"
    if not config.share_rule:
        share = None
    reading = _Reading(obs.latency_ms, label, demand, waiting, over_edge=over_edge, ttft_ms=obs.ttft_ms, **load)
    return replace(reading, slow_share=share, slow_edge_ms=edge), "ok"


def _slow_share(config: PolicyConfig, obs: Observation) -> tuple[float, float | None]:
    """(edge ms, share of tokens above it): the edge at or below the target for a coarse histogram, else the
    histogram's edge within 0.5 ms of the target."""
    if config.coarse_edge_ms is not None:
        return config.coarse_edge_ms, obs.share_above(config.coarse_edge_ms / 1000.0)
    near = [bound for bound, _ in obs.buckets if math.isfinite(bound) and abs(bound * 1000 - config.target_ms) <= 0.5]
    if not near:
        return config.target_ms, None
    edge = min(near, key=lambda bound: abs(bound * 1000 - config.target_ms))
    return edge * 1000, obs.share_above(edge)


def _trend(config: PolicyConfig, state: PolicyState, reading: _Reading, now: float) -> tuple[PolicyState, _Reading]:
    """Track the arrivals' growth and project it over the start-up delay.

    The slope is taken between samples >= `trend_span_s` apart; only growth seen over two successive spans
    counts (the lesser slope), and a span that jumps by more than `max_trend_share` of the rate is a step, not
    a trend. Only growth is
    projected (scale-down never runs ahead of the load), over `config.lead_s`, capped at `max_trend_share` of
    the current rate."""
    arrivals = reading.arrivals
    if arrivals is None or config.lead_s <= 0:
        return replace(state, trend_at=None, trend_rps=None, trend_slope=None, trend_growth=None), reading
    if state.trend_at is None or state.trend_rps is None or not 0 <= now - state.trend_at <= 4 * config.trend_span_s:
        return replace(state, trend_at=now, trend_rps=arrivals, trend_slope=None, trend_growth=None), reading
    span = now - state.trend_at
    if span >= config.trend_span_s:
        slope = (arrivals - state.trend_rps) / span
        if abs(arrivals - state.trend_rps) > config.max_trend_share * max(arrivals, state.trend_rps):
            slope = 0.0  # a jump of more than the cap within one span is a step, left to the reactive rules
        growth = 0.0 if state.trend_slope is None else max(min(slope, state.trend_slope), 0.0)
        state = replace(state, trend_at=now, trend_rps=arrivals, trend_slope=slope, trend_growth=growth)
    growth = (state.trend_growth or 0.0) * config.lead_s
    rps = reading.rps or 0.0
    return state, replace(reading, trend=min(growth, config.max_trend_share * rps))


def _hold(
    config: PolicyConfig, state: PolicyState, current: int, reason: str, slo_met: bool | None, available: bool, why: str
) -> Decision:
    desired = config.clamp(current)
    direction: Direction = "hold" if desired == current else ("up" if desired > current else "down")
    if desired != current:
        reason = f"scaled {current} -> {desired}: outside replicas {config.min_replicas}..{config.max_replicas}"
        state = replace(state, last_scale_at=None, breach_since=None, headroom_since=None)
    return Decision(desired, direction, reason, slo_met, available, why, state)


def _up_target(config: PolicyConfig, reading: _Reading, ready: int, current: int) -> tuple[int, str]:
    """How many replicas the pressure asks for: the capacity model's count, or proportional to the excess.

    Returns at least one more than `current`; `_estimate` gives the count without that floor."""
    estimate, basis = _estimate(config, reading, ready, current)
    return config.clamp(max(estimate, current + 1)), basis


def _estimate(config: PolicyConfig, reading: _Reading, ready: int, current: int) -> tuple[int, str]:
    wants = [0]
    basis = "one more replica"
    share = reading.share_on(config, ready, ready)
    if share is not None and share > config.slow_budget:
        # The error budget is a linear gauge of the prefill steps per replica: size by it, at most x`max_share_factor`.
        by_share = math.ceil(ready * min(share / config.slow_budget, config.max_share_factor) - 1e-9)
        if by_share > current:
            wants.append(by_share)
            edge = _ms(reading.slow_edge_ms)
            basis = f"{share:.1%} of tokens above {edge} on {ready} ready, budget {config.slow_budget:.1%}"
    need = reading.need(config, config.target_ms * (1 - config.tolerance), ahead=True)
    per_replica = reading.concurrency(config)
    if need is not None:
        if need > max(wants) and need > current:
            wants.append(need)
            basis = f"capacity model: {reading.rps_text()} needs {need}"
        if reading.waiting > 0 and per_replica:
            # A queue: what finishes is what the replicas manage, not what arrives. The requests in the system
            # over the concurrency one replica keeps within the SLO size the gap at once.
            by_demand = math.ceil(reading.demand / per_replica - 1e-9)
            if by_demand > max(wants) and by_demand > current:
                wants.append(by_demand)
                basis = f"{reading.demand:.0f} requests in the system / {per_replica:.0f} per replica"
        return max(wants), basis
    if reading.latency is not None and reading.latency > config.target_ms and ready > 0:
        excess = (reading.latency - config.decode_floor_ms) / max(config.target_ms - config.decode_floor_ms, 1e-9)
        by_latency = math.ceil(ready * excess * (1 + config.tolerance) - 1e-9)
        if by_latency > max(wants):
            wants.append(by_latency)
            basis = f"latency above the {_ms(config.decode_floor_ms)} floor x{excess:.2f}"
    if per_replica:
        by_demand = math.ceil(reading.demand / per_replica - 1e-9)
        if by_demand > max(wants):
            wants.append(by_demand)
            basis = f"{reading.demand:.0f} requests / {per_replica:.0f} per replica"
    return max(wants), basis


def decide(
    config: PolicyConfig, state: PolicyState, obs: Observation, current_replicas: int, ready_replicas: int, now: float
) -> Decision:
    """One tick of the policy (`_decide`), plus a note when the learned capacity moved enough to announce."""
    decision = _decide(config, state, obs, current_replicas, ready_replicas, now)
    scale, settings = decision.state.load_scale, config.calibration
    if scale is None or settings is None or not calibration.moved(decision.state.announced_scale, scale, settings):
        return decision
    before = decision.state.announced_scale or 1.0
    note = f"learned capacity: the load weighs x{scale:.2f} against the plan's capacity model (was x{before:.2f})"
    if config.capacity_model is not None and obs.mean_prompt_tokens and obs.mean_output_tokens:
        prompt, output = obs.mean_prompt_tokens, obs.mean_output_tokens
        limit = config.target_ms * (1 - config.tolerance)
        percentile = config.model_percentile
        learned = calibration.capacity_rps(config.capacity_model, scale, prompt, output, limit, percentile)
        planned = calibration.capacity_rps(config.capacity_model, 1.0, prompt, output, limit, percentile)
        note += f": one replica serves {learned:.2f} req/s at the observed lengths (plan: {planned:.2f})"
    return replace(decision, state=replace(decision.state, announced_scale=scale), capacity_note=note)


def _calibrate(
    config: PolicyConfig, state: PolicyState, reading: _Reading, current: int, ready: int, now: float
) -> PolicyState:
    """Learn the load factor from this window, when the window describes the replicas that are ready now.

    A replica still starting does not serve, so a scale-up's window stays valid until the new replica is ready;
    a scale-in or a readiness change spoils it for one window. A queue on every replica is the batch limit's
    evidence (`_learn_batch_cap`), not the latency curve's."""
    settings, model = config.calibration, config.capacity_model
    if settings is None or model is None or reading.latency is None or reading.probed or reading.rps is None:
        return state
    if ready <= 0 or reading.waiting >= ready:
        return state
    if state.ready_changed_at is not None and now - state.ready_changed_at < config.window_s:
        return state  # the window still holds another replica count
    scaled_in = state.last_scale_direction == "down" and state.last_scale_at is not None
    if scaled_in and now - (state.last_scale_at or now) < config.window_s:
        return state
    evidence = calibration.Reading(reading.rps / ready, reading.prompt, reading.output, reading.latency)
    settings = replace(settings, percentile=config.model_percentile)
    sample = calibration.load_scale_sample(model, evidence, config.target_ms, config.decode_floor_ms, settings)
    if sample is None:
        return state
    scale = calibration.updated_scale(state.load_scale, sample[0], sample[1], settings)
    return replace(state, load_scale=scale)


def _learn_batch_cap(
    config: PolicyConfig, state: PolicyState, obs: Observation, reading: _Reading, current: int, ready: int
) -> PolicyState:
    """The most sequences a replica really runs: while requests queue, the running ones are at the limit (KV cache
    or max-num-seqs); running more than the learned limit without a queue raises it again."""
    settings = config.calibration
    if settings is None or config.capacity_model is None or obs.running is None or ready <= 0 or ready != current:
        return state
    per_replica = obs.running / ready
    if reading.waiting >= ready:  # a queue on every replica, on average: the batches are full
        alpha = 1.0 - 0.5 ** (settings.tick_s / settings.half_life_s)
        cap = per_replica if state.batch_cap is None else (1 - alpha) * state.batch_cap + alpha * per_replica
        return replace(state, batch_cap=max(cap, 1.0))
    if state.batch_cap is not None and per_replica > state.batch_cap:
        return replace(state, batch_cap=per_replica)
    return state


def _decide(
    config: PolicyConfig, state: PolicyState, obs: Observation, current_replicas: int, ready_replicas: int, now: float
) -> Decision:
    """One tick of the policy.

    Rules, in order: missing/failed/stale data holds (fail-static); 0 replicas scale to 1 only on waiting
    requests; an SLO below the decode floor holds; pressure (p-quantile above the SLO, or the capacity model
    asking for more than the ready replicas at the offered load plus its sustained trend over the plan's start-up
    delay) held for the up-stabilization window scales up, possibly several replicas (capacity model, latency
    excess over the floor, or demand / capacity); a latency breach that the model and an empty queue contradict
    must outlast a whole SLO window; while replicas are still starting it adds more only if even the replicas
    already coming are too few. Scale-down is one replica per decision: the down-stabilization clock runs while
    the offered load (without the backlog) fits one replica fewer by the capacity model inside the tolerance band
    (without a model: while one fewer projects under SLO x (1 - tolerance)); the step itself also needs nothing
    waiting, every replica ready and the observed latency projecting under the SLO; the next step needs
    `scale_down_step_s`, or only `fast_down_step_s` while the load plus `fast_down_margin` still fits one fewer.
    A probed latency (`obs.source == "probe"`: no traffic to read it from) is reported as the SLO's state and
    lets an idle deployment step down, but never scales up. The result is always clamped to [min, max].
    """
    current, ready = max(current_replicas, 0), max(min(ready_replicas, current_replicas), 0)
    if state.last_ready is not None and ready > state.last_ready:
        state = replace(state, ready_changed_at=now)  # the latency window still holds the time before
    state = replace(state, last_ready=ready)
    target = config.target_ms
    # 1. Missing, failed or stale data: fail static.
    if obs.error is not None or obs.running is None or obs.waiting is None:
        why = obs.error or "no running/waiting requests series"
        if current == 0:
            return _hold(config, state, current, "holding at 0: no replicas to measure", None, False, why)
        state = replace(state, breach_since=None, headroom_since=None)
        return _hold(config, state, current, f"holding {current}: metrics unavailable ({why})", None, False, why)
    if now - obs.observed_at > config.max_staleness_s:
        why = f"observation is {now - obs.observed_at:.0f} s old"
        state = replace(state, breach_since=None, headroom_since=None)
        return _hold(config, state, current, f"holding {current}: metrics stale ({why})", None, False, why)
    reading, note = _read(config, obs)
    state, reading = _trend(config, state, reading, now)
    state = _calibrate(config, state, reading, current, ready, now)
    state = _learn_batch_cap(config, state, obs, reading, current, ready)
    reading = replace(reading, scale=state.load_scale or 1.0, batch_cap=state.batch_cap)
    metrics_reason = "ok" if note == "ok" else note
    slo_met = None if reading.latency is None else reading.latency <= target and not reading.over_edge
    # 2. Scale from zero: only on evidence of waiting requests.
    if current == 0:
        if reading.waiting > 0 and config.max_replicas > 0:
            desired = config.clamp(1)
            reason = f"scaled 0 -> {desired}: {reading.waiting:.0f} requests waiting"
            return Decision(desired, "up", reason, slo_met, True, metrics_reason, _scaled(state, now, "up"))
        return _hold(config, state, current, "holding at 0: no waiting requests", slo_met, True, metrics_reason)
    # 3. An SLO below the physical floor cannot be chased.
    if target < config.decode_floor_ms:
        reason = (
            f"holding {current}: SLO {_ms(target)} is below the decode floor of {_ms(config.decode_floor_ms)}; "
            "more replicas cannot reach it"
        )
        return _hold(config, state, current, reason, False, True, metrics_reason)
    # 4. Pressure: latency above the SLO, or more requests than the capacity model allows on the ready replicas.
    stale_window = state.ready_changed_at is not None and now - state.ready_changed_at < config.window_s
    capacity = reading.concurrency(config)
    need = reading.need(config, target, ahead=True)  # the load now, plus its trend over the start-up delay
    if need is not None:
        over_capacity = need > max(ready, 1)
        why_capacity = f"{reading.rps_text()} needs {need} replicas by the capacity model, {ready} ready"
    else:
        over_capacity = capacity is not None and reading.demand > capacity * max(ready, 1)
        why_capacity = f"{reading.demand:.0f} requests > capacity {capacity or 0:.0f} x {max(ready, 1)} ready"
    modelled = need is not None or capacity is not None
    latency_breach = reading.latency is not None and (reading.latency > target or reading.over_edge)
    share_now = reading.share_on(config, ready, ready)
    if config.share_pressure and share_now is not None and share_now > config.slow_budget and not latency_breach:
        latency_breach = True  # the error budget is nearly spent: the percentile is about to cross the SLO
        above = f"{share_now:.1%} of tokens above {_ms(reading.slow_edge_ms)}"
        reading = replace(reading, label=f"{reading.label}, {above}")
    if latency_breach and stale_window and modelled and not over_capacity:
        latency_breach = False  # the window still holds the time before the last readiness change
    if latency_breach and reading.probed:
        latency_breach = False  # an idle engine's own latency: more replicas do not lower it (SLOMet reports it)
    if not modelled and reading.latency is None and reading.waiting > 0:
        over_capacity = True  # no capacity model: a queue is the only load signal
        why_capacity = f"{reading.waiting:.0f} requests waiting"
    elif not over_capacity and reading.waiting >= max(ready, 1) * config.queue_per_replica:
        over_capacity = True  # a queue is the first sign of a spike: the batches are full
        why_capacity = f"{reading.waiting:.0f} requests waiting on {max(ready, 1)} ready"
    ttft_breach = (
        config.ttft_target_ms is not None
        and obs.ttft_ms is not None
        and obs.ttft_ms > config.ttft_target_ms
        and obs.source != "probe"
        and not (stale_window and reading.waiting <= 0)  # the window still holds the time before new replicas
    )
    if ttft_breach and not over_capacity:
        over_capacity = True
        ttft_name = f"p{config.ttft_percentile or config.percentile:g} TTFT"
        why_capacity = f"{ttft_name} {_ms(obs.ttft_ms or 0.0)} > SLO {_ms(config.ttft_target_ms or 0.0)}"
    pressure = latency_breach or over_capacity
    why_up = f"{reading.label} > SLO {_ms(target)}" if latency_breach else why_capacity
    up_window = config.scale_up_stabilization_s
    if latency_breach and need is not None and not over_capacity and reading.waiting <= 0:
        # The latency says breach, the capacity model and the queue say the load fits: the window may still hold
        # a burst that is over. Act only if the breach outlasts a whole SLO window (then the model is off).
        up_window = max(up_window, config.window_s)
        why_up += f" but the load fits {max(ready, 1)} by the capacity model"
    fewer = current - 1
    # The down-stabilization clock runs on the offered load: it guards against the load coming back. A backlog
    # (or the latency it causes) blocks the step itself, not the clock: replicas added to drain a queue go once
    # it is drained, if the load has fit fewer replicas for the whole window.
    load_fits = reading.load_fits(config, fewer)
    if pressure:
        since = state.breach_since if state.breach_since is not None else now
        clock = (now if state.headroom_since is None else state.headroom_since) if load_fits else None
        state = replace(state, breach_since=since, headroom_since=clock)
        held = now - since
        wanted, basis = _up_target(config, reading, ready, current)
        if current >= config.max_replicas:
            return _hold(config, state, current, f"holding {current} (max): {why_up}", slo_met, True, metrics_reason)
        if held < up_window:
            reason = f"holding {current}: {why_up} for {_seconds(held)} (< {_seconds(up_window)})"
            return _hold(config, state, current, reason, slo_met, True, metrics_reason)
        if ready < current and _estimate(config, reading, ready, current)[0] <= current:
            reason = f"holding {current}: {why_up}; waiting for {current - ready} starting replica(s)"
            return _hold(config, state, current, reason, slo_met, True, metrics_reason)
        reason = f"scaled {current} -> {wanted}: {why_up} for {_seconds(held)} ({basis})"
        undone = state.last_scale_direction == "down" and state.last_scale_at is not None
        if undone and config.flap_hold_s > 0 and now - (state.last_scale_at or now) < config.flap_hold_s:
            # The last scale-in was undone by pressure: it was one step too far. Hold the restored count.
            state = replace(state, hold_floor=current + 1, hold_until=now + config.flap_hold_s)
            reason += f"; no scale-in below {current + 1} for {_seconds(config.flap_hold_s)}"
        state = replace(_scaled(state, now, "up"), breach_since=None)
        return Decision(wanted, "up", reason, slo_met, True, metrics_reason, state)
    state = replace(state, breach_since=None)
    if current > config.max_replicas or current < config.min_replicas:
        # Outside [min, max] (the spec's bounds moved): to the bound at once, not one step down with headroom.
        return _hold(config, state, current, "", slo_met, True, metrics_reason)
    # 5. Headroom: would one replica fewer still meet the SLO, by the latency and by the capacity model?
    headroom, why_not = _headroom(config, reading, ready, current, fewer)
    clock = headroom if load_fits is None else load_fits
    if not clock or current <= config.min_replicas or (load_fits is None and ready < current):
        state = replace(state, headroom_since=None)
        detail = why_not if not clock else ("at min" if current <= config.min_replicas else "replicas starting")
        return _hold(
            config, state, current, f"holding {current}: {reading.label}; {detail}", slo_met, True, metrics_reason
        )
    since = state.headroom_since if state.headroom_since is not None else now
    state = replace(state, headroom_since=since)
    held = now - since
    if not headroom or ready < current:
        detail = why_not if not headroom else "replicas starting"
        reason = f"holding {current}: the load has fit {fewer} for {_seconds(held)}, but {detail} ({reading.label})"
        return _hold(config, state, current, reason, slo_met, True, metrics_reason)
    if state.hold_floor is not None and state.hold_until is not None and now < state.hold_until:
        if fewer < state.hold_floor:
            reason = (
                f"holding {current}: a scale-in below {state.hold_floor} had to be undone; none below it until "
                f"{_iso(state.hold_until)} ({reading.label})"
            )
            return _hold(config, state, current, reason, slo_met, True, metrics_reason)
    elif state.hold_floor is not None:
        state = replace(state, hold_floor=None, hold_until=None)
    since_scale = math.inf if state.last_scale_at is None else now - state.last_scale_at
    step_s = config.scale_down_step_s
    if state.last_scale_direction == "down" and reading.load_fits(config, fewer, 1 + config.fast_down_margin):
        step_s = min(step_s, config.fast_down_step_s)  # large headroom: fewer fit even a larger load
    if held < config.scale_down_stabilization_s or since_scale < step_s:
        wait = max(config.scale_down_stabilization_s - held, step_s - since_scale, 0.0)
        reason = (
            f"holding {current}: headroom for {_seconds(held)} ({reading.label}); {fewer} would do in {_seconds(wait)}"
        )
        return _hold(config, state, current, reason, slo_met, True, metrics_reason)
    reason = f"scaled {current} -> {fewer}: {reading.label} <= SLO {_ms(target)}; {why_not} for {_seconds(held)}"
    # The headroom clock keeps running: the next step needs headroom still, and a full SLO window after this one.
    state = replace(_scaled(state, now, "down"), headroom_since=since)
    return Decision(fewer, "down", reason, slo_met, True, metrics_reason, state)


def _headroom(config: PolicyConfig, reading: _Reading, ready: int, current: int, fewer: int) -> tuple[bool, str]:
    """Projected latency and demand on `fewer` replicas, inside the tolerance band below the SLO."""
    limit = config.target_ms * (1 - config.tolerance)
    if fewer <= 0:
        idle = reading.demand <= 0 and (reading.latency is None or reading.probed)
        return idle, "no requests" if idle else "requests in flight"
    if reading.waiting > 0:
        return False, f"{reading.waiting:.0f} requests waiting"
    ttft_limit = None if config.ttft_target_ms is None else config.ttft_target_ms * (1 - 2 * config.tolerance)
    if ttft_limit is not None and reading.ttft_ms is not None and reading.ttft_ms > ttft_limit:
        return False, f"TTFT {_ms(reading.ttft_ms)} > {_ms(ttft_limit)} ({2 * config.tolerance:.0%} under its SLO)"
    if reading.over_edge:
        edge = _ms(config.coarse_edge_ms or 0.0)
        return False, f"more than {100 - config.percentile:g} % of tokens above the {edge} edge"
    share = reading.share_on(config, ready, fewer)
    if share is not None and share > config.slow_budget:
        edge = _ms(reading.slow_edge_ms)
        return False, f"{fewer} replicas would put ~{share:.1%} of tokens above {edge} (> {config.slow_budget:.1%})"
    parts: list[str] = []
    need = reading.need(config, limit, ahead=True)
    if need is not None:
        if need > fewer:
            return False, f"{reading.rps_text()} needs {need} replicas by the capacity model"
        parts.append(f"{reading.rps_text()} fits {fewer} by the capacity model")
    if reading.probed:
        parts.append(f"{reading.label} on an idle engine")  # one stream: it says nothing about fewer replicas
    elif reading.latency is not None:
        floor = config.decode_floor_ms
        now_itl, fewer_itl = reading.model_itl(config, max(ready, 1)), reading.model_itl(config, fewer)
        if now_itl and fewer_itl is not None and math.isfinite(now_itl):
            projected = reading.latency * fewer_itl / now_itl  # the model's ratio, scaled by what is observed
        else:
            projected = floor + max(reading.latency - floor, 0.0) * max(ready, 1) / fewer
        # With a capacity model the margin is in its count; the projection through the histogram's coarse
        # buckets only guards against a model that is far off, so it is held to the SLO itself.
        bound = config.target_ms if need is not None else limit
        if projected > bound:
            return False, f"{fewer} replicas would give ~{_ms(projected)} > {_ms(bound)}"
        parts.append(f"{fewer} replicas project ~{_ms(projected)}")
    per_replica = reading.concurrency(config)
    if need is None and per_replica:
        room = per_replica * fewer * (1 - config.tolerance)
        if reading.demand > room:
            return False, f"{reading.demand:.0f} requests > {room:.0f} for {fewer} replicas"
        parts.append(f"{reading.demand:.0f} requests fit {fewer}")
    if not parts:
        return False, "no latency and no capacity model to judge headroom"
    return True, ", ".join(parts)


def _scaled(state: PolicyState, now: float, direction: Direction) -> PolicyState:
    return replace(state, last_scale_at=now, last_scale_direction=direction, breach_since=None, headroom_since=None)
