"""One observation as the policy judges it: latency, load, trend, error budget, learned capacity. Pure."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from llmop.autoscale.capacity import CapacityModel, itl_ms, replicas_for
from llmop.autoscale.metrics import Observation, ms_text
from llmop.autoscale.policy_config import PolicyConfig
from llmop.autoscale.policy_state import PolicyState
from llmop.engines.base import exact_edge


def count_text(value: float) -> str:
    """A request count as read (gauges summed and averaged by Prometheus may be fractional): `3`, `0.5`."""
    return f"{value:.0f}" if abs(value - round(value)) < 0.05 else f"{value:.1f}"


def seconds_text(value: float) -> str:
    return f"{value:.0f} s"


@dataclass(frozen=True)
class PolicyReading:
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
    step_scale: float = 1.0  # the learned step-time factor (calibration): the model's costs times this
    over_edge: bool = False  # a coarse histogram: more than the SLO's share of tokens is above the edge below target
    ttft_ms: float | None = None  # the TTFT objective's percentile over the window
    mean_ms: float | None = None  # the window's mean decode latency (the histogram's sum over its count)
    slow_share: float | None = None  # share of the window's tokens above the SLO's edge (None: no such edge, no data)
    slow_edge_ms: float = 0.0  # that edge
    share_replicas: int = 0  # the replicas that spent that share: the ready ones, or those before the last new one

    def share_on(self, replicas: int) -> float | None:
        """The slow share projected onto `replicas` at the load plus its trend (the share grows with the prefill
        chunks per replica: linear in the load per replica, an underestimate when a heavier batch also slows the
        steps); None when not judged."""
        spent_by = self.share_replicas
        if self.slow_share is None or self.latency is None or self.probed or spent_by <= 0 or replicas <= 0:
            return None
        ahead = (self.rps + self.trend) / self.rps if self.rps else 1.0
        return self.slow_share * spent_by / replicas * ahead

    def model(self, config: PolicyConfig) -> CapacityModel | None:
        """The plan's capacity model at the learned step time, with the learned batch limit."""
        model = config.capacity_model
        if model is not None and self.step_scale != 1.0:
            model = model.slowed(self.step_scale)
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
        limit = config.band_ms
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


def read(config: PolicyConfig, obs: Observation) -> tuple[PolicyReading, str]:
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
        return PolicyReading(
            obs.latency_ms, f"probe TPOT {ms_text(obs.latency_ms)}", demand, waiting, probed=True, **load
        ), "ok"
    if obs.latency_ms is None or obs.samples < config.min_samples:
        note = f"{obs.samples:.0f} tokens in the window < {config.min_samples:.0f}: latency not judged"
        if obs.samples >= config.min_samples:
            note = f"no {name} in the window ({obs.samples:.0f} tokens): latency not judged"
        return PolicyReading(None, f"{name} n/a", demand, waiting, **load), note
    if obs.below_resolution and obs.latency_ms > config.target_ms:
        note = (
            f"{name} {obs.latency_text()} is below the histogram's resolution and the {ms_text(config.target_ms)} SLO"
        )
        return PolicyReading(None, f"{name} {obs.latency_text()}", demand, waiting, **load), note
    label, over_edge = f"{name} {obs.latency_text()}", False
    edge, share = _slow_share(config, obs)
    # A target inside a bucket: interpolation there is a guess. Judge at the edge below (conservative).
    if config.coarse_edge_ms is not None and share is not None and share > 1.0 - config.percentile / 100.0 + 1e-12:
        over_edge = True
        label += f" ({share:.1%} of tokens above the {ms_text(config.coarse_edge_ms)} edge below the SLO)"
    if not config.share_rule or config.coarse_edge_ms is not None:
        # An edge below the target counts tokens that met it: a gauge of that share would run ahead of the SLO.
        share = None
    reading = PolicyReading(obs.latency_ms, label, demand, waiting, over_edge=over_edge, ttft_ms=obs.ttft_ms,
                            mean_ms=obs.mean_latency_ms, **load)  # fmt: skip
    return replace(reading, slow_share=share, slow_edge_ms=edge), "ok"


def _slow_share(config: PolicyConfig, obs: Observation) -> tuple[float, float | None]:
    """(edge ms, share of tokens above it): the edge at or below the target for a coarse histogram, else the
    histogram's edge within EXACT_WITHIN_MS (0.5 ms) of the target (engines.base.exact_edge)."""
    if config.coarse_edge_ms is not None:
        return config.coarse_edge_ms, obs.share_above(config.coarse_edge_ms / 1000.0)
    edge = exact_edge((bound for bound, _ in obs.buckets if math.isfinite(bound)), config.target_ms)
    if edge is None:
        return config.target_ms, None
    return edge * 1000, obs.share_above(edge)


def track_trend(
    config: PolicyConfig, state: PolicyState, reading: PolicyReading, now: float
) -> tuple[PolicyState, PolicyReading]:
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
