"""Standard labels and names for the objects llmop owns."""

from __future__ import annotations

SELECTOR_LABEL = "llmop.io/llmdeployment"
MANAGED_BY = "llmop"
FIELD_MANAGER = "llmop"


def selector_labels(name: str) -> dict[str, str]:
    """Immutable selector of an LLMDeployment's pods."""
    return {SELECTOR_LABEL: name}


def standard_labels(name: str, engine: str, engine_version: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": engine,
        "app.kubernetes.io/instance": name,
        "app.kubernetes.io/version": engine_version,
        "app.kubernetes.io/component": "inference-engine",
        "app.kubernetes.io/part-of": "llmop",
        "app.kubernetes.io/managed-by": MANAGED_BY,
        **selector_labels(name),
    }
