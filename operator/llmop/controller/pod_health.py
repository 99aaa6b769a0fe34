"""Why an LLMDeployment's pods are not serving (pure): container failures, scheduling, rollout deadline, loading."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any

# kubelet waiting reasons that mean the container cannot start without a change, and the reason llmop reports.
# ErrImagePull and ImagePullBackOff alternate on every retry: both are reported as ImagePullBackOff (no flapping).
FAILED_WAITING = {
    "CrashLoopBackOff": "CrashLoopBackOff",
    "ErrImagePull": "ImagePullBackOff",
    "ImagePullBackOff": "ImagePullBackOff",
    "ErrImageNeverPull": "ImagePullBackOff",
    "InvalidImageName": "InvalidImageName",
    "CreateContainerConfigError": "CreateContainerConfigError",
    "CreateContainerError": "CreateContainerError",
    "RunContainerError": "RunContainerError",
}
CRASH_LOOP = "CrashLoopBackOff"
UNSCHEDULABLE = "Unschedulable"
DEADLINE = "ProgressDeadlineExceeded"
TERMINATION_TAIL = 300  # characters of a crashed container's termination message (the engine's last log lines)
LISTED = 3  # problems quoted in one message; the rest are counted


@dataclass(frozen=True)
class Problem:
    """One reason the pods are not serving: a condition reason and its message."""

    reason: str
    message: str


def _live(pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pods not being deleted, by name (a stable order, so the first problem does not flap)."""
    alive = [p for p in pods if not (p.get("metadata") or {}).get("deletionTimestamp")]
    return sorted(alive, key=lambda p: str((p.get("metadata") or {}).get("name", "")))


def _pod_name(pod: Mapping[str, Any]) -> str:
    return str((pod.get("metadata") or {}).get("name", "?"))


def unschedulable(pod: Mapping[str, Any]) -> Problem | None:
    """The scheduler's reason when it could not place a Pending pod."""
    status = pod.get("status") or {}
    if status.get("phase") != "Pending":
        return None
    for condition in status.get("conditions") or []:
        if (condition.get("type"), condition.get("status"), condition.get("reason")) == (
            "PodScheduled",
            "False",
            UNSCHEDULABLE,
        ):
            return Problem(UNSCHEDULABLE, f"pod {_pod_name(pod)}: {condition.get('message', 'unschedulable')}")
    return None


def _exit_text(terminated: Mapping[str, Any]) -> str:
    text = f"exit code {terminated.get('exitCode', '?')}"
    if terminated.get("reason"):
        text += f" ({terminated['reason']})"
    message = str(terminated.get("message") or "").strip()
    if message:
        tail = message[-TERMINATION_TAIL:]
        text += f": {'...' if len(message) > TERMINATION_TAIL else ''}{tail}"
    return text


def _crashed(container: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The termination of a container that exited with an error and is not serving again."""
    if container.get("ready"):
        return None
    state = container.get("state") or {}
    now, last = state.get("terminated") or {}, (container.get("lastState") or {}).get("terminated") or {}
    if now and now.get("exitCode", 0) != 0:
        return dict(now)
    if last and last.get("exitCode", 0) != 0 and int(container.get("restartCount") or 0) > 0:
        return dict(last)
    return None


def container_problem(pod: Mapping[str, Any]) -> Problem | None:
    """The first failing container of a pod: a kubelet waiting reason that needs a change, or a crash (a container
    that exited with an error and is restarting counts as crash-looping until it is ready, so status does not flap
    between CrashLoopBackOff and loading on every restart)."""
    status = pod.get("status") or {}
    for container in [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]:
        name = container.get("name", "?")
        waiting = (container.get("state") or {}).get("waiting") or {}
        reason = FAILED_WAITING.get(str(waiting.get("reason")))
        crashed = _crashed(container)
        if reason == CRASH_LOOP or (reason is None and crashed is not None):
            restarts = int(container.get("restartCount") or 0)
            exit_text = f"; last {_exit_text(crashed)}" if crashed else ""
            return Problem(
                CRASH_LOOP, f"pod {_pod_name(pod)}: container {name} is crash-looping (restarts: {restarts}{exit_text})"
            )
        if reason is not None:
            detail = str(waiting.get("message") or "").strip()
            return Problem(
                reason, f"pod {_pod_name(pod)}: container {name}: {reason}" + (f": {detail}" if detail else "")
            )
    return None


def rollout_problem(deployment: Mapping[str, Any] | None) -> Problem | None:
    """The Deployment controller gave up waiting for progress (spec.progressDeadlineSeconds passed)."""
    if deployment is None:
        return None
    for condition in (deployment.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Progressing" and condition.get("reason") == DEADLINE:
            name = (deployment.get("metadata") or {}).get("name", "?")
            return Problem(DEADLINE, f"Deployment {name}: {condition.get('message', 'progress deadline exceeded')}")
    return None


def problems(pods: list[dict[str, Any]], deployment: Mapping[str, Any] | None) -> list[Problem]:
    """Every reason found, most specific first: failing containers, unplaceable pods, then the rollout deadline."""
    live = _live(pods)
    found = [p for p in (container_problem(pod) for pod in live) if p is not None]
    found += [p for p in (unschedulable(pod) for pod in live) if p is not None]
    deadline = rollout_problem(deployment)
    return found + ([deadline] if deadline else [])


def summary(found: list[Problem]) -> str:
    """One message for a condition: the first few problems, the rest counted."""
    text = "; ".join(p.message for p in found[:LISTED])
    return text + (f" (and {len(found) - LISTED} more)" if len(found) > LISTED else "")


def loading(pod: Mapping[str, Any]) -> bool:
    """Started (Running, every container running) but not ready yet: the engine downloads or loads the model."""
    status = pod.get("status") or {}
    if status.get("phase") != "Running" or (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    ready: dict[str, Any] = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})
    containers = status.get("containerStatuses") or []
    started = bool(containers) and all((c.get("state") or {}).get("running") for c in containers)
    return started and ready.get("status") != "True" and container_problem(pod) is None


def loading_count(pods: list[dict[str, Any]]) -> int:
    return sum(1 for pod in pods if loading(pod))


def pod_signature(pod: Mapping[str, Any]) -> Hashable:
    """What status reads from one pod: its problem, or that it is loading; None for a placed, healthy pod."""
    found = container_problem(pod) or unschedulable(pod)
    if found is not None:
        return (found.reason, found.message)
    return "loading" if loading(pod) else None
