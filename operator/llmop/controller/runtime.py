"""The operator's process-wide objects (client, reconciler, autoscaler), installed by `llmop run`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from llmop.autoscale.policy import Decision
from llmop.controller.kube import Kube
from llmop.controller.reconcile import Reconciler
from llmop.controller.settings import OperatorConfig


class AutoscalerStep(Protocol):
    def step(self, body: dict[str, Any]) -> Decision | None: ...


@dataclass
class Runtime:
    config: OperatorConfig
    kube: Kube
    reconciler: Reconciler
    autoscaler: AutoscalerStep


_current: Runtime | None = None


def install(value: Runtime) -> None:
    global _current
    _current = value


def runtime() -> Runtime:
    if _current is None:
        raise RuntimeError("llmop runtime not installed; start the operator with `llmop run`")
    return _current
