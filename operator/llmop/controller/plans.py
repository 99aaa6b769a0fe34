"""The plan of each LLMDeployment generation, computed once and shared by the reconciler and the autoscaler."""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from llmop.api.spec import LLMDeploymentSpec
from llmop.catalog.engines import DEFAULT_IMAGE_REGISTRY
from llmop.plan.parse import parse_spec
from llmop.plan.planner import plan
from llmop.plan.types import Plan, PlanErrors

DEFAULT_CAPACITY = 4096  # objects whose latest plan is kept; an evicted one is planned again on its next pass


@dataclass(frozen=True)
class Planned:
    """A spec generation's parse and plan: `spec` is None when the spec itself was refused."""

    spec: LLMDeploymentSpec | None
    result: Plan | PlanErrors


class PlanCache:
    """Plans keyed by (namespace, name, uid, generation), checked against the spec they came from.

    The generation changes with every spec change, so one plan serves every reconcile and autoscaler tick of a
    generation (the planner ran every 15 s per object before). The spec text is kept and compared too: a body
    without a generation (tests, a hand-built dict) or a spec that changed under the same generation is planned
    again rather than served stale."""

    def __init__(self, image_registry: str = DEFAULT_IMAGE_REGISTRY, capacity: int = DEFAULT_CAPACITY) -> None:
        self.image_registry = image_registry
        self.capacity = capacity
        self.computed = 0  # planner runs (for tests and the benchmark)
        self._entries: OrderedDict[tuple[str, str], tuple[Any, str, Planned]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, body: dict[str, Any]) -> Planned:
        meta = body.get("metadata") or {}
        key = (str(meta.get("namespace")), str(meta.get("name")))
        identity = (meta.get("uid"), meta.get("generation"))
        text = json.dumps(body.get("spec"), sort_keys=True, default=str)
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[0] == identity and entry[1] == text:
                self._entries.move_to_end(key)
                return entry[2]
        planned = self._plan(body.get("spec"), key[1])
        with self._lock:
            self.computed += 1
            self._entries[key] = (identity, text, planned)
            self._entries.move_to_end(key)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)
        return planned

    def forget(self, namespace: str, name: str) -> None:
        with self._lock:
            self._entries.pop((namespace, name), None)

    def _plan(self, raw_spec: Any, name: str) -> Planned:
        spec = parse_spec(raw_spec)
        if isinstance(spec, PlanErrors):
            return Planned(None, spec)
        return Planned(spec, plan(spec, name, self.image_registry))
