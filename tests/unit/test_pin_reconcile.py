"""controller/reconcile.py pinned against a recording fake API: the exact result of each pass, what it reads and
writes with which arguments, its lock, its clock, its own metrics and its log line."""

from __future__ import annotations

import logging
import threading
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client import REGISTRY

from llmop.catalog.engines import ENGINES, Engine
from llmop.controller import reconcile as reconcile_module
from llmop.controller.reconcile import Reconciler, ReconcileResult, desired_replicas
from llmop.controller.settings import OperatorConfig
from llmop.controller.status_update import EventIntent
from llmop.plan.types import Plan
from llmop_dev.localcluster.samples import h100_llmdeployment
from support.fake_kube import FakeKube

NOW = "2025-01-02T03:04:05Z"
VLLM = ENGINES[Engine.VLLM].pinned_version
PLAN_EVENT = f"1 x H100-80GB, vllm {VLLM}, fp8, flash-attention-3, decode floor 3.9 ms"


class RecordingKube(FakeKube):
    """FakeKube that also records the arguments of the reads and writes that take them."""

    def __init__(self) -> None:
        super().__init__()
        self.pod_queries: list[tuple[str, dict[str, str]]] = []
        self.event_bodies: list[str] = []
        self.gets: list[tuple[str, str, str]] = []
        self.fetched = threading.Event()

    def get_llmd(self, namespace: str, name: str) -> dict[str, Any] | None:
        self.fetched.set()
        return super().get_llmd(namespace, name)

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        self.gets.append((kind, namespace, name))
        return super().get(kind, namespace, name)

    def list_pods(self, namespace: str, selector: dict[str, str]) -> list[dict[str, Any]]:
        self.pod_queries.append((namespace, dict(selector)))
        return super().list_pods(namespace, selector)

    def post_event(self, body: dict[str, Any], intent: EventIntent) -> None:
        self.event_bodies.append(f"{body['metadata']['namespace']}/{body['metadata']['name']}")
        super().post_event(body, intent)


class Clock:
    """time.monotonic for the reconcile module: the values given, in order, then the last one."""

    def __init__(self, *values: float) -> None:
        self.values = list(values)

    def monotonic(self) -> float:
        return self.values.pop(0) if len(self.values) > 1 else self.values[0]


@pytest.fixture(autouse=True)
def _fixed_now(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reconcile_module, "now_rfc3339", lambda: NOW)


def _setup(name: str = "chat", namespace: str = "ns", config: OperatorConfig | None = None,
           **spec: Any) -> tuple[RecordingKube, Reconciler]:  # fmt: skip
    kube = RecordingKube()
    body = h100_llmdeployment(name, min_replicas=1, max_replicas=4)
    body["metadata"]["namespace"] = namespace
    body["spec"].update(spec)
    kube.add_llmd(body)
    return kube, Reconciler(kube, config or OperatorConfig())  # type: ignore[arg-type]


def _pass(reconciler: Reconciler, name: str = "chat", namespace: str = "ns") -> ReconcileResult:
    return reconciler.reconcile({"metadata": {"namespace": namespace, "name": name}})


def _sample(metric: str, name: str = "chat", namespace: str = "ns") -> float:
    return REGISTRY.get_sample_value(metric, {"namespace": namespace, "llmdeployment": name}) or 0.0


def test_pass_results_pin_planned_applied_status_written_and_event_reasons() -> None:
    kube, reconciler = _setup()
    assert _pass(reconciler) == ReconcileResult(
        planned=True,
        applied=("Deployment", "Service", "PodDisruptionBudget"),
        status_written=True,
        events=("Planned",),
    )
    assert _pass(reconciler) == ReconcileResult(True, (), False, ())  # nothing drifted, nothing changed
    kube.set_deployment_status("ns", "chat", replicas=1, readyReplicas=1, updatedReplicas=1, observedGeneration=1)
    assert _pass(reconciler) == ReconcileResult(True, (), True, ("Available",))
    kube.llmds[("ns", "chat")]["spec"]["quantization"] = "nf4"
    kube.llmds[("ns", "chat")]["metadata"]["generation"] = 2
    assert _pass(reconciler) == ReconcileResult(False, (), True, ("PlanRefused",))


def test_a_missing_or_deleting_object_is_a_pass_that_does_nothing_but_read_it() -> None:
    kube, reconciler = _setup()
    assert _pass(reconciler, name="other") == ReconcileResult(False, (), False, ())
    kube.llmds[("ns", "chat")]["metadata"]["deletionTimestamp"] = NOW
    kube.calls.clear()
    assert _pass(reconciler) == ReconcileResult(False, (), False, ())
    assert kube.calls == ["get_llmd"] and not kube.events and not kube.objects
    assert not reconciler.reconciled_within("ns", "chat", 3600.0)  # no complete pass


def test_children_carry_the_owner_uid_and_the_configured_image_registry() -> None:
    kube, reconciler = _setup(config=OperatorConfig(image_registry="registry.example/mirror"))
    _pass(reconciler)
    for kind in ("Deployment", "Service", "PodDisruptionBudget"):
        [owner] = kube.objects[(kind, "ns", "chat")]["metadata"]["ownerReferences"]
        assert (owner["kind"], owner["name"], owner["uid"]) == ("LLMDeployment", "chat", "uid-chat"), kind
    [container] = kube.objects[("Deployment", "ns", "chat")]["spec"]["template"]["spec"]["containers"]
    assert container["image"].startswith("registry.example/mirror/")


def test_pods_are_listed_in_the_objects_namespace_by_its_selector_and_events_name_the_object() -> None:
    kube, reconciler = _setup(name="chat", namespace="team-a")
    _pass(reconciler, "chat", "team-a")
    assert kube.pod_queries == [("team-a", {"llmop.io/llmdeployment": "chat"})]
    assert kube.event_bodies == ["team-a/chat"]
    assert [(e.type, e.reason, e.message) for e in kube.events] == [("Normal", "Planned", PLAN_EVENT)]


def test_a_63_character_name_still_lists_its_pods() -> None:
    name = "a" * 63  # the longest name the planner accepts: a label value can select it
    kube, reconciler = _setup(name=name)
    assert _pass(reconciler, name).planned
    assert kube.pod_queries == [("ns", {"llmop.io/llmdeployment": name})]


def test_a_refused_spec_reads_the_deployment_left_from_an_accepted_generation() -> None:
    kube, reconciler = _setup()
    _pass(reconciler)
    kube.set_deployment_status("ns", "chat", replicas=1, readyReplicas=1, updatedReplicas=1, observedGeneration=1)
    kube.llmds[("ns", "chat")]["spec"]["quantization"] = "nf4"
    kube.llmds[("ns", "chat")]["metadata"]["generation"] = 2
    kube.gets.clear()
    kube.calls.clear()
    assert _pass(reconciler).applied == ()
    assert kube.gets == [("Deployment", "ns", "chat")]
    assert "list_pods" not in kube.calls  # the old rollout is complete: no pod can be Pending
    status = kube.llmds[("ns", "chat")]["status"]
    assert (status["phase"], status["deploymentName"], status["replicas"], status["readyReplicas"]) == (
        "Failed", "chat", 1, 1
    )  # fmt: skip


def test_status_conditions_carry_the_pass_time_and_the_plan_refusal_is_counted_per_object() -> None:
    kube, reconciler = _setup(quantization="nf4")
    before = _sample("llmop_plan_refusals_total")
    _pass(reconciler)
    _pass(reconciler)
    assert _sample("llmop_plan_refusals_total") - before == 2.0
    conditions = kube.llmds[("ns", "chat")]["status"]["conditions"]
    assert {c["lastTransitionTime"] for c in conditions} == {NOW}


def test_ready_replicas_gauge_follows_the_status_of_this_object() -> None:
    kube, reconciler = _setup(name="gauge")
    _pass(reconciler, "gauge")
    assert REGISTRY.get_sample_value("llmop_ready_replicas", {"namespace": "ns", "llmdeployment": "gauge"}) == 0.0
    kube.set_deployment_status("ns", "gauge", replicas=2, readyReplicas=2, updatedReplicas=2, observedGeneration=1)
    _pass(reconciler, "gauge")
    assert REGISTRY.get_sample_value("llmop_ready_replicas", {"namespace": "ns", "llmdeployment": "gauge"}) == 2.0


def test_the_duration_metric_observes_end_minus_start_of_the_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    _, reconciler = _setup(name="timed")
    count = _sample("llmop_reconcile_duration_seconds_count", "timed")
    total = _sample("llmop_reconcile_duration_seconds_sum", "timed")
    monkeypatch.setattr(reconcile_module, "time", SimpleNamespace(monotonic=Clock(100.0, 100.2, 100.25).monotonic))
    _pass(reconciler, "timed")
    assert _sample("llmop_reconcile_duration_seconds_count", "timed") - count == 1.0
    assert _sample("llmop_reconcile_duration_seconds_sum", "timed") - total == pytest.approx(0.25)


def test_reconciled_within_is_strict_and_forget_clears_it(monkeypatch: pytest.MonkeyPatch) -> None:
    _, reconciler = _setup()
    assert not reconciler.reconciled_within("ns", "chat", 3600.0)
    clock = Clock(100.0, 100.0, 100.0)
    monkeypatch.setattr(reconcile_module, "time", SimpleNamespace(monotonic=clock.monotonic))
    _pass(reconciler)  # the pass ends at 100.0
    clock.values = [130.0]
    assert reconciler.reconciled_within("ns", "chat", 30.5)
    assert not reconciler.reconciled_within("ns", "chat", 30.0)  # 30 s ago is not within 30 s
    assert not reconciler.reconciled_within("ns", "other", 3600.0)
    computed = reconciler.plans.computed
    reconciler.forget("ns", "never-reconciled")  # deleted before its first pass: nothing to forget, no error
    reconciler.forget("ns", "chat")
    assert not reconciler.reconciled_within("ns", "chat", 3600.0)
    _pass(reconciler)
    assert reconciler.plans.computed == computed + 1  # the cached plan went with it


def test_plan_for_answers_the_cached_plan_of_the_body() -> None:
    kube, reconciler = _setup()
    result = reconciler.plan_for(kube.get_llmd("ns", "chat") or {})
    assert isinstance(result, Plan) and (result.name, result.gpu_type, result.max_replicas) == ("chat", "H100-80GB", 4)


def test_a_pass_waits_for_the_objects_lock() -> None:
    kube, reconciler = _setup()
    done: list[ReconcileResult] = []
    with reconciler.locked("ns", "chat"):
        worker = threading.Thread(target=lambda: done.append(_pass(reconciler)))
        worker.start()
        assert not kube.fetched.wait(0.3)  # held: the pass has not even read the object
    worker.join(30)
    assert kube.fetched.is_set() and done and done[0].planned


def test_the_log_line_names_the_object_what_was_applied_and_the_status_fields(
    caplog: pytest.LogCaptureFixture,
) -> None:
    kube, reconciler = _setup()
    with caplog.at_level(logging.INFO, logger="llmop.reconcile"):
        _pass(reconciler)
        kube.set_deployment_status("ns", "chat", replicas=1, readyReplicas=1, updatedReplicas=1, observedGeneration=1)
        _pass(reconciler)  # a status change alone is logged too
        _pass(reconciler)  # nothing: no line
    assert [r.getMessage() for r in caplog.records if r.name == "llmop.reconcile"] == [
        "ns/chat: applied ['Deployment', 'Service', 'PodDisruptionBudget']; status "
        "['conditions', 'deploymentName', 'endpoint', 'observedGeneration', 'phase', 'plan', 'readyReplicas', "
        "'replicas', 'selector']",
        "ns/chat: applied nothing; status ['conditions', 'phase', 'readyReplicas', 'replicas']",
    ]


def test_desired_replicas_clamps_the_recorded_decision_and_falls_back_to_min() -> None:
    body = h100_llmdeployment("chat", min_replicas=2, max_replicas=5)
    body["metadata"].update(namespace="ns", uid="u", generation=1)
    result = Reconciler(RecordingKube(), OperatorConfig()).plan_for(body)  # type: ignore[arg-type]
    assert isinstance(result, Plan)
    cases = {None: 2, 0: 2, 2: 2, 3: 3, 5: 5, 9: 5, -1: 2, True: 2, "4": 2}
    for recorded, expected in cases.items():
        status = {} if recorded is None else {"desiredReplicas": recorded}
        assert desired_replicas({"spec": {}, "status": status}, result) == expected, recorded
    four = {"desiredReplicas": 4}
    assert desired_replicas({"spec": {"autoscaling": {"enabled": False}}, "status": four}, result) == 2
    assert desired_replicas({"spec": {"autoscaling": {"enabled": True}}, "status": four}, result) == 4
    assert desired_replicas({"spec": {"autoscaling": None}, "status": four}, result) == 4
    assert desired_replicas({"spec": None, "status": None}, result) == 2
