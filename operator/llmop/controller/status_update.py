"""Status computation (pure), the one module that builds status: phase, conditions and events from the plan and
the observed children (reconcile), and the autoscaler's report of a decision."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from llmop.api.status import ConditionType, LLMDeploymentStatus, Phase, PlanStatus, get_condition, set_condition
from llmop.autoscale.metrics import Observation
from llmop.autoscale.policy import Decision
from llmop.plan.types import Plan, PlanErrors


@dataclass(frozen=True)
class EventIntent:
    """A Kubernetes Event to post about the LLMDeployment."""

    type: str  # Normal | Warning
    reason: str
    message: str


@dataclass(frozen=True)
class Observed:
    """What the shell read from the cluster about an LLMDeployment's children."""

    deployment: dict[str, Any] | None
    pods: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class StatusUpdate:
    """The status fields to write and the events to post."""

    status: dict[str, Any]
    events: list[EventIntent]


def recorded_replicas(status: dict[str, Any]) -> int | None:
    """The autoscaler's last decision (status.desiredReplicas) when it is a sane count, else None."""
    recorded = status.get("desiredReplicas")
    if isinstance(recorded, int) and not isinstance(recorded, bool) and recorded >= 0:
        return recorded
    return None


def typed(status: dict[str, Any]) -> dict[str, Any]:
    """Every status this module writes goes through the typed model (api/status.py, from which the CRD's status
    schema is generated): a field the CRD lacks or a value of the wrong type fails here, not in the API server."""
    return LLMDeploymentStatus.model_validate(status).model_dump(by_alias=True, exclude_unset=True, mode="json")


PLAN_STATUS_KEYS = frozenset(field.alias or name for name, field in PlanStatus.model_fields.items())


def plan_summary(plan: Plan) -> dict[str, Any]:
    """status.plan: the PlanStatus fields of `llmop plan --json`'s plan object, plus the warnings as text."""
    data = {key: value for key, value in plan.to_json().items() if key in PLAN_STATUS_KEYS}
    data["warnings"] = [str(w) for w in plan.warnings]
    return PlanStatus.model_validate(data).model_dump(by_alias=True, mode="json")


def unschedulable_message(pods: list[dict[str, Any]]) -> str | None:
    """The scheduler's reason for the first Pending pod it could not place, if any."""
    for pod in pods:
        if (pod.get("status") or {}).get("phase") != "Pending":
            continue
        for condition in (pod.get("status") or {}).get("conditions") or []:
            if (condition.get("type"), condition.get("status"), condition.get("reason")) == (
                "PodScheduled",
                "False",
                "Unschedulable",
            ):
                return f"pod {pod['metadata']['name']}: {condition.get('message', 'unschedulable')}"
    return None


def _deployment_counts(deployment: dict[str, Any] | None) -> tuple[int, int, int, int]:
    if deployment is None:
        return 0, 0, 0, 0
    spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
    return (
        int(spec.get("replicas") or 0),
        int(status.get("replicas") or 0),
        int(status.get("readyReplicas") or 0),
        int(status.get("updatedReplicas") or 0),
    )


def rollout_complete(deployment: dict[str, Any] | None) -> bool:
    """The controller has seen the latest spec and every desired replica is updated and ready."""
    if deployment is None:
        return False
    desired, current, ready, updated = _deployment_counts(deployment)
    status = deployment.get("status") or {}
    observed = status.get("observedGeneration", 0) >= deployment["metadata"].get("generation", 0)
    return observed and updated == desired and ready == desired and current == desired


def compute_status(
    current: dict[str, Any],
    generation: int | None,
    result: Plan | PlanErrors,
    observed: Observed,
    now: str,
) -> StatusUpdate:
    """New status (merged onto `current`) and the events that the transitions call for. `desiredReplicas` is not
    written here: the autoscaler (controller/autoscaler.py) is its only writer."""
    conditions: list[dict[str, Any]] = list(current.get("conditions") or [])
    events: list[EventIntent] = []
    previous_planned = get_condition(conditions, ConditionType.PLANNED)
    status: dict[str, Any] = {}

    if isinstance(result, PlanErrors):
        message = result.summary
        conditions = set_condition(conditions, ConditionType.PLANNED, False, "PlanRefused", message, generation, now)
        if not (
            previous_planned
            and previous_planned.get("status") == "False"
            and previous_planned.get("message") == message
        ):
            events.append(EventIntent("Warning", "PlanRefused", message))
    else:
        warnings = "; ".join(str(w) for w in result.warnings)
        message = (
            f"{result.tensor_parallel} x {result.gpu_type}, {result.engine} {result.engine_version}, "
            f"{result.quantization}, {result.attention_backend}, decode floor {result.decode_floor_ms:.1f} ms"
            + (f"; warnings: {warnings}" if warnings else "")
        )
        conditions = set_condition(conditions, ConditionType.PLANNED, True, "Planned", message, generation, now)
        status["plan"] = plan_summary(result)
        if not (
            previous_planned
            and previous_planned.get("status") == "True"
            and previous_planned.get("observedGeneration") == generation
        ):
            events.append(EventIntent("Normal", "Planned", message))

    desired, current_replicas, ready, updated = _deployment_counts(observed.deployment)
    status["replicas"] = current_replicas
    status["readyReplicas"] = ready
    if observed.deployment is not None:
        status["deploymentName"] = observed.deployment["metadata"]["name"]

    unschedulable = unschedulable_message(observed.pods)
    rollout_done = rollout_complete(observed.deployment)
    available = observed.deployment is not None and ready > 0
    if observed.deployment is None:
        conditions = set_condition(
            conditions, ConditionType.AVAILABLE, False, "NoDeployment", "no engine Deployment exists", generation, now
        )
    elif desired == 0:
        conditions = set_condition(
            conditions, ConditionType.AVAILABLE, False, "ScaledToZero", "0 replicas requested", generation, now
        )
    else:
        conditions = set_condition(
            conditions,
            ConditionType.AVAILABLE,
            available,
            "ReplicasReady" if available else "NoReadyReplicas",
            f"{ready}/{desired} replicas ready",
            generation,
            now,
        )
    progressing = observed.deployment is not None and not rollout_done
    conditions = set_condition(
        conditions,
        ConditionType.PROGRESSING,
        progressing,
        "RollingOut" if progressing else "RolloutComplete",
        f"{updated}/{desired} updated, {ready}/{desired} ready",
        generation,
        now,
    )
    if unschedulable:
        conditions = set_condition(
            conditions, ConditionType.DEGRADED, True, "Unschedulable", unschedulable, generation, now
        )
    else:
        conditions = set_condition(conditions, ConditionType.DEGRADED, False, "AsExpected", "", generation, now)

    previous_available = get_condition(list(current.get("conditions") or []), ConditionType.AVAILABLE)
    if rollout_done and desired > 0 and not (previous_available and previous_available.get("status") == "True"):
        events.append(EventIntent("Normal", "Available", f"{ready}/{desired} replicas ready"))
    previous_degraded = get_condition(list(current.get("conditions") or []), ConditionType.DEGRADED)
    if unschedulable and not (previous_degraded and previous_degraded.get("message") == unschedulable):
        events.append(EventIntent("Warning", "Unschedulable", unschedulable))

    if isinstance(result, PlanErrors):
        phase = Phase.FAILED
    elif unschedulable:
        phase = Phase.DEGRADED if available else Phase.PENDING
    elif observed.deployment is None:
        phase = Phase.PENDING
    elif rollout_done:
        phase = Phase.READY
    else:
        phase = Phase.DEPLOYING
    status["phase"] = phase.value
    status["conditions"] = conditions
    if generation is not None and not isinstance(result, PlanErrors):
        status["observedGeneration"] = generation
    return StatusUpdate(status=typed(status), events=events)


def merge_patch(old: Any, new: Any) -> Any:
    """RFC 7386 merge patch turning `old` into `new`: nested keys that disappeared are sent as null."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return new
    patch = {key: merge_patch(old.get(key), value) for key, value in new.items() if old.get(key) != value}
    patch.update({key: None for key in old if key not in new})
    return patch


def status_changed(current: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Merge patch for the fields of `update` that differ from `current` (empty: write nothing)."""
    return {key: merge_patch(current.get(key), value) for key, value in update.items() if current.get(key) != value}


LATENCY_MOVE = 0.05  # decodeLatency is rewritten when the observed latency moves by more than this share (and 0.5 ms)


def _latency_moved(previous: Any, latency: dict[str, Any] | None) -> bool:
    if latency is None:
        return False
    if not isinstance(previous, dict) or previous.get("percentile") != latency.get("percentile"):
        return True
    old = previous.get("observedMs")
    if not isinstance(old, int | float) or isinstance(old, bool):
        return True
    return bool(abs(latency["observedMs"] - old) > max(0.5, LATENCY_MOVE * old))


def _metrics_condition(decision: Decision, obs: Observation) -> tuple[bool, str, str]:
    if not decision.metrics_available:
        # its own reason, so that the switch from "too few tokens" to "the probe failed" is a transition (written)
        return False, "ProbeFailed" if obs.source == "probe" else "MetricsUnavailable", decision.metrics_reason
    if obs.source == "probe":
        return True, "ActiveProbe", obs.note
    return True, "MetricsAvailable", f"p{obs.percentile:g} TPOT {obs.latency_text()} from {obs.samples:.0f} samples"


def decision_status(
    current: dict[str, Any],
    decision: Decision,
    obs: Observation,
    replicas: int,
    generation: int | None,
    now: str,
) -> tuple[dict[str, Any], list[EventIntent]]:
    """Status fields and events for one decision (pure).

    Steady state writes nothing: while nothing meaningful changes (condition status or reason, desired replicas,
    the latency by more than LATENCY_MOVE, the policy's memory), the previous messages and decodeLatency are kept,
    so the merge patch is empty. No periodic refresh either: at 500 objects a 60 s heartbeat alone would be
    8 writes/s. Freshness shows elsewhere: MetricsAvailable turns False as soon as data stops, and the operator's
    own metrics carry the latency of every tick. autoscaler.reportedAt says when the report was last written."""
    previous = list(current.get("conditions") or [])
    events: list[EventIntent] = []
    metrics_ok, metrics_reason, metrics_message = _metrics_condition(decision, obs)
    slo_reason = "NoData" if decision.slo_met is None else ("WithinSLO" if decision.slo_met else "SLOBreached")
    wanted = [
        (ConditionType.METRICS_AVAILABLE, metrics_ok, metrics_reason, metrics_message),
        (ConditionType.SLO_MET, decision.slo_met, slo_reason, decision.reason),
    ]
    latency: dict[str, Any] | None = None
    if obs.latency_ms is not None:
        latency = {"observedMs": round(obs.latency_ms, 2), "observedAt": now}
        if obs.source != "probe":  # a probe's figure is one stream's mean TPOT, not a percentile
            latency["percentile"] = int(obs.percentile)
            if int(obs.percentile) == 95:
                latency["p95Ms"] = round(obs.latency_ms, 2)
    state = decision.state.to_dict()
    old_state = {k: v for k, v in (current.get("autoscaler") or {}).items() if k != "reportedAt"}
    reported_at = (current.get("autoscaler") or {}).get("reportedAt")
    refresh = (
        not isinstance(reported_at, str)
        or decision.desired != current.get("desiredReplicas")
        or state != old_state
        or _latency_moved(current.get("decodeLatency"), latency)
        or any(_transition(previous, type_, status, reason) for type_, status, reason, _ in wanted)
    )
    conditions = previous
    for type_, truth, reason, message in wanted:
        old = get_condition(previous, type_)
        if not refresh and old is not None:
            message = str(old.get("message", ""))
        conditions = set_condition(conditions, type_, truth, reason, message, generation, now)
    old_metrics = get_condition(previous, ConditionType.METRICS_AVAILABLE)
    if not metrics_ok and (not old_metrics or old_metrics.get("status") != "False"):
        events.append(
            EventIntent("Warning", "MetricsUnavailable", f"holding {replicas} replicas: {decision.metrics_reason}")
        )
    status: dict[str, Any] = {
        "conditions": conditions,
        "desiredReplicas": decision.desired,
        "autoscaler": {**state, "reportedAt": now if refresh else reported_at},
    }
    if latency is not None:
        status["decodeLatency"] = latency if refresh or not current.get("decodeLatency") else current["decodeLatency"]
    if decision.direction != "hold" and decision.desired != replicas:
        status["lastScale"] = {"at": now, "from": replicas, "to": decision.desired, "reason": decision.reason}
        events.append(EventIntent("Normal", "Scaled", decision.reason))
    return typed(status), events


def _transition(conditions: list[dict[str, Any]], type_: str, status: bool | None, reason: str) -> bool:
    old = get_condition(conditions, type_)
    text = "Unknown" if status is None else ("True" if status else "False")
    return old is None or old.get("status") != text or old.get("reason") != reason
