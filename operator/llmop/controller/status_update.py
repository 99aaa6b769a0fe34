"""Status computation (pure), the one module that builds status: phase, conditions and events from the plan and
the observed children (reconcile), and the autoscaler's report of a decision."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from llmop.api.status import ConditionType, LLMDeploymentStatus, Phase, PlanStatus, get_condition, set_condition
from llmop.autoscale.fallback import service_endpoint
from llmop.autoscale.metrics import Observation
from llmop.autoscale.policy import Decision
from llmop.controller.serving import LOADING_MODEL, Serving, assess
from llmop.plan.types import Plan, PlanErrors
from llmop.render.labels import selector_labels

OPENAI_BASE_PATH = "/v1"  # vLLM's and TGI's OpenAI-compatible API (/v1/chat/completions, /v1/completions, /v1/models)


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
    # no nulls: a merge patch deletes a null key, so a stored plan would never equal one with quantizationFlag: null
    return PlanStatus.model_validate(data).model_dump(by_alias=True, mode="json", exclude_none=True)


def endpoint(name: str, namespace: str, port: int) -> dict[str, Any]:
    """status.endpoint: the engine Service through cluster DNS and the OpenAI-compatible base URL under it."""
    url = service_endpoint(name, namespace, port)
    return {"service": name, "port": port, "url": url, "openAIBaseURL": f"{url}{OPENAI_BASE_PATH}"}


def _plan_condition(
    conditions: list[dict[str, Any]], generation: int | None, result: Plan | PlanErrors, now: str
) -> tuple[list[dict[str, Any]], list[EventIntent]]:
    """The Planned condition and its event (once per refusal message, once per accepted generation)."""
    previous = get_condition(conditions, ConditionType.PLANNED)
    if isinstance(result, PlanErrors):
        message = result.summary
        conditions = set_condition(conditions, ConditionType.PLANNED, False, result.reason, message, generation, now)
        repeated = previous and previous.get("status") == "False" and previous.get("message") == message
        return conditions, [] if repeated else [EventIntent("Warning", "PlanRefused", message)]
    warnings = "; ".join(str(w) for w in result.warnings)
    message = (
        f"{result.tensor_parallel} x {result.gpu_type}, {result.engine} {result.engine_version}, "
        f"{result.quantization}, {result.attention_backend}, decode floor {result.decode_floor_ms:.1f} ms"
        + (f"; warnings: {warnings}" if warnings else "")
    )
    conditions = set_condition(conditions, ConditionType.PLANNED, True, "Planned", message, generation, now)
    seen = previous and previous.get("status") == "True" and previous.get("observedGeneration") == generation
    return conditions, [] if seen else [EventIntent("Normal", "Planned", message)]


def _serving_events(previous: list[dict[str, Any]], serving: Serving) -> list[EventIntent]:
    """Once per reason change, not per pass or per message: a new failure reason, the model loading, available."""
    wanted = {type_: (truth, reason, message) for type_, truth, reason, message in serving.conditions}
    events: list[EventIntent] = []
    old_available = get_condition(previous, ConditionType.AVAILABLE) or {}
    if serving.phase == Phase.READY and serving.desired > 0 and old_available.get("status") != "True":
        events.append(EventIntent("Normal", "Available", f"{serving.ready}/{serving.desired} replicas ready"))
    degraded, reason, message = wanted[ConditionType.DEGRADED]
    old_degraded = get_condition(previous, ConditionType.DEGRADED) or {}
    if degraded and (old_degraded.get("status") != "True" or old_degraded.get("reason") != reason):
        events.append(EventIntent("Warning", reason, message))
    _, reason, message = wanted[ConditionType.READY]
    if reason == LOADING_MODEL and (get_condition(previous, ConditionType.READY) or {}).get("reason") != reason:
        events.append(EventIntent("Normal", LOADING_MODEL, message))
    return events


def compute_status(
    current: dict[str, Any],
    generation: int | None,
    result: Plan | PlanErrors,
    observed: Observed,
    now: str,
    where: tuple[str, str] | None = None,
) -> StatusUpdate:
    """New status (merged onto `current`) and the events that the transitions call for. `where` (namespace, name)
    adds the pod selector and the endpoint. `desiredReplicas` is not written here: the autoscaler
    (controller/autoscaler.py) is its only writer. observedGeneration is written on every pass, a refused spec's
    too, so that GitOps tools see the refusal (Ready=False, Stalled=True) instead of waiting for a newer status."""
    previous: list[dict[str, Any]] = list(current.get("conditions") or [])
    conditions, events = _plan_condition(previous, generation, result, now)
    status: dict[str, Any] = {}
    if isinstance(result, Plan):
        status["plan"] = plan_summary(result)
    refusal = result.summary if isinstance(result, PlanErrors) else None
    serving = assess(refusal, observed.deployment, observed.pods)
    status["replicas"] = serving.replicas
    status["readyReplicas"] = serving.ready
    if observed.deployment is not None:
        status["deploymentName"] = observed.deployment["metadata"]["name"]
    if where is not None:
        namespace, name = where
        status["selector"] = ",".join(f"{key}={value}" for key, value in selector_labels(name).items())
        if isinstance(result, Plan):
            status["endpoint"] = endpoint(name, namespace, result.port)
    for type_, truth, reason, message in serving.conditions:
        conditions = set_condition(conditions, type_, truth, reason, message, generation, now)
    events += _serving_events(previous, serving)
    status["phase"] = serving.phase.value
    status["conditions"] = conditions
    if generation is not None:
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
    if decision.capacity_note:
        events.append(EventIntent("Normal", "CapacityLearned", decision.capacity_note))
    return typed(status), events


def _transition(conditions: list[dict[str, Any]], type_: str, status: bool | None, reason: str) -> bool:
    old = get_condition(conditions, type_)
    text = "Unknown" if status is None else ("True" if status else "False")
    return old is None or old.get("status") != text or old.get("reason") != reason
