"""The reconciler and the autoscaler shell against a small fake API: what they apply, write and post, exactly."""

from __future__ import annotations

from typing import Any

from llmop.controller.autoscaler import Autoscaler
from llmop.controller.reconcile import Reconciler
from llmop.controller.settings import OperatorConfig
from llmop_dev.localcluster.samples import h100_llmdeployment
from support.fake_kube import FakeKube


def _setup(**spec_changes: Any) -> tuple[FakeKube, Reconciler, Autoscaler]:
    kube = FakeKube()
    body = h100_llmdeployment("chat", min_replicas=1, max_replicas=4)
    body["spec"].update(spec_changes)
    kube.add_llmd(body)
    reconciler = Reconciler(kube, OperatorConfig())  # type: ignore[arg-type]
    return kube, reconciler, Autoscaler(kube, OperatorConfig(), reconciler.locked, plans=reconciler.plans)  # type: ignore[arg-type]


def _reconcile(kube: FakeKube, reconciler: Reconciler) -> list[str]:
    kube.calls.clear()
    reconciler.reconcile({"metadata": {"namespace": "ns", "name": "chat"}})
    return list(kube.calls)


def _replicas(kube: FakeKube) -> int:
    return int(kube.objects[("Deployment", "ns", "chat")]["spec"]["replicas"])


def _status(kube: FakeKube) -> dict[str, Any]:
    return dict(kube.llmds[("ns", "chat")].get("status") or {})


def test_first_pass_applies_the_three_children_and_writes_status_without_desired_replicas() -> None:
    kube, reconciler, _ = _setup()
    calls = _reconcile(kube, reconciler)
    assert [c for c in calls if c.startswith("apply")] == [
        "apply Deployment",
        "apply Service",
        "apply PodDisruptionBudget",
    ]
    assert calls.count("list_pods") == 1  # the rollout is not complete: a pod may be Pending
    assert _replicas(kube) == 1
    status = _status(kube)
    assert status["phase"] == "Deploying" and "desiredReplicas" not in status  # the autoscaler is its one writer
    assert [e.reason for e in kube.events] == ["Planned"]


def test_a_pass_with_nothing_drifted_applies_nothing_writes_nothing_and_skips_pods_once_rolled_out() -> None:
    kube, reconciler, _ = _setup()
    _reconcile(kube, reconciler)
    kube.set_deployment_status("ns", "chat", replicas=1, readyReplicas=1, updatedReplicas=1, observedGeneration=1)
    _reconcile(kube, reconciler)  # rollout complete: Ready, Available event
    calls = _reconcile(kube, reconciler)
    assert calls == ["get_llmd", "get Deployment", "get Service", "get PodDisruptionBudget"]
    assert [e.reason for e in kube.events] == ["Planned", "Available"]


def test_drift_of_an_owned_field_is_applied_back() -> None:
    kube, reconciler, _ = _setup()
    _reconcile(kube, reconciler)
    kube.objects[("Deployment", "ns", "chat")]["spec"]["replicas"] = 3  # a hand edit
    calls = _reconcile(kube, reconciler)
    assert [c for c in calls if c.startswith("apply")] == ["apply Deployment"]
    assert _replicas(kube) == 1


def test_recorded_replicas_are_clamped_to_min_and_max() -> None:
    kube, reconciler, _ = _setup()
    kube.llmds[("ns", "chat")]["status"] = {"desiredReplicas": 99}
    _reconcile(kube, reconciler)
    assert _replicas(kube) == 4
    kube.llmds[("ns", "chat")]["status"]["desiredReplicas"] = 0
    _reconcile(kube, reconciler)
    assert _replicas(kube) == 1
    kube.llmds[("ns", "chat")]["status"]["desiredReplicas"] = 3
    _reconcile(kube, reconciler)
    assert _replicas(kube) == 3


def test_autoscaling_disabled_runs_min_replicas_and_the_autoscaler_writes_it_once() -> None:
    kube, reconciler, autoscaler = _setup(autoscaling={"enabled": False}, replicas={"min": 2, "max": 4})
    kube.llmds[("ns", "chat")]["status"] = {"desiredReplicas": 3}
    _reconcile(kube, reconciler)
    assert _replicas(kube) == 2
    decision = autoscaler.step(kube.get_llmd("ns", "chat") or {})
    assert decision is not None and (decision.desired, decision.direction) == (2, "down")
    assert kube.status_patches[-1] == {"desiredReplicas": 2}
    patches = len(kube.status_patches)
    assert autoscaler.step(kube.get_llmd("ns", "chat") or {}) is None
    assert len(kube.status_patches) == patches


def test_one_plan_per_generation_serves_reconciler_and_autoscaler() -> None:
    kube, reconciler, autoscaler = _setup(autoscaling={"enabled": False})
    for _ in range(3):
        _reconcile(kube, reconciler)
        autoscaler.step(kube.get_llmd("ns", "chat") or {})
    assert reconciler.plans.computed == 1


def test_a_refused_spec_applies_nothing_and_posts_plan_refused_once_per_reason() -> None:
    kube, reconciler, _ = _setup(quantization="nf4")
    calls = _reconcile(kube, reconciler)
    assert not [c for c in calls if c.startswith("apply")]
    assert _status(kube)["phase"] == "Failed" and _status(kube)["observedGeneration"] == 1
    assert "endpoint" not in _status(kube) and _status(kube)["selector"] == "llmop.io/llmdeployment=chat"
    _reconcile(kube, reconciler)
    assert [e.reason for e in kube.events] == ["PlanRefused"]
    body = kube.llmds[("ns", "chat")]
    body["spec"]["quantization"] = "int8"
    body["metadata"]["generation"] = 2
    _reconcile(kube, reconciler)
    assert [e.reason for e in kube.events] == ["PlanRefused", "PlanRefused"]
    assert kube.events[0].message != kube.events[1].message


def test_an_unschedulable_pod_is_reported_once_not_on_every_pass() -> None:
    kube, reconciler, _ = _setup()
    kube.pods = [{
        "metadata": {"name": "chat-abc"},
        "status": {"phase": "Pending", "conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/3 nodes: no GPU"}
        ]},
    }]  # fmt: skip
    for _ in range(3):
        _reconcile(kube, reconciler)
    assert [e.reason for e in kube.events] == ["Planned", "Unschedulable"]
    assert _status(kube)["phase"] == "Pending"


def test_with_autoscaling_disabled_min_is_the_count_even_above_max() -> None:
    """The scale subresource writes spec.replicas.min: `kubectl scale --replicas=3` on max 1 runs 3 replicas."""
    kube, reconciler, autoscaler = _setup(autoscaling={"enabled": False}, replicas={"min": 3, "max": 1})
    _reconcile(kube, reconciler)
    assert _replicas(kube) == 3 and _status(kube)["phase"] == "Deploying"
    assert _status(kube)["endpoint"]["openAIBaseURL"] == "http://chat.ns.svc:8000/v1"
    decision = autoscaler.step(kube.get_llmd("ns", "chat") or {})
    assert decision is not None and decision.desired == 3 and kube.status_patches[-1] == {"desiredReplicas": 3}


def test_with_autoscaling_enabled_min_above_max_is_refused() -> None:
    kube, reconciler, _ = _setup(replicas={"min": 3, "max": 1})
    _reconcile(kube, reconciler)
    assert _status(kube)["phase"] == "Failed"
    assert [(e.reason, e.message) for e in kube.events] == [
        ("PlanRefused", "spec.replicas: min 3 is above max 1; set min <= max")
    ]
