"""Operator configuration from flags and LLMOP_* environment variables (the Helm chart sets them)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from llmop.catalog.engines import DEFAULT_IMAGE_REGISTRY


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


@dataclass(frozen=True)
class OperatorConfig:
    """Settings that apply to every LLMDeployment the operator manages."""

    prometheus_url: str | None = None
    image_registry: str = DEFAULT_IMAGE_REGISTRY
    resync_seconds: float = 300.0  # full reconcile of each object at least this often (drift of unwatched children)
    autoscale_interval_seconds: float = 15.0
    metrics_port: int = 8080
    metrics_address: str = "0.0.0.0"
    health_port: int = 8081
    prometheus_timeout_seconds: float = 5.0

    @classmethod
    def from_env(cls) -> OperatorConfig:
        return cls(
            prometheus_url=os.environ.get("LLMOP_PROMETHEUS_URL") or None,
            image_registry=os.environ.get("LLMOP_IMAGE_REGISTRY") or DEFAULT_IMAGE_REGISTRY,
            resync_seconds=_env_float("LLMOP_RESYNC_SECONDS", 300.0),
            autoscale_interval_seconds=_env_float("LLMOP_AUTOSCALE_INTERVAL_SECONDS", 15.0),
            metrics_port=int(os.environ.get("LLMOP_METRICS_PORT") or 8080),
            metrics_address=os.environ.get("LLMOP_METRICS_ADDRESS") or "0.0.0.0",
            health_port=int(os.environ.get("LLMOP_HEALTH_PORT") or 8081),
            prometheus_timeout_seconds=_env_float("LLMOP_PROMETHEUS_TIMEOUT_SECONDS", 5.0),
        )
