"""Pure status logic of the controller: conditions, phase, events, merge patches, drift."""

from __future__ import annotations

from typing import Any

from llmop.controller.drift import contains, managed_fields_drift
from llmop.controller.status_update import Observed, compute_status, merge_patch, status_changed
from llmop.plan.parse import parse_spec
from llmop.plan.planner import plan
from llmop.plan.types import Plan, PlanErrors

NOW = "2026-11-26T00:00:00Z"
LATER = "2026-11-26T00:05:00Z"


def _plan(quant: str = "fp8") -> Plan | PlanErrors:
    return plan(parse_spec({"model": {"name": "meta-llama/Llama-3.1-8B-Instruct"}, "engine": "vllm",  # type: ignore[arg-type]
                            "quantization": quant, "gpu": {"type": "H100-80GB"}}))  # fmt: skip


def _deployment(desired: int, ready: int, updated: int | None = None, generation: int = 1) -> dict[str, Any]:
    return {
        "metadata": {"name": "chat", "generation": generation},
        "spec": {"replicas": desired},
        "status": {"observedGeneration": generation, "replicas": desired, "readyReplicas": ready,
                   "updatedReplicas": desired if updated is None else updated},
    }  # fmt: skip


def _condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == type_)


def test_merge_patch_nulls_removed_nested_keys() -> None:
    old = {"autoscaler": {"headroomSince": "t1", "lastReady": 2}, "phase": "Ready"}
    new = {"autoscaler": {"lastReady": 2}, "phase": "Ready"}
    assert status_changed(old, new) == {"autoscaler": {"headroomSince": None}}
    assert status_changed(new, new) == {}
    assert merge_patch({"a": {"b": 1, "c": 2}}, {"a": {"b": 3}}) == {"a": {"b": 3, "c": None}}
    assert merge_patch([1], [2]) == [2]


def test_ready_rollout_and_transition_times() -> None:
    first = compute_status({}, 1, _plan(), Observed(_deployment(1, 0, 0)), NOW)
    assert first.status["phase"] == "Deploying"
    assert _condition(first.status, "Available")["status"] == "False"
    assert [e.reason for e in first.events] == ["Planned"]
    done = compute_status(first.status, 1, _plan(), Observed(_deployment(1, 1)), LATER)
    assert done.status["phase"] == "Ready" and done.status["observedGeneration"] == 1
    assert _condition(done.status, "Available")["lastTransitionTime"] == LATER
    assert _condition(done.status, "Planned")["lastTransitionTime"] == NOW  # unchanged status keeps its time
    assert [e.reason for e in done.events] == ["Available"]
    again = compute_status(done.status, 1, _plan(), Observed(_deployment(1, 1)), LATER)
    assert again.events == [] and status_changed(done.status, again.status) == {}


def test_refusal_keeps_reporting_the_running_children() -> None:
    ready = compute_status({}, 1, _plan(), Observed(_deployment(2, 2)), NOW).status
    refused = compute_status(ready, 2, _plan("nf4"), Observed(_deployment(2, 2)), LATER)
    assert refused.status["phase"] == "Failed"
    planned = _condition(refused.status, "Planned")
    assert planned["status"] == "False" and "removed in 0.28.0" in planned["message"]
    assert _condition(refused.status, "Available")["status"] == "True"
    assert refused.status["observedGeneration"] == 2  # written for a refused spec too: GitOps sees the refusal
    ready_condition, stalled = _condition(refused.status, "Ready"), _condition(refused.status, "Stalled")
    assert (ready_condition["status"], ready_condition["reason"]) == ("False", "PlanRefused")
    assert ready_condition["message"] == planned["message"] == stalled["message"]
    assert (stalled["status"], stalled["reason"]) == ("True", "PlanRefused")
    assert _condition(refused.status, "Reconciling")["status"] == "False"
    assert [(e.type, e.reason) for e in refused.events] == [("Warning", "PlanRefused")]
    repeat = compute_status(refused.status, 2, _plan("nf4"), Observed(_deployment(2, 2)), LATER)
    assert repeat.events == []  # no event storm on every resync


def test_unschedulable_pods_show_in_status() -> None:
    pod = {"metadata": {"name": "chat-abc"}, "status": {"phase": "Pending", "conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
         "message": "0/11 nodes are available: 11 node(s) didn't match Pod's node affinity/selector."}]}}  # fmt: skip
    update = compute_status({}, 1, _plan(), Observed(_deployment(1, 0, 1), [pod]), NOW)
    degraded = _condition(update.status, "Degraded")
    assert degraded["status"] == "True" and degraded["reason"] == "Unschedulable"
    assert "node affinity/selector" in degraded["message"] and update.status["phase"] == "Pending"
    assert ("Warning", "Unschedulable") in [(e.type, e.reason) for e in update.events]


def test_drift_ignores_server_defaults_but_sees_changes() -> None:
    desired = {"metadata": {"labels": {"a": "1"}}, "spec": {"replicas": 2, "template": {"x": [{"name": "c"}]}}}
    live = {
        "metadata": {"labels": {"a": "1", "extra": "y"}, "annotations": {"k": "v"}},
        "spec": {"replicas": 2, "progressDeadlineSeconds": 600, "template": {"x": [{"name": "c", "t": 1}]}},
    }
    assert not managed_fields_drift(desired, live)
    live["spec"]["replicas"] = 5
    assert managed_fields_drift(desired, live)
    assert managed_fields_drift(desired, None)
    assert not contains({"a": [1, 2]}, {"a": [1]}) and contains(True, True) and not contains(1, True)
