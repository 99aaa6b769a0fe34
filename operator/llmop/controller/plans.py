"""The plan of each LLMDeployment generation, computed once and shared by the reconciler and the autoscaler."""

from __future__ import annotations

import json
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from llmop.api.spec import LLMDeploymentSpec
from llmop.catalog.engines import DEFAULT_IMAGE_REGISTRY
from llmop.catalog.hf_config import CheckpointLookup, HubFailure
from llmop.catalog.prices import DEFAULT_PRICES, PriceTable
from llmop.plan.checkpoint import needs_checkpoint
from llmop.plan.parse import parse_spec
from llmop.plan.planner import plan
from llmop.plan.types import Plan, PlanErrors
from llmop.sizing.choose import GpuChoice, choose, is_auto

DEFAULT_CAPACITY = 4096  # objects whose latest plan is kept; an evicted one is planned again on its next pass
# a plan refused because config.json could not be read is planned again after this long (LLMOP_HUB_RETRY_SECONDS)
HUB_RETRY_S = float(os.environ.get("LLMOP_HUB_RETRY_SECONDS") or 60.0)
# (namespace, spec) -> the model's config.json, for specs whose architecture only the hub can give
CheckpointResolver = Callable[[str, LLMDeploymentSpec], CheckpointLookup]
# GPU type -> most allocatable GPUs on one node (controller/gpu_choice.py lists the nodes); None: unknown
GpuLister = Callable[[], Mapping[str, int] | None]


@dataclass(frozen=True)
class Planned:
    """A spec generation's parse and plan: `spec` is None when the spec itself was refused."""

    spec: LLMDeploymentSpec | None
    result: Plan | PlanErrors
    checkpoint: CheckpointLookup | None = None
    at: float = 0.0  # monotonic time of the plan
    choice: GpuChoice | None = None  # a new `auto` choice, for status.gpuChoice and the GPUChosen Event
    unsettled: bool = False  # `auto` without a remembered choice: chosen again (nodes may change) until recorded

    def hub_retry_due(self, now: float, retry_s: float) -> bool:
        """A refusal that came from the hub (gated, offline) is retried: the Secret or the network may be fixed."""
        return isinstance(self.checkpoint, HubFailure) and now - self.at >= retry_s


class PlanCache:
    """Plans keyed by (namespace, name, uid, generation), checked against the spec they came from.

    The generation changes with every spec change, so one plan serves every reconcile and autoscaler tick of a
    generation (the planner ran every 15 s per object before). The spec text is kept and compared too: a body
    without a generation (tests, a hand-built dict) or a spec that changed under the same generation is planned
    again rather than served stale. A model outside the catalog is planned from its config.json, read through
    `checkpoints` (the shell's hub access); a refusal that came from the hub is planned again after HUB_RETRY_S."""

    def __init__(
        self,
        image_registry: str = DEFAULT_IMAGE_REGISTRY,
        capacity: int = DEFAULT_CAPACITY,
        checkpoints: CheckpointResolver | None = None,
        hub_retry_s: float = HUB_RETRY_S,
        gpus: GpuLister | None = None,
        prices: PriceTable = DEFAULT_PRICES,
    ) -> None:
        self.gpus = gpus
        self.prices = prices
        self.image_registry = image_registry
        self.capacity = capacity
        self.checkpoints = checkpoints
        self.hub_retry_s = hub_retry_s
        self.computed = 0  # planner runs (for tests and the benchmark)
        self._entries: OrderedDict[tuple[str, str], tuple[Any, str, Planned]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, body: dict[str, Any]) -> Planned:
        meta = body.get("metadata") or {}
        key = (str(meta.get("namespace")), str(meta.get("name")))
        identity = (meta.get("uid"), meta.get("generation"))
        status = body.get("status") or {}
        text = json.dumps([body.get("spec"), status.get("gpuChoice")], sort_keys=True, default=str)
        with self._lock:
            entry = self._entries.get(key)
            fresh = entry is not None and not entry[2].hub_retry_due(time.monotonic(), self.hub_retry_s)
            fresh = fresh and entry is not None and not entry[2].unsettled
            if entry is not None and fresh and entry[0] == identity and entry[1] == text:
                self._entries.move_to_end(key)
                return entry[2]
        planned = self._plan(body.get("spec"), key[0], key[1], status)
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

    def _plan(self, raw_spec: Any, namespace: str, name: str, status: Mapping[str, Any] | None = None) -> Planned:
        spec = parse_spec(raw_spec)
        if isinstance(spec, PlanErrors):
            return Planned(None, spec)
        checkpoint = None
        if self.checkpoints is not None and needs_checkpoint(spec):
            checkpoint = self.checkpoints(namespace, spec)
        if is_auto(spec):  # the pure chooser, given the schedulable GPU types the shell read from the nodes
            chosen = choose(
                spec,
                name,
                schedulable=self.gpus() if self.gpus else None,
                status=status,
                prices=self.prices,
                image_registry=self.image_registry,
                checkpoint=checkpoint,
            )
            unsettled = chosen.choice is not None or isinstance(chosen.result, PlanErrors)
            return Planned(spec, chosen.result, checkpoint, time.monotonic(), choice=chosen.choice, unsettled=unsettled)
        result = plan(spec, name, self.image_registry, checkpoint)
        return Planned(spec, result, checkpoint, time.monotonic())
