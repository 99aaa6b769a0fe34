"""Pod failures, model loading, Ready/Reconciling/Stalled, the endpoint, the selector, the TPOT column (pure)."""

from __future__ import annotations

from typing import Any

from llmop.api.crd import PRINTER_COLUMNS
from llmop.autoscale.metrics import Observation
from llmop.autoscale.policy import Decision, PolicyState
from llmop.controller.children import pod_signature
from llmop.controller.pod_health import container_problem, problems, summary
from llmop.controller.status_update import Observed, compute_status, decision_status, status_changed
from llmop.plan.parse import parse_spec
from llmop.plan.planner import plan
from llmop.plan.types import Plan

NOW = "2026-11-26T00:00:00Z"
LATER = "2026-11-26T00:05:00Z"
WHERE = ("ml", "chat")


def _plan() -> Plan:
    result = plan(parse_spec({"model": {"name": "meta-llama/Llama-3.1-8B-Instruct"}, "engine": "vllm",  # type: ignore[arg-type]
                              "quantization": "fp8", "gpu": {"type": "H100-80GB"}}))  # fmt: skip
    assert isinstance(result, Plan)
    return result


def _deployment(desired: int, ready: int, conditions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"name": "chat", "generation": 1},
        "spec": {"replicas": desired},
        "status": {"observedGeneration": 1, "replicas": desired, "readyReplicas": ready, "updatedReplicas": desired,
                   "conditions": conditions or []},
    }  # fmt: skip


def _pod(name: str, container: dict[str, Any], ready: bool = False, phase: str = "Running") -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "status": {
            "phase": phase,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "containerStatuses": [{"name": "engine", "ready": ready, "restartCount": 0, **container}],
        },
    }


def _oom(restarts: int) -> dict[str, Any]:
    return {
        "restartCount": restarts,
        "state": {"waiting": {"reason": "CrashLoopBackOff", "message": f"back-off {10 * restarts}s restarting"}},
        "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled", "message": "torch.OutOfMemoryError"}},
    }


def _condition(status: dict[str, Any], type_: str) -> tuple[str, str, str]:
    found = next(c for c in status["conditions"] if c["type"] == type_)
    return found["status"], found["reason"], found["message"]


def test_crash_loop_reports_the_exit_code_and_reason_once_per_reason() -> None:
    first = compute_status({}, 3, _plan(), Observed(_deployment(1, 0), [_pod("chat-a", _oom(2))]), NOW, WHERE)
    message = "pod chat-a: container engine is crash-looping (restarts: 2; last exit code 137 (OOMKilled): " \
              "torch.OutOfMemoryError)"  # fmt: skip
    assert first.status["phase"] == "Failed" and first.status["observedGeneration"] == 3
    assert _condition(first.status, "Degraded") == ("True", "CrashLoopBackOff", message)
    assert _condition(first.status, "Ready") == ("False", "CrashLoopBackOff", message)
    assert _condition(first.status, "Stalled") == ("True", "CrashLoopBackOff", message)
    assert _condition(first.status, "Reconciling") == ("False", "Reconciled", "")
    assert [(e.type, e.reason, e.message) for e in first.events] == [
        ("Normal", "Planned", first.events[0].message),
        ("Warning", "CrashLoopBackOff", message),
    ]
    # The next restart: running again (not ready), then backing off: same reason, no new event, no flapping phase.
    restarted = {**_oom(3), "state": {"running": {"startedAt": NOW}}}
    again = compute_status(first.status, 3, _plan(), Observed(_deployment(1, 0), [_pod("chat-a", restarted)]), LATER,
                           WHERE)  # fmt: skip
    assert again.status["phase"] == "Failed" and again.events == []
    assert _condition(again.status, "Degraded")[2] == message.replace("restarts: 2", "restarts: 3")


def test_image_pull_and_missing_secret_name_the_pod_and_the_kubelet_message() -> None:
    pulls = [{"state": {"waiting": {"reason": reason, "message": text}}} for reason, text in
             (("ErrImagePull", "401 Unauthorized"), ("ImagePullBackOff", 'Back-off pulling image "x"'))]  # fmt: skip
    first = compute_status({}, 1, _plan(), Observed(_deployment(1, 0), [_pod("chat-a", pulls[0])]), NOW, WHERE)
    assert _condition(first.status, "Degraded") == (
        "True", "ImagePullBackOff", "pod chat-a: container engine: ImagePullBackOff: 401 Unauthorized")  # fmt: skip
    second = compute_status(first.status, 1, _plan(), Observed(_deployment(1, 0), [_pod("chat-a", pulls[1])]), LATER,
                            WHERE)  # fmt: skip
    assert second.events == []  # ErrImagePull and ImagePullBackOff alternate: one reason, one event
    secret = {"state": {"waiting": {"reason": "CreateContainerConfigError", "message": 'secret "hf-token" not found'}}}
    found = container_problem(_pod("chat-b", secret, phase="Pending"))
    assert found is not None and (found.reason, found.message) == (
        "CreateContainerConfigError", 'pod chat-b: container engine: CreateContainerConfigError: secret "hf-token" '
        "not found")  # fmt: skip


def test_some_replicas_serving_is_degraded_not_failed_and_lists_every_failing_pod() -> None:
    healthy = _pod("chat-a", {"state": {"running": {"startedAt": NOW}}}, ready=True)
    pods = [healthy] + [_pod(f"chat-{i}", _oom(1)) for i in "dcbe"]
    update = compute_status({}, 1, _plan(), Observed(_deployment(5, 1), pods), NOW, WHERE)
    assert update.status["phase"] == "Degraded"
    status, reason, message = _condition(update.status, "Degraded")
    assert (status, reason) == ("True", "CrashLoopBackOff")
    assert message.startswith("pod chat-b: ") and message.endswith(" (and 1 more)") and message.count("pod chat-") == 3
    assert _condition(update.status, "Reconciling")[:2] == ("True", "CrashLoopBackOff")
    assert _condition(update.status, "Available")[:2] == ("True", "ReplicasReady")


def test_progress_deadline_is_reported_when_no_pod_says_more() -> None:
    deadline = {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                "message": 'ReplicaSet "chat-5d9" has timed out progressing.'}  # fmt: skip
    update = compute_status({}, 1, _plan(), Observed(_deployment(1, 0, [deadline]), []), NOW, WHERE)
    expected = ("True", "ProgressDeadlineExceeded", 'Deployment chat: ReplicaSet "chat-5d9" has timed out progressing.')
    assert _condition(update.status, "Degraded") == expected and update.status["phase"] == "Failed"
    assert _condition(update.status, "Progressing") == ("False", "ProgressDeadlineExceeded", "1/1 updated, 0/1 ready")
    crashing = Observed(_deployment(1, 0, [deadline]), [_pod("chat-a", _oom(4))])
    assert [p.reason for p in problems(crashing.pods, crashing.deployment)] == [
        "CrashLoopBackOff",
        "ProgressDeadlineExceeded",
    ]


def test_loading_then_ready_with_one_event_each_and_the_endpoint() -> None:
    loading = _pod("chat-a", {"state": {"running": {"startedAt": NOW}}, "started": False})
    first = compute_status({}, 1, _plan(), Observed(_deployment(1, 0), [loading]), NOW, WHERE)
    message = "1 pod(s) started and loading the model, 0/1 ready"
    assert first.status["phase"] == "Loading"
    assert _condition(first.status, "Ready") == ("False", "LoadingModel", message)
    assert _condition(first.status, "Progressing") == ("True", "LoadingModel", "1/1 updated, 0/1 ready")
    assert _condition(first.status, "Reconciling") == ("True", "LoadingModel", message)
    assert [(e.type, e.reason, e.message) for e in first.events][1:] == [("Normal", "LoadingModel", message)]
    assert first.status["endpoint"] == {
        "service": "chat",
        "port": 8000,
        "url": "http://chat.ml.svc:8000",
        "openAIBaseURL": "http://chat.ml.svc:8000/v1",
    }
    assert first.status["selector"] == "llmop.io/llmdeployment=chat"
    still = compute_status(first.status, 1, _plan(), Observed(_deployment(1, 0), [loading]), LATER, WHERE)
    assert still.events == [] and status_changed(first.status, still.status) == {}
    done = compute_status(still.status, 1, _plan(), Observed(_deployment(1, 1), []), LATER, WHERE)
    assert done.status["phase"] == "Ready"
    assert _condition(done.status, "Ready") == ("True", "ReplicasReady", "1/1 replicas ready")
    assert _condition(done.status, "Stalled") == ("False", "NotStalled", "")
    assert _condition(done.status, "Degraded") == ("False", "AsExpected", "")
    assert [e.reason for e in done.events] == ["Available"]


def test_a_deployment_scaled_to_zero_is_ready() -> None:
    update = compute_status({}, 1, _plan(), Observed(_deployment(0, 0), []), NOW, WHERE)
    assert update.status["phase"] == "Ready"
    assert _condition(update.status, "Ready") == ("True", "ScaledToZero", "0 replicas requested")


def test_pod_signature_changes_with_what_status_reads() -> None:
    loading = _pod("chat-a", {"state": {"running": {"startedAt": NOW}}})
    ready = _pod("chat-a", {"state": {"running": {"startedAt": NOW}}}, ready=True)
    crashing = _pod("chat-a", _oom(1))
    assert pod_signature(ready) is None and pod_signature(loading) == "loading"
    assert pod_signature(crashing) == ("CrashLoopBackOff", container_problem(crashing).message)  # type: ignore[union-attr]
    terminating = {**crashing, "metadata": {"name": "chat-a", "deletionTimestamp": NOW}}
    assert problems([terminating], None) == [] and summary([]) == ""


def _column(path: str, body: dict[str, Any]) -> Any:
    """A printer column's simple JSON path (.a.b.c) evaluated the way kubectl does: missing is blank (None)."""
    node: Any = body
    for key in path.strip(".").split("."):
        node = node.get(key) if isinstance(node, dict) else None
    return node


def test_the_tpot_column_shows_p99_and_probe_readings() -> None:
    paths = {c["name"]: c["jsonPath"] for c in PRINTER_COLUMNS}
    decision = Decision(desired=2, direction="hold", reason="within SLO", slo_met=True, metrics_available=True,
                        metrics_reason="", state=PolicyState())  # fmt: skip
    p99 = Observation(41.237, 5000, 4.0, 0.0, 0.2, 0.0, percentile=99.0)
    probe = Observation(6.2, 3, 0.0, 0.0, 0.0, 0.0, source="probe", note="probe")
    shown = []
    for obs in (p99, probe):
        status, _ = decision_status({"desiredReplicas": 2}, decision, obs, 2, 1, NOW)
        shown.append((_column(paths["TPOT"], {"status": status}), _column(paths["Pctl"], {"status": status})))
    assert shown == [(41.24, 99), (6.2, None)]
