"""Autoscaler shell: read metrics, ask the pure policy, record the decision in status. No decisions here."""

from __future__ import annotations

import logging
from typing import Any

from llmop.controller.kube import Kube
from llmop.controller.settings import OperatorConfig

log = logging.getLogger("llmop.autoscaler")


class Autoscaler:
    """One autoscaling pass per LLMDeployment per timer tick."""

    def __init__(self, kube: Kube, config: OperatorConfig) -> None:
        self.kube = kube
        self.config = config

    def step(self, body: dict[str, Any]) -> None:
        return None
