"""controller/status_update.py pinned: the whole status of a first pass, what status.replicas and the phase say
with surge pods and a lagging Deployment generation, each Event exactly once per transition (no storm, re-sent
when the reason changes), and the autoscaler's report: what is rewritten, what is kept, which Events go out."""

from __future__ import annotations

from typing import Any

import pytest

from llmop.autoscale.metrics import Observation
from llmop.autoscale.policy import Decision, PolicyState
from llmop.catalog.engines import ENGINES, Engine
from llmop.controller.status_update import (
    EventIntent,
    Observed,
    compute_status,
    decision_status,
    endpoint,
    merge_patch,
    plan_summary,
    recorded_replicas,
    status_changed,
)
from llmop.plan.parse import parse_spec
from llmop.plan.planner import plan
from llmop.plan.types import Plan, PlanErrors

NOW = "2026-11-26T00:00:00Z"
LATER = "2026-11-26T00:05:00Z"
VLLM = ENGINES[Engine.VLLM].pinned_version
PLANNED = f"1 x H100-80GB, vllm {VLLM}, fp8, flash-attention-3, decode floor 3.9 ms"
NF4 = (
    f"spec.quantization: quantization nf4 is not available in vLLM {VLLM} (removed in 0.28.0); use engine tgi, "
    "or quantization fp8/awq/gptq"
)
INT8 = NF4.replace("nf4", "int8")


def _plan(quantization: str = "fp8", **spec: Any) -> Plan | PlanErrors:
    body = {"model": {"name": "meta-llama/Llama-3.1-8B-Instruct"}, "engine": "vllm", "quantization": quantization,
            "gpu": {"type": "H100-80GB"}, **spec}  # fmt: skip
    return plan(parse_spec(body), "chat")  # type: ignore[arg-type]


def _deployment(desired: int, current: int, ready: int, updated: int, generation: int = 1,
                observed: int = 1) -> dict[str, Any]:  # fmt: skip
    return {
        "metadata": {"name": "chat", "generation": generation},
        "spec": {"replicas": desired},
        "status": {"observedGeneration": observed, "replicas": current, "readyReplicas": ready,
                   "updatedReplicas": updated},
    }  # fmt: skip


def _conditions(status: dict[str, Any]) -> dict[str, tuple[str, str, str]]:
    return {c["type"]: (c["status"], c["reason"], c["message"]) for c in status["conditions"]}


def _events(events: list[EventIntent]) -> list[tuple[str, str, str]]:
    return [(e.type, e.reason, e.message) for e in events]


def _condition(type_: str, status: str, reason: str, message: str, at: str = NOW, generation: int | None = 1
               ) -> dict[str, Any]:  # fmt: skip
    found = {"type": type_, "status": status, "reason": reason, "message": message, "lastTransitionTime": at}
    return found | ({} if generation is None else {"observedGeneration": generation})


def test_first_pass_pins_the_whole_status_and_one_planned_event() -> None:
    update = compute_status({}, 1, _plan(), Observed(_deployment(2, 2, 0, 2)), NOW, ("ns", "chat"))
    rolling = "2/2 updated, 0/2 ready"
    assert update.status == {
        "phase": "Deploying",
        "conditions": [
            _condition("Planned", "True", "Planned", PLANNED),
            _condition("Ready", "False", "RollingOut", rolling),
            _condition("Available", "False", "NoReadyReplicas", "0/2 replicas ready"),
            _condition("Progressing", "True", "RollingOut", rolling),
            _condition("Degraded", "False", "AsExpected", ""),
            _condition("Reconciling", "True", "RollingOut", rolling),
            _condition("Stalled", "False", "NotStalled", ""),
        ],
        "plan": {"engine": "vllm", "engineVersion": VLLM, "image": f"ghcr.io/llmop/vllm:{VLLM}-sm90",
                 "gpuType": "H100-80GB", "tensorParallel": 1, "attentionBackend": "flash-attention-3",
                 "dtype": "bfloat16", "quantizationFlag": "fp8", "weightsGiB": 8.46, "kvCacheGiB": 63.32,
                 "decodeFloorMs": 3.91, "warnings": []},
        "replicas": 2,
        "readyReplicas": 0,
        "observedGeneration": 1,
        "deploymentName": "chat",
        "selector": "llmop.io/llmdeployment=chat",
        "endpoint": {"service": "chat", "port": 8000, "url": "http://chat.ns.svc:8000",
                     "openAIBaseURL": "http://chat.ns.svc:8000/v1"},
    }  # fmt: skip
    assert _events(update.events) == [("Normal", "Planned", PLANNED)]


def test_surge_pods_are_reported_as_replicas_and_the_rollout_is_not_ready() -> None:
    first = compute_status({}, 1, _plan(), Observed(_deployment(2, 2, 0, 2)), NOW, ("ns", "chat")).status
    surge = compute_status(first, 1, _plan(), Observed(_deployment(2, 3, 2, 2)), LATER, ("ns", "chat"))
    assert (surge.status["phase"], surge.status["replicas"], surge.status["readyReplicas"]) == ("Deploying", 3, 2)
    assert _conditions(surge.status)["Ready"] == ("False", "RollingOut", "2/2 updated, 2/2 ready")
    assert _conditions(surge.status)["Available"] == ("True", "ReplicasReady", "2/2 replicas ready")
    assert surge.events == []  # Available only with the phase Ready: not while a surge pod is still there


def test_a_deployment_generation_not_yet_observed_is_not_ready() -> None:
    first = compute_status({}, 1, _plan(), Observed(_deployment(2, 2, 0, 2)), NOW, ("ns", "chat")).status
    lag = compute_status(first, 1, _plan(), Observed(_deployment(2, 2, 2, 2, generation=2, observed=1)), LATER)
    assert lag.status["phase"] == "Deploying" and lag.status["observedGeneration"] == 1  # the LLMDeployment's
    assert _conditions(lag.status)["Progressing"] == ("True", "RollingOut", "2/2 updated, 2/2 ready")
    assert lag.events == []


def test_ready_posts_available_once_with_transition_times_and_generation() -> None:
    first = compute_status({}, 1, _plan(), Observed(_deployment(2, 2, 0, 2)), NOW, ("ns", "chat")).status
    ready = compute_status(first, 1, _plan(), Observed(_deployment(2, 2, 2, 2)), LATER, ("ns", "chat"))
    assert ready.status["phase"] == "Ready"
    assert ready.status["conditions"] == [
        _condition("Planned", "True", "Planned", PLANNED),  # unchanged status: its time stays
        _condition("Ready", "True", "ReplicasReady", "2/2 replicas ready", LATER),
        _condition("Available", "True", "ReplicasReady", "2/2 replicas ready", LATER),
        _condition("Progressing", "False", "RolloutComplete", "2/2 updated, 2/2 ready", LATER),
        _condition("Degraded", "False", "AsExpected", ""),
        _condition("Reconciling", "False", "Reconciled", "", LATER),
        _condition("Stalled", "False", "NotStalled", ""),
    ]
    assert _events(ready.events) == [("Normal", "Available", "2/2 replicas ready")]
    again = compute_status(ready.status, 1, _plan(), Observed(_deployment(2, 2, 2, 2)), LATER, ("ns", "chat"))
    assert again.events == [] and status_changed(ready.status, again.status) == {}


def test_scaled_to_zero_is_ready_without_an_available_event() -> None:
    ready = compute_status({}, 1, _plan(), Observed(_deployment(2, 2, 2, 2)), NOW).status
    zero = compute_status(ready, 1, _plan(), Observed(_deployment(0, 0, 0, 0)), LATER)
    assert zero.status["phase"] == "Ready" and (zero.status["replicas"], zero.status["readyReplicas"]) == (0, 0)
    assert _conditions(zero.status)["Ready"] == ("True", "ScaledToZero", "0 replicas requested")
    assert _conditions(zero.status)["Available"] == ("False", "ScaledToZero", "0 replicas requested")
    assert zero.events == []
    back = compute_status(zero.status, 1, _plan(), Observed(_deployment(1, 1, 1, 1)), LATER)
    assert _events(back.events) == [("Normal", "Available", "1/1 replicas ready")]


def test_plan_refused_is_posted_once_per_message_and_again_when_it_changes() -> None:
    ready = compute_status({}, 1, _plan(), Observed(_deployment(2, 2, 2, 2)), NOW).status
    refused = compute_status(ready, 2, _plan("nf4"), Observed(_deployment(2, 2, 2, 2)), LATER)
    assert _events(refused.events) == [("Warning", "PlanRefused", NF4)]
    assert refused.status["conditions"][0] == _condition("Planned", "False", "PlanRefused", NF4, LATER, 2)
    assert "plan" not in refused.status and refused.status["observedGeneration"] == 2
    same = compute_status(refused.status, 3, _plan("nf4"), Observed(_deployment(2, 2, 2, 2)), LATER)
    assert same.events == []  # a new generation with the same refusal: no storm
    changed = compute_status(same.status, 4, _plan("int8"), Observed(_deployment(2, 2, 2, 2)), LATER)
    assert _events(changed.events) == [("Warning", "PlanRefused", INT8)]
    accepted = compute_status(changed.status, 4, _plan(), Observed(_deployment(2, 2, 2, 2)), LATER)
    assert _events(accepted.events) == [("Normal", "Planned", PLANNED)]  # same generation, but it was refused


def test_planned_is_posted_once_per_accepted_generation_with_its_warnings() -> None:
    first = compute_status({}, 1, _plan(), Observed(None), NOW)
    assert _events(compute_status(first.status, 1, _plan(), Observed(None), NOW).events) == []
    warned = _plan("awq")  # an AWQ method on a checkpoint whose name does not say AWQ
    assert isinstance(warned, Plan) and warned.warnings
    second = compute_status(first.status, 2, warned, Observed(None), LATER)
    message = (
        f"1 x H100-80GB, vllm {VLLM}, awq, flash-attention-3, decode floor 2.7 ms; warnings: spec.model.name: "
        "quantization awq loads a pre-quantized checkpoint; 'meta-llama/Llama-3.1-8B-Instruct' does not look like "
        "one (no awq in its name). The pod fails at start-up if the checkpoint has no matching quantization_config"
    )
    assert _events(second.events) == [("Normal", "Planned", message)]
    assert second.status["conditions"][0] == _condition("Planned", "True", "Planned", message, NOW, 2)


def _pending(name: str, reason_message: str) -> dict[str, Any]:
    scheduled = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": reason_message}
    return {"metadata": {"name": name}, "status": {"phase": "Pending", "conditions": [scheduled]}}


def _crashing(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name}, "status": {"phase": "Running", "containerStatuses": [
        {"name": "engine", "ready": False, "restartCount": 3,
         "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}}  # fmt: skip


def test_a_degraded_reason_is_posted_once_and_again_when_the_reason_changes() -> None:
    deployment = _deployment(1, 1, 0, 1)
    first = compute_status({}, 1, _plan(), Observed(deployment, [_pending("chat-a", "0/3 nodes: no GPU")]), NOW)
    unschedulable = ("Warning", "Unschedulable", "pod chat-a: 0/3 nodes: no GPU")
    assert _events(first.events) == [("Normal", "Planned", PLANNED), unschedulable]
    assert first.status["phase"] == "Pending"
    other = Observed(deployment, [_pending("chat-a", "0/4 nodes: no GPU")])
    assert compute_status(first.status, 1, _plan(), other, LATER).events == []  # same reason, new message
    crashing = compute_status(first.status, 1, _plan(), Observed(deployment, [_crashing("chat-a")]), LATER)
    crash = "pod chat-a: container engine is crash-looping (restarts: 3)"
    assert _events(crashing.events) == [("Warning", "CrashLoopBackOff", crash)]
    assert crashing.status["phase"] == "Failed"
    healed = compute_status(crashing.status, 1, _plan(), Observed(deployment), LATER)
    assert healed.events == []
    again = compute_status(healed.status, 1, _plan(), Observed(deployment, [_crashing("chat-a")]), LATER)
    assert _events(again.events) == [("Warning", "CrashLoopBackOff", crash)]  # a new episode


def test_loading_the_model_is_posted_once() -> None:
    engine = {"name": "engine", "ready": False, "state": {"running": {"startedAt": NOW}}}
    loading = {"metadata": {"name": "chat-a"}, "status": {"phase": "Running", "containerStatuses": [engine],
               "conditions": [{"type": "Ready", "status": "False"}]}}  # fmt: skip
    deployment = _deployment(1, 1, 0, 1)
    first = compute_status({}, 1, _plan(), Observed(deployment, [loading]), NOW)
    message = "1 pod(s) started and loading the model, 0/1 ready"
    assert first.status["phase"] == "Loading"
    assert _events(first.events) == [("Normal", "Planned", PLANNED), ("Normal", "LoadingModel", message)]
    assert compute_status(first.status, 1, _plan(), Observed(deployment, [loading]), LATER).events == []


def test_without_where_or_generation_there_is_no_selector_endpoint_or_observed_generation() -> None:
    update = compute_status({}, None, _plan(), Observed(None), NOW)
    assert set(update.status) == {"phase", "conditions", "plan", "replicas", "readyReplicas"}
    assert update.status["phase"] == "Pending" and all(
        "observedGeneration" not in c for c in update.status["conditions"]
    )
    refused = compute_status({}, 1, _plan("nf4"), Observed(None), NOW, ("ns", "chat"))
    assert refused.status["selector"] == "llmop.io/llmdeployment=chat" and "endpoint" not in refused.status
    assert endpoint("a", "b", 80) == {"service": "a", "port": 80, "url": "http://a.b.svc:80",
                                      "openAIBaseURL": "http://a.b.svc:80/v1"}  # fmt: skip


def test_recorded_replicas_accepts_only_non_negative_integers() -> None:
    cases = {5: 5, 0: 0, -1: None, True: None, 2.0: None, "3": None, None: None}
    for value, expected in cases.items():
        assert recorded_replicas({"desiredReplicas": value}) == expected, value
    assert recorded_replicas({}) is None


def test_merge_patch_and_status_changed_send_only_what_changed_and_null_what_went() -> None:
    old = {"a": {"b": 1, "c": {"d": 2, "e": 3}}, "f": 1, "g": [1]}
    new = {"a": {"b": 1, "c": {"d": 4}}, "f": 1, "g": [2], "h": None}
    assert merge_patch(old, new) == {"a": {"c": {"d": 4, "e": None}}, "g": [2]}  # h: None is the absent h
    assert status_changed(old, new) == {"a": {"c": {"d": 4, "e": None}}, "g": [2]}
    assert merge_patch({"x": 1, "y": 2}, {"x": 1}) == {"y": None}
    assert status_changed(old, {"f": 2}) == {"f": 2}  # keys not in the update are not status_changed's to delete
    assert merge_patch({"x": 1}, 5) == 5 and merge_patch(5, {"x": 1}) == {"x": 1}


# ---- the autoscaler's report ------------------------------------------------------------------------------------


def _decision(desired: int = 2, direction: str = "hold", reason: str = "holding 2: at min", slo: bool | None = True,
              available: bool = True, why: str = "ok", note: str | None = None) -> Decision:  # fmt: skip
    return Decision(desired, direction, reason, slo, available, why, PolicyState(last_ready=2), note)  # type: ignore[arg-type]


def _obs(latency: float | None, samples: float = 10_000, percentile: float = 95.0, **extra: Any) -> Observation:
    return Observation(latency, samples, 20.0, 0.0, 0.3, 0.0, percentile=percentile, **extra)


FIRST: dict[str, Any] = {
    "conditions": [
        _condition("MetricsAvailable", "True", "MetricsAvailable", "p95 TPOT 30 ms from 10000 samples"),
        _condition("SLOMet", "True", "WithinSLO", "holding 2: at min"),
    ],
    "desiredReplicas": 2,
    "decodeLatency": {"p95Ms": 30.0, "percentile": 95, "observedMs": 30.0, "observedAt": NOW},
    "autoscaler": {"lastReady": 2, "reportedAt": NOW},
}


def test_the_first_report_pins_every_field() -> None:
    status, events = decision_status({}, _decision(), _obs(30.0), 2, 1, NOW)
    assert status == FIRST and events == []


def test_steady_state_keeps_messages_latency_and_report_time() -> None:
    status, events = decision_status(FIRST, _decision(reason="holding 2: other words"), _obs(31.5, 12_000), 2, 1, LATER)
    assert status == FIRST and events == []  # 31.5 ms is 5 % from 30 ms: not a move


@pytest.mark.parametrize(
    ("latency", "moved"),
    [(31.5, False), (31.51, True), (28.5, False), (28.49, True)],
)
def test_the_latency_is_rewritten_past_five_percent(latency: float, moved: bool) -> None:
    status, _ = decision_status(FIRST, _decision(), _obs(latency), 2, 1, LATER)
    assert (status["decodeLatency"]["observedMs"] == latency) is moved
    assert (status["autoscaler"]["reportedAt"] == LATER) is moved


@pytest.mark.parametrize(("old", "latency", "moved"), [(5.0, 5.5, False), (5.0, 5.51, True), (5.0, 4.49, True)])
def test_a_small_latency_moves_only_past_half_a_millisecond(old: float, latency: float, moved: bool) -> None:
    current = {**FIRST, "decodeLatency": {**FIRST["decodeLatency"], "observedMs": old, "p95Ms": old}}
    status, _ = decision_status(current, _decision(), _obs(latency), 2, 1, LATER)
    assert (status["decodeLatency"]["observedMs"] == latency) is moved


@pytest.mark.parametrize(
    "stored",
    [{"observedMs": 30.0, "percentile": 99}, {"observedMs": "30", "percentile": 95}, {"observedMs": True,
     "percentile": 95}, {"percentile": 95}, "30 ms"],
)  # fmt: skip
def test_a_stored_latency_of_another_percentile_or_shape_is_rewritten(stored: Any) -> None:
    status, _ = decision_status({**FIRST, "decodeLatency": stored}, _decision(), _obs(30.0), 2, 1, LATER)
    assert status["decodeLatency"] == {"p95Ms": 30.0, "percentile": 95, "observedMs": 30.0, "observedAt": LATER}


def test_a_missing_report_time_or_a_changed_state_rewrites_the_report() -> None:
    without = {**FIRST, "autoscaler": {"lastReady": 2}}
    assert decision_status(without, _decision(), _obs(30.0), 2, 1, LATER)[0]["autoscaler"]["reportedAt"] == LATER
    moved = {**FIRST, "autoscaler": {"lastReady": 3, "reportedAt": NOW}}
    status, _ = decision_status(moved, _decision(reason="new words"), _obs(30.0), 2, 1, LATER)
    assert status["autoscaler"] == {"lastReady": 2, "reportedAt": LATER}
    assert _conditions(status)["SLOMet"] == ("True", "WithinSLO", "new words")
    other_count = {**FIRST, "desiredReplicas": 3}
    assert decision_status(other_count, _decision(), _obs(30.0), 2, 1, LATER)[0]["autoscaler"]["reportedAt"] == LATER


def test_a_scale_step_writes_last_scale_and_posts_scaled() -> None:
    decision = _decision(3, "up", "scaled 2 -> 3: p99 TPOT 61 ms > SLO 40 ms", slo=False)
    status, events = decision_status(FIRST, decision, _obs(61.0, 12_000, percentile=99), 2, 1, LATER)
    assert status == {
        "conditions": [
            _condition("MetricsAvailable", "True", "MetricsAvailable", "p99 TPOT 61 ms from 12000 samples"),
            _condition("SLOMet", "False", "SLOBreached", "scaled 2 -> 3: p99 TPOT 61 ms > SLO 40 ms", LATER),
        ],
        "desiredReplicas": 3,
        "decodeLatency": {"percentile": 99, "observedMs": 61.0, "observedAt": LATER},  # no p95Ms for a p99
        "lastScale": {"at": LATER, "from": 2, "to": 3, "reason": "scaled 2 -> 3: p99 TPOT 61 ms > SLO 40 ms"},
        "autoscaler": {"lastReady": 2, "reportedAt": LATER},
    }
    assert _events(events) == [("Normal", "Scaled", "scaled 2 -> 3: p99 TPOT 61 ms > SLO 40 ms")]
    held = decision_status(FIRST, _decision(3, "hold"), _obs(30.0), 3, 1, LATER)
    assert "lastScale" not in held[0] and held[1] == []  # a hold, or a count already running, is no step
    same = decision_status(FIRST, _decision(3, "up"), _obs(30.0), 3, 1, LATER)
    assert "lastScale" not in same[0] and same[1] == []


def test_metrics_unavailable_is_posted_on_the_transition_only() -> None:
    down = _decision(available=False, why="prom down", slo=None)
    status, events = decision_status(FIRST, down, Observation.failed("prom down", 0.0), 2, 1, LATER)
    assert status["conditions"] == [
        _condition("MetricsAvailable", "False", "MetricsUnavailable", "prom down", LATER),
        _condition("SLOMet", "Unknown", "NoData", "holding 2: at min", LATER),
    ]
    assert "decodeLatency" not in status
    assert _events(events) == [("Warning", "MetricsUnavailable", "holding 2 replicas: prom down")]
    assert decision_status(status, down, Observation.failed("prom down", 0.0), 2, 1, LATER)[1] == []
    first_ever = decision_status({}, down, Observation.failed("prom down", 0.0), 2, 1, NOW)[1]
    assert _events(first_ever) == [("Warning", "MetricsUnavailable", "holding 2 replicas: prom down")]


def test_a_probe_reports_its_note_its_failure_and_a_latency_without_percentile() -> None:
    probe = _obs(12.0, 0, source="probe", note="probe http://chat.ns.svc:8000: 16 tokens")
    status, events = decision_status(FIRST, _decision(note="learned capacity: x1.20"), probe, 2, 1, LATER)
    assert _conditions(status)["MetricsAvailable"] == (
        "True",
        "ActiveProbe",
        "probe http://chat.ns.svc:8000: 16 tokens",
    )
    assert status["decodeLatency"] == {"observedMs": 12.0, "observedAt": LATER}
    assert _events(events) == [("Normal", "CapacityLearned", "learned capacity: x1.20")]
    failed = _decision(available=False, why="probe failed: timeout", slo=None)
    status, events = decision_status(FIRST, failed, _obs(None, 0, source="probe", error="timeout"), 2, 1, LATER)
    assert _conditions(status)["MetricsAvailable"] == ("False", "ProbeFailed", "probe failed: timeout")
    assert _events(events) == [("Warning", "MetricsUnavailable", "holding 2 replicas: probe failed: timeout")]


def test_plan_summary_is_camel_case_with_the_warnings_as_text() -> None:
    t4 = _plan("awq", gpu={"type": "T4"}, model={"name": "org/llama-awq", "architecture": "llama-3.1-8b"},
               maxModelLen=4096)  # fmt: skip
    assert isinstance(t4, Plan)
    summary = plan_summary(t4)
    keys = ["engine", "engineVersion", "image", "gpuType", "tensorParallel", "attentionBackend", "dtype",
            "quantizationFlag", "weightsGiB", "kvCacheGiB", "decodeFloorMs", "warnings"]  # fmt: skip
    assert list(summary) == keys
    attention = ("spec.gpu.type: T4 (cc 7.5) cannot run FlashAttention-2 (needs cc 8.0); vLLM uses TRITON_ATTN "
                 "instead, with slower prefill")  # fmt: skip
    float16 = "spec.gpu.type: T4 has no bfloat16 (needs cc 8.0); serving in float16"
    assert summary["warnings"] == [attention, float16]
    update = compute_status({}, 1, t4, Observed(None), NOW)
    assert update.status["plan"]["warnings"] == [attention, float16]
    assert update.events[0].message.endswith(f"; warnings: {attention}; {float16}")


def test_status_values_are_plain_json_types() -> None:
    update = compute_status({}, 1, _plan(), Observed(_deployment(1, 1, 1, 1)), NOW, ("ns", "chat"))
    assert type(update.status["phase"]) is str and update.status["phase"] == "Ready"


def test_a_first_pass_at_zero_replicas_posts_no_available() -> None:
    zero = compute_status({}, 1, _plan(), Observed(_deployment(0, 0, 0, 0)), NOW)
    assert zero.status["phase"] == "Ready" and _events(zero.events) == [("Normal", "Planned", PLANNED)]


def test_the_reported_latency_is_rounded_to_hundredths() -> None:
    status, _ = decision_status({}, _decision(), _obs(30.4567), 2, 1, NOW)
    assert status["decodeLatency"] == {"p95Ms": 30.46, "percentile": 95, "observedMs": 30.46, "observedAt": NOW}


def test_a_kept_condition_without_a_message_keeps_an_empty_one() -> None:
    current = {**FIRST, "conditions": [{k: v for k, v in c.items() if k != "message"} for c in FIRST["conditions"]]}
    status, _ = decision_status(current, _decision(reason="new words"), _obs(30.0), 2, 1, LATER)
    assert [c["message"] for c in status["conditions"]] == ["", ""]


def test_conditions_missing_from_the_status_are_a_transition() -> None:
    status, _ = decision_status({**FIRST, "conditions": []}, _decision(), _obs(30.0), 2, 1, LATER)
    assert status["autoscaler"]["reportedAt"] == LATER
    assert [c["lastTransitionTime"] for c in status["conditions"]] == [LATER, LATER]


def test_a_hold_is_no_scale_step_even_when_the_running_count_differs() -> None:
    status, events = decision_status(FIRST, _decision(3, "hold"), _obs(30.0), 2, 1, LATER)
    assert "lastScale" not in status and events == []
