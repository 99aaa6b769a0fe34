"""The autoscaler's status report: steady state writes nothing (no write per tick, no heartbeat), meaningful
changes are written at once, and the probe fallback."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from llmop.autoscale.fallback import ProbeCache, needs_probe, service_endpoint, with_probe
from llmop.autoscale.metrics import Observation
from llmop.autoscale.policy import Decision, PolicyConfig, PolicyState, decide
from llmop.autoscale.probe import ProbeResult
from llmop.controller.status_update import decision_status, status_changed

T0 = datetime(2026, 11, 26, tzinfo=UTC)
CONFIG = PolicyConfig(target_ms=40.0, percentile=95, min_replicas=1, max_replicas=4, scale_down_stabilization_s=60.0,
                      capacity_per_replica=100, decode_floor_ms=5.0)  # fmt: skip


def _at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _obs(latency: float | None, samples: float = 10_000, running: float = 20.0, at: float = 0.0) -> Observation:
    return Observation(latency, samples, running, 0.0, 0.3, T0.timestamp() + at)


def _tick(current: dict[str, Any], obs: Observation, seconds: float, replicas: int = 2) -> dict[str, Any]:
    """One autoscaler tick: decide, build the status, return the merge patch that would be written."""
    state = PolicyState.from_dict(current.get("autoscaler"))
    decision = decide(CONFIG, state, obs, replicas, replicas, T0.timestamp() + seconds)
    status, _ = decision_status(current, decision, obs, replicas, 1, _at(seconds))
    return status_changed(current, status)


def _apply(current: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    merged = dict(current)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {k: v for k, v in {**merged[key], **value}.items() if v is not None}
        else:
            merged[key] = value
    return merged


def _condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == type_)


def test_steady_state_writes_nothing_while_nothing_moves() -> None:
    current: dict[str, Any] = {"desiredReplicas": 2}
    current = _apply(current, _tick(current, _obs(30.0), 0))
    assert _condition(current, "MetricsAvailable")["message"] == "p95 TPOT 30 ms from 10000 samples"
    writes = []
    for second in range(15, 60, 15):  # the latency wobbles by < 5 %, the sample count moves: no write
        patch = _tick(current, _obs(30.0 + second / 60, samples=10_000 + second, at=second), second)
        writes.append(patch)
        current = _apply(current, patch)
    assert writes == [{}, {}, {}]
    assert _tick(current, _obs(30.4, samples=90_000, at=3600), 3600) == {}  # an hour later: still no write
    moved = _tick(current, _obs(33.0, samples=90_000, at=3600), 3600)  # +10 %: written, with fresh messages
    assert moved["decodeLatency"]["observedAt"] == _at(3600) and moved["autoscaler"]["reportedAt"] == _at(3600)
    assert "90000 samples" in moved["conditions"][0]["message"] + moved["conditions"][1]["message"]


def test_meaningful_changes_are_written_at_once() -> None:
    current: dict[str, Any] = {"desiredReplicas": 2}
    current = _apply(current, _tick(current, _obs(30.0), 0))
    moved = _tick(current, _obs(34.0, at=15), 15)  # +13 %
    assert moved["decodeLatency"]["observedMs"] == 34.0
    breach = _tick(current, _obs(55.0, running=150, at=15), 15)  # SLOMet flips: a transition, with its message
    slo = _condition(_apply(current, breach), "SLOMet")
    assert slo["status"] == "False" and slo["lastTransitionTime"] == _at(15) and "55 ms > SLO 40 ms" in slo["message"]
    outage = _tick(current, Observation.failed("prometheus down", T0.timestamp() + 15), 15)
    assert _condition(_apply(current, outage), "MetricsAvailable")["reason"] == "MetricsUnavailable"


def test_scale_decisions_always_write() -> None:
    current: dict[str, Any] = {"desiredReplicas": 3}
    state = PolicyState()
    up = Decision(4, "up", "scaled 3 -> 4: test", False, True, "ok", state)
    status, events = decision_status(current, up, _obs(60.0), 3, 1, _at(0))
    assert status["desiredReplicas"] == 4 and status["lastScale"]["to"] == 4 and events[-1].reason == "Scaled"
    current = _apply(current, status_changed(current, status))
    again, _ = decision_status(current, replace(up, desired=4, direction="hold"), _obs(60.0), 4, 1, _at(5))
    assert status_changed(current, again) == {}  # the same decision 5 s later: nothing new


def test_needs_probe_only_when_prometheus_answered_with_too_few_tokens() -> None:
    assert needs_probe(_obs(None, samples=0, running=0), 200)
    assert needs_probe(_obs(7.0, samples=50, running=0), 200)
    assert not needs_probe(_obs(7.0, samples=5_000), 200)
    assert not needs_probe(Observation.failed("prometheus down", 0.0), 200)  # fail-static, never probe around it
    assert service_endpoint("chat", "ml", 8000) == "http://chat.ml.svc:8000"


def test_probe_latency_feeds_the_policy_and_an_idle_deployment_steps_down() -> None:
    result = ProbeResult("vllm", "http://sim/d/ml/chat", 45.0, 6.2, 16, 140.0)
    idle = with_probe(_obs(None, samples=0, running=0), result, 200)
    assert idle.source == "probe" and idle.latency_ms == 6.2 and "active probe of http://sim/d/ml/chat" in idle.note
    state, current, decisions = PolicyState(), 3, []
    for second in range(0, 300, 15):
        decision = decide(CONFIG, state, replace(idle, observed_at=float(second)), current, current, float(second))
        decisions.append(decision)
        state, current = decision.state, decision.desired
    assert decisions[0].slo_met is True and "probe TPOT 6.2 ms" in decisions[0].reason
    downs = [d for d in decisions if d.direction == "down"]
    assert [d.desired for d in downs] == [2, 1] and current == 1
    status, _ = decision_status({}, decisions[0], idle, 3, 1, _at(0))
    metrics = _condition(status, "MetricsAvailable")
    assert metrics["status"] == "True" and metrics["reason"] == "ActiveProbe" and "0 tokens" in metrics["message"]
    assert status["decodeLatency"]["observedMs"] == 6.2
    assert "p95Ms" not in status["decodeLatency"] and "percentile" not in status["decodeLatency"]


def test_probe_above_the_slo_reports_a_breach_but_does_not_scale_up() -> None:
    slow = with_probe(_obs(None, samples=0, running=0), ProbeResult("vllm", "u", 90.0, 48.0, 16, 900.0), 200)
    decisions = [decide(CONFIG, PolicyState(), replace(slow, observed_at=float(t)), 2, 2, float(t)) for t in (0, 60)]
    assert all(d.direction != "up" and d.slo_met is False for d in decisions)


def test_failed_probe_holds_with_metrics_unavailable() -> None:
    failed = with_probe(_obs(None, samples=0, running=0), ProbeResult("vllm", "u", None, None, 0, 3.0, "refused"), 200)
    assert failed.error is not None and "active probe of u failed: refused" in failed.error
    state, current = PolicyState(), 3
    for second in range(0, 600, 15):
        decision = decide(CONFIG, state, replace(failed, observed_at=float(second)), current, current, float(second))
        state, current = decision.state, decision.desired
        assert decision.direction == "hold" and not decision.metrics_available


def test_a_failing_probe_is_written_at_once_with_its_own_reason() -> None:
    """No traffic first reads as too few tokens; when the probe then fails the condition says so at once (a
    reason change is a transition), and while it keeps failing nothing more is written."""
    current: dict[str, Any] = {"desiredReplicas": 2}
    few = _obs(None, samples=0, running=0)
    few = replace(few, error="0 tokens in the window < 200")
    current = _apply(current, _tick(current, few, 0))
    assert _condition(current, "MetricsAvailable")["reason"] == "MetricsUnavailable"
    failed = with_probe(_obs(None, samples=0, running=0), ProbeResult("vllm", "u", None, None, 0, 3.0, "refused"), 200)
    patch = _tick(current, replace(failed, observed_at=T0.timestamp() + 15), 15)
    metrics = _condition(_apply(current, patch), "MetricsAvailable")
    assert metrics["status"] == "False" and metrics["reason"] == "ProbeFailed"
    assert "active probe of u failed: refused" in metrics["message"]
    current = _apply(current, patch)
    assert _tick(current, replace(failed, observed_at=T0.timestamp() + 30), 30) == {}


def test_scale_to_zero_is_not_blocked_by_a_probe() -> None:
    config = replace(CONFIG, min_replicas=0)
    idle = with_probe(_obs(None, samples=0, running=0), ProbeResult("vllm", "u", 40.0, 6.0, 16, 130.0), 200)
    state, current = PolicyState(), 1
    for second in range(0, 300, 15):
        decision = decide(config, state, replace(idle, observed_at=float(second)), current, current, float(second))
        state, current = decision.state, decision.desired
    assert current == 0


def test_probe_cache_reuses_a_result_for_the_interval() -> None:
    calls: list[str] = []
    clock = [0.0]

    def prober(endpoint: str, engine: str) -> ProbeResult:
        calls.append(endpoint)
        return ProbeResult(engine, endpoint, 40.0, 6.0, 16, 130.0)

    cache = ProbeCache(prober, clock=lambda: clock[0])
    for at in (0.0, 10.0, 29.0, 30.0, 45.0):
        clock[0] = at
        cache.get("http://a", "vllm", 30.0)
    assert calls == ["http://a", "http://a"]


def test_learned_capacity_is_kept_in_status_and_announced_once() -> None:
    state = PolicyState(load_scale=1.42, announced_scale=1.42)
    note = "learned capacity: the load weighs x1.42 against the plan's capacity model (was x1.00)"
    hold = Decision(3, "hold", "holding 3", True, True, "ok", state, capacity_note=note)
    status, events = decision_status({"desiredReplicas": 3}, hold, _obs(30.0), 3, 1, _at(0))
    assert status["autoscaler"]["capacity"] == {"loadScale": 1.42, "announcedScale": 1.42}
    assert [(e.type, e.reason, e.message) for e in events] == [("Normal", "CapacityLearned", note)]
    quiet, events = decision_status({"desiredReplicas": 3}, replace(hold, capacity_note=None), _obs(30.0), 3, 1, _at(5))
    assert events == [] and quiet["autoscaler"]["capacity"]["loadScale"] == 1.42
