"""llmop's production autoscaler in the replay: the real metrics source (PromQL through the emulated Prometheus)
and the real policy, ticking every 15 s like the operator's resync loop."""

from __future__ import annotations

from llmop.autoscale.metrics import PrometheusMetrics
from llmop.autoscale.policy import PolicyConfig, PolicyState, decide
from llmop_dev.replay.types import View


class LlmopController:
    """Calls `llmop.autoscale.policy.decide` on what `PrometheusMetrics.observe` reads, as the operator does."""

    name = "llmop"

    def __init__(self, config: PolicyConfig, engine: str, engine_version: str | None, interval_s: float = 15.0) -> None:
        self.config = config
        self.engine = engine
        self.engine_version = engine_version
        self.interval_s = interval_s
        self.state = PolicyState()
        self.reasons: list[tuple[float, str]] = []

    def desired(self, view: View) -> int:
        source = PrometheusMetrics("replay", runner=view.query, clock=lambda: view.now)
        observation = source.observe(
            view.namespace,
            view.deployment,
            self.engine,
            self.engine_version,
            self.config.percentile,
            self.config.window_s,
            ttft_percentile=self.config.ttft_percentile,
        )
        decision = decide(self.config, self.state, observation, view.current, view.ready, view.now)
        self.state = decision.state
        if decision.direction != "hold":
            self.reasons.append((view.now, decision.reason))
        return decision.desired
