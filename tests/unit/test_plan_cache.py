"""The plan cache: one planner run per spec generation, shared by the reconciler and the autoscaler."""

from __future__ import annotations

import copy
from typing import Any

from llmop.controller.plans import PlanCache
from llmop.plan.types import Plan, PlanErrors
from llmop_dev.localcluster.samples import h100_llmdeployment


def _body(generation: int, uid: str = "u1") -> dict[str, Any]:
    body = h100_llmdeployment("chat")
    body["metadata"].update({"namespace": "ns", "uid": uid, "generation": generation})
    return body


def test_one_planner_run_per_generation_serves_every_pass() -> None:
    cache = PlanCache()
    first = cache.get(_body(1))
    assert isinstance(first.result, Plan) and first.spec is not None
    for _ in range(5):
        assert cache.get(_body(1)) is first
    assert cache.computed == 1


def test_a_new_generation_uid_or_spec_is_planned_again() -> None:
    cache = PlanCache()
    cache.get(_body(1))
    changed = _body(2)
    changed["spec"]["replicas"]["max"] = 6
    assert cache.get(changed).result.max_replicas == 6  # type: ignore[union-attr]
    assert cache.computed == 2
    assert cache.get(_body(2, uid="u2")).result.max_replicas == 4  # type: ignore[union-attr]
    assert cache.computed == 3
    same_generation = copy.deepcopy(_body(2, uid="u2"))
    same_generation["spec"]["replicas"]["max"] = 3  # a body whose generation did not move with its spec
    assert cache.get(same_generation).result.max_replicas == 3  # type: ignore[union-attr]
    assert cache.computed == 4


def test_a_refused_spec_is_cached_with_no_spec() -> None:
    cache = PlanCache()
    body = _body(1)
    body["spec"]["quantization"] = "nf4"  # not in vLLM 0.33
    refused = cache.get(body)
    assert isinstance(refused.result, PlanErrors) and refused.spec is not None
    body["spec"]["gpu"] = "not a mapping"
    unparsed = cache.get(body)
    assert unparsed.spec is None and isinstance(unparsed.result, PlanErrors)
    assert cache.computed == 2


def test_forget_and_capacity_bound_the_cache() -> None:
    cache = PlanCache(capacity=2)
    for name in ("a", "b", "c"):
        body = _body(1)
        body["metadata"]["name"] = name
        cache.get(body)
    a = _body(1)
    a["metadata"]["name"] = "a"
    cache.get(a)  # evicted by c: planned again
    assert cache.computed == 4
    cache.forget("ns", "a")
    cache.get(a)
    assert cache.computed == 5
