"""The shell of `gpu.type: auto`: which GPU types the nodes can schedule, and the choice into status and an Event."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from kubernetes.client.exceptions import ApiException

from llmop.api.status import GpuChoiceStatus
from llmop.catalog.gpus import GFD_PRODUCT_LABEL, GPU_RESOURCE, GPUS
from llmop.catalog.prices import DEFAULT_PRICES, PriceTable, price_table
from llmop.controller.kube import Kube
from llmop.controller.plans import Planned
from llmop.controller.status_update import EventIntent, StatusUpdate

log = logging.getLogger("llmop.gpu_choice")

NODES_TTL_S = 5.0  # one node list serves every auto spec planned within this long
_BY_PRODUCT = {gpu.gfd_product: gpu.name for gpu in GPUS.values()}


def _quantity(value: Any) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 0


def schedulable_gpus(nodes: list[dict[str, Any]]) -> dict[str, int]:
    """GPU type -> the most allocatable GPUs on one schedulable node, from the GFD product label (pure)."""
    found: dict[str, int] = {}
    for node in nodes:
        if (node.get("spec") or {}).get("unschedulable"):
            continue
        product = ((node.get("metadata") or {}).get("labels") or {}).get(GFD_PRODUCT_LABEL)
        gpu = _BY_PRODUCT.get(str(product))
        allocatable = _quantity(((node.get("status") or {}).get("allocatable") or {}).get(GPU_RESOURCE, 0))
        if gpu is not None and allocatable > 0:
            found[gpu] = max(found.get(gpu, 0), allocatable)
    return found


class NodeGpus:
    """Lists the nodes (at most every NODES_TTL_S) for the chooser; None when nodes cannot be read (no RBAC)."""

    def __init__(self, kube: Kube, ttl_s: float = NODES_TTL_S) -> None:
        self.kube = kube
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._read: tuple[float, dict[str, int] | None] | None = None

    def __call__(self) -> Mapping[str, int] | None:
        with self._lock:
            if self._read is not None and time.monotonic() - self._read[0] < self.ttl_s:
                return self._read[1]
            try:
                gpus: dict[str, int] | None = schedulable_gpus(self.kube.list_nodes())
            except ApiException as error:
                if error.status not in (401, 403):
                    raise
                log.warning("cannot list nodes (%s): gpu.type auto assumes every GPU type is schedulable", error.status)
                gpus = None
            self._read = (time.monotonic(), gpus)
            return gpus


def load_prices(path: str | None) -> PriceTable:
    """The operator's price table: a YAML/JSON file over the defaults, or the defaults (ValueError names the file)."""
    if path is None:
        return DEFAULT_PRICES
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise ValueError(f"{path}: cannot read prices: {error}") from None
    return price_table(data, path)


def with_choice(update: StatusUpdate, planned: Planned, current: Mapping[str, Any]) -> StatusUpdate:
    """Record a new auto choice in status.gpuChoice with a GPUChosen Event; drop it when the spec is concrete."""
    if planned.choice is not None:
        recorded = GpuChoiceStatus.model_validate(planned.choice.to_status()).model_dump(
            by_alias=True, exclude_none=True, mode="json"
        )
        status = {**update.status, "gpuChoice": recorded}
        events = list(update.events)
        if current.get("gpuChoice") != recorded:
            events.append(EventIntent("Normal", "GPUChosen", planned.choice.message()))
        return StatusUpdate(status, events)
    auto = planned.spec is not None and (planned.spec.gpu.type == "auto" or planned.spec.quantization == "auto")
    if not auto and current.get("gpuChoice") is not None:
        return StatusUpdate({**update.status, "gpuChoice": None}, list(update.events))
    return update
