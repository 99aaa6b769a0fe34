"""The policy's configuration: targets, limits and the defaults of each rule, from a plan and a spec. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field

from llmop.api.spec import AutoscalingSpec, DecodeLatencySLO, TimeToFirstTokenSLO
from llmop.autoscale.calibration import CalibrationSettings
from llmop.autoscale.capacity import CapacityModel
from llmop.catalog.versions import parse_version
from llmop.engines import buckets_for
from llmop.engines.base import bucket_around
from llmop.plan.types import Plan


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
    max_share_factor: float = 1.5  # a scale-up sized by that share adds at most half the ready replicas (BENCHMARKS.md)
    share_pressure: bool = True  # more than `slow_budget` above the edge is pressure before the percentile crosses
    ttft_learning: bool = True  # a TTFT above its scale-in limit teaches the load factor too (BENCHMARKS.md)
    surge_z: float | None = None  # requests in the engines this many deviations above the rate's: a rise (surge.py;
    # None: off, BENCHMARKS.md item 14)
    surge_cap: float = 2.0  # ... read as at most this many times the request rate

    @property
    def slow_budget(self) -> float:
        """The share of tokens allowed above the SLO, inside the tolerance band (p95: 5 % x 0.9 = 4.5 %)."""
        return (1.0 - self.percentile / 100.0) * (1.0 - self.tolerance)

    @property
    def band_ms(self) -> float:
        """The decode-latency target less the tolerance: what the capacity model sizes to and scale-in keeps under."""
        return self.target_ms * (1 - self.tolerance)

    @property
    def ttft_scale_in_ms(self) -> float | None:
        """The TTFT above which no scale-in is made (the objective less twice the tolerance); None without one."""
        return None if self.ttft_target_ms is None else self.ttft_target_ms * (1 - 2 * self.tolerance)

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
