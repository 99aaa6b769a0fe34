"""Whether an LLMDeployment serves, from its Deployment and pods (pure): the phase and the rollout conditions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmop.api.status import ConditionType, Phase
from llmop.controller.pod_health import DEADLINE, UNSCHEDULABLE, Problem, loading_count, problems, summary

LOADING_MODEL = "LoadingModel"
PLAN_REFUSED = "PlanRefused"

Wanted = tuple[ConditionType, bool, str, str]  # type, status, reason, message


@dataclass(frozen=True)
class Serving:
    """The phase and the conditions about the children, with the counts behind them."""

    phase: Phase
    conditions: tuple[Wanted, ...]
    problems: tuple[Problem, ...]
    desired: int
    replicas: int
    ready: int


def deployment_counts(deployment: dict[str, Any] | None) -> tuple[int, int, int, int]:
    """spec.replicas, status.replicas, readyReplicas and updatedReplicas of a Deployment (zeros without one)."""
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
    desired, current, ready, updated = deployment_counts(deployment)
    status = deployment.get("status") or {}
    observed = status.get("observedGeneration", 0) >= deployment["metadata"].get("generation", 0)
    return observed and updated == desired and ready == desired and current == desired


def _phase(refused: bool, deployment: dict[str, Any] | None, first: Problem | None, loading: int) -> Phase:
    ready = deployment_counts(deployment)[2]
    if refused:
        return Phase.FAILED
    if deployment is None:
        return Phase.PENDING
    if rollout_complete(deployment):
        return Phase.READY
    if first is not None and ready > 0:
        return Phase.DEGRADED
    if first is not None:
        return Phase.PENDING if first.reason == UNSCHEDULABLE else Phase.FAILED
    return Phase.LOADING if loading else Phase.DEPLOYING


def assess(refusal: str | None, deployment: dict[str, Any] | None, pods: list[dict[str, Any]]) -> Serving:
    """Phase and the Ready, Available, Progressing, Degraded, Reconciling and Stalled conditions. `refusal` is the
    planner's summary when the newest spec is refused (the running children are still reported)."""
    desired, current, ready, updated = deployment_counts(deployment)
    found = problems(pods, deployment) if not rollout_complete(deployment) else []
    first = found[0] if found else None
    loading = loading_count(pods)
    phase = _phase(refusal is not None, deployment, first, loading)
    counts = f"{updated}/{desired} updated, {ready}/{desired} ready"
    if phase == Phase.READY:
        ready_why = (
            ("ScaledToZero", "0 replicas requested")
            if desired == 0
            else ("ReplicasReady", f"{ready}/{desired} replicas ready")
        )
    elif refusal is not None:
        ready_why = (PLAN_REFUSED, refusal)
    elif deployment is None:
        ready_why = ("NoDeployment", "no engine Deployment exists")
    elif first is not None:
        ready_why = (first.reason, summary(found))
    elif phase == Phase.LOADING:
        ready_why = (LOADING_MODEL, f"{loading} pod(s) started and loading the model, {ready}/{desired} ready")
    else:
        ready_why = ("RollingOut", counts)
    if deployment is None:
        available = (False, "NoDeployment", "no engine Deployment exists")
    elif desired == 0:
        available = (False, "ScaledToZero", "0 replicas requested")
    else:
        available = (
            ready > 0,
            "ReplicasReady" if ready > 0 else "NoReadyReplicas",
            f"{ready}/{desired} replicas ready",
        )
    deadline = next((p for p in found if p.reason == DEADLINE), None)
    progressing = deployment is not None and not rollout_complete(deployment) and deadline is None
    progress_reason = LOADING_MODEL if phase == Phase.LOADING else "RollingOut"
    if deadline is not None:  # as the Deployment says it: Progressing=False, ProgressDeadlineExceeded
        progress_reason = DEADLINE
    elif not progressing:
        progress_reason = "RolloutComplete"
    stalled, is_ready = phase == Phase.FAILED, phase == Phase.READY
    conditions: tuple[Wanted, ...] = (
        (ConditionType.READY, is_ready, *ready_why),
        (ConditionType.AVAILABLE, *available),
        (ConditionType.PROGRESSING, progressing, progress_reason, counts),
        (ConditionType.DEGRADED, first is not None, first.reason if first else "AsExpected", summary(found)),
        (
            ConditionType.RECONCILING,
            not (is_ready or stalled),
            *(("Reconciled", "") if is_ready or stalled else ready_why),
        ),
        (ConditionType.STALLED, stalled, *(ready_why if stalled else ("NotStalled", ""))),
    )
    return Serving(phase, conditions, tuple(found), desired, current, ready)
