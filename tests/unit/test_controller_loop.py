"""The operator-wide periodic loop, the child-event filter and the leader's renew deadline (no API server)."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from kubernetes.client.rest import ApiException

from llmop.controller.children import SeenChildren, deployment_signature, owner_of, pod_signature
from llmop.controller.coalesce import Coalescer
from llmop.controller.leader import LeaderElector
from llmop.controller.resync import Known, ResyncLoop
from llmop.render.labels import SELECTOR_LABEL


def _llmd(namespace: str, name: str, generation: int = 1) -> dict[str, Any]:
    return {"metadata": {"namespace": namespace, "name": name, "generation": generation}}


def test_known_tracks_the_latest_body_and_forgets_deleted_objects() -> None:
    known = Known()
    known.seen(None, _llmd("a", "x"))  # kopf's initial listing has no event type
    known.seen("ADDED", _llmd("b", "y"))
    known.seen("MODIFIED", _llmd("a", "x", generation=2))
    known.seen("ADDED", {"metadata": {"name": "no-namespace"}})
    assert [key for key, _ in known.snapshot()] == [("a", "x"), ("b", "y")]
    assert dict(known.snapshot())[("a", "x")]["metadata"]["generation"] == 2
    known.seen("DELETED", _llmd("a", "x"))
    assert [key for key, _ in known.snapshot()] == [("b", "y")]


def test_loop_passes_over_every_object_with_bounded_concurrency_and_survives_failures() -> None:
    known = Known()
    for i in range(12):
        known.seen("ADDED", _llmd("ns", f"o{i}"))
    active, peak, done = 0, 0, []
    lock = threading.Lock()

    def one_pass(body: dict[str, Any]) -> None:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.01)
        with lock:
            active -= 1
            done.append(body["metadata"]["name"])
        if body["metadata"]["name"] == "o3":
            raise RuntimeError("API server said no")

    loop = ResyncLoop(known, one_pass, interval=60, concurrency=3)
    asyncio.run(loop.tick(None))
    assert sorted(done) == sorted(f"o{i}" for i in range(12))  # o3's failure stopped nobody
    assert 1 < peak <= 3
    assert loop.passes == 1


def test_loop_repeats_at_its_interval() -> None:
    known = Known()
    known.seen("ADDED", _llmd("ns", "a"))
    seen: list[float] = []
    loop = ResyncLoop(known, lambda body: seen.append(time.monotonic()), interval=0.05)

    async def run_a_while() -> None:
        task = asyncio.create_task(loop.run_forever(None))
        await asyncio.sleep(0.23)
        task.cancel()

    asyncio.run(run_a_while())
    assert 3 <= len(seen) <= 6
    gaps = [b - a for a, b in itertools.pairwise(seen)]
    assert min(gaps) >= 0.04


def _deployment(**status: Any) -> dict[str, Any]:
    return {
        "metadata": {"uid": "u1", "generation": 2, "namespace": "ns", "labels": {SELECTOR_LABEL: "chat"}},
        "spec": {"replicas": 2},
        "status": {"observedGeneration": 2, "replicas": 2, "readyReplicas": 1, "updatedReplicas": 2, **status},
    }


def test_deployment_events_that_change_nothing_read_are_skipped() -> None:
    seen = SeenChildren()
    first = _deployment()
    assert seen.changed("u1", deployment_signature(first))
    seen.remember("u1", deployment_signature(first))
    heartbeat = _deployment(conditions=[{"type": "Progressing", "lastUpdateTime": "2026-11-26T07:00:00Z"}])
    assert not seen.changed("u1", deployment_signature(heartbeat))
    assert seen.changed("u1", deployment_signature(_deployment(readyReplicas=2)))
    hand_scaled = _deployment()
    hand_scaled["spec"]["replicas"] = 5
    assert seen.changed("u1", deployment_signature(hand_scaled))
    assert seen.forget("u1") == deployment_signature(first) and len(seen) == 0
    assert seen.changed(None, deployment_signature(first))  # no uid: never skipped


def test_pod_signature_is_the_schedulers_reason_and_placed_pods_are_not_kept() -> None:
    pending = {
        "metadata": {"uid": "p1", "name": "chat-0"},
        "status": {
            "phase": "Pending",
            "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                            "message": "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."}],
        },
    }  # fmt: skip
    placed = {"metadata": {"uid": "p1", "name": "chat-0"}, "status": {"phase": "Running"}}
    seen = SeenChildren()
    assert pod_signature(placed) is None and not seen.changed("p1", pod_signature(placed))
    assert "Insufficient nvidia.com/gpu" in str(pod_signature(pending))
    seen.remember("p1", pod_signature(pending))
    assert len(seen) == 1 and seen.changed("p1", pod_signature(placed))
    seen.remember("p1", pod_signature(placed))
    assert len(seen) == 0  # placed pods cost no memory


def test_owner_of_reads_the_selector_label() -> None:
    assert owner_of(_deployment()) == ("ns", "chat")
    assert owner_of({"metadata": {"namespace": "ns", "labels": {"app": "x"}}}) is None


class FlakyLeases:
    """A CoordinationV1Api stand-in whose writes fail on demand (a real API server cannot fail on cue)."""

    def __init__(self) -> None:
        self.lease: Any = None
        self.failing = False

    def read_namespaced_lease(self, name: str, namespace: str, **_: Any) -> Any:
        if self.failing:
            raise ApiException(status=503, reason="etcd unavailable")
        if self.lease is None:
            raise ApiException(status=404, reason="Not Found")
        return self.lease

    def create_namespaced_lease(self, namespace: str, body: Any, **_: Any) -> Any:
        self.lease = body
        return body

    def replace_namespaced_lease(self, name: str, namespace: str, body: Any, **_: Any) -> Any:
        if self.failing:
            raise ApiException(status=503, reason="etcd unavailable")
        self.lease = body
        return body


def test_leader_steps_down_within_the_renew_deadline_before_the_lease_can_expire() -> None:
    api = FlakyLeases()
    elector = LeaderElector(None, "ns", "lease", "me", lease_seconds=3, renew_seconds=0.1,
                            renew_deadline_seconds=1.0, retry_seconds=0.1)  # fmt: skip
    elector.api = api  # type: ignore[assignment]
    assert elector.acquire()
    lost = threading.Event()
    elector.keep_renewing(lost.set)
    time.sleep(0.35)
    last_renewal = api.lease.spec.renew_time
    api.failing = True
    failing_since = time.monotonic()
    assert lost.wait(3.0), "the leader never stepped down"
    stepped_down_after = time.monotonic() - failing_since
    assert stepped_down_after < 1.0 + 0.2  # within the renew deadline (+ one retry): well before the 3 s lease
    assert api.lease.spec.renew_time == last_renewal and api.lease.spec.holder_identity == "me"
    elector._stop.set()


def test_renew_deadline_must_be_shorter_than_the_lease() -> None:
    with pytest.raises(ValueError, match="below the lease"):
        LeaderElector(None, "ns", "lease", "me", lease_seconds=10, renew_deadline_seconds=10)


def test_coalescer_runs_one_at_a_time_and_requests_during_a_run_share_one_follow_up() -> None:
    coalescer = Coalescer()
    runs: list[str] = []
    active: dict[str, int] = {"k": 0, "other": 0}

    def work_on(key: str) -> Callable[[], Awaitable[int]]:
        async def work() -> int:
            active[key] += 1
            assert active[key] == 1, "two runs for one key at once"
            await asyncio.sleep(0.02)
            runs.append(key)
            active[key] -= 1
            return runs.count(key)

        return work

    async def scenario() -> list[int]:
        first = asyncio.create_task(coalescer.run("k", work_on("k")))
        await asyncio.sleep(0.005)  # the first run is under way
        during = [asyncio.create_task(coalescer.run("k", work_on("k"))) for _ in range(5)]
        other = asyncio.create_task(coalescer.run("other", work_on("other")))
        return await asyncio.gather(first, *during, other)

    results = asyncio.run(scenario())
    assert sorted(runs) == ["k", "k", "other"]  # k: the first run and one shared follow-up; other: its own run
    assert results[0] == 1 and results[1:6] == [2] * 5 and results[6] == 1
    assert coalescer.coalesced == 4 and not coalescer.busy("k")


def test_coalescer_hands_a_failed_follow_up_to_its_waiters_and_frees_the_key() -> None:
    coalescer = Coalescer()
    calls = 0

    async def flaky() -> None:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        if calls == 2:
            raise RuntimeError("409 conflict")

    async def scenario() -> list[object]:
        first = asyncio.create_task(coalescer.run("k", flaky))
        await asyncio.sleep(0.002)
        waiter = asyncio.create_task(coalescer.run("k", flaky))
        return await asyncio.gather(first, waiter, return_exceptions=True)

    first, waiter = asyncio.run(scenario())
    assert first is None and isinstance(waiter, RuntimeError)
    assert not coalescer.busy("k")
    asyncio.run(coalescer.run("k", flaky))  # usable again
    assert calls == 3
