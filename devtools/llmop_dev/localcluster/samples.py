"""Small valid LLMDeployment bodies for the local stack's tests and benchmarks (one 8B fp8 model on H100)."""

from __future__ import annotations

from typing import Any

from llmop.api.spec import GROUP, VERSION


def h100_llmdeployment(
    name: str,
    *,
    min_replicas: int = 1,
    max_replicas: int = 4,
    target_ms: float = 50,
    slo_window: str | None = "30s",
    max_model_len: int | None = 8192,
    autoscaling: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Llama-3.1-8B fp8 on one H100 per replica, vLLM, p95 TPOT SLO; `autoscaling` is the spec's block as is."""
    slo: dict[str, Any] = {"percentile": 95, "targetMs": target_ms}
    if slo_window:
        slo["window"] = slo_window
    spec: dict[str, Any] = {
        "model": {"name": "meta-llama/Llama-3.1-8B-Instruct"},
        "engine": "vllm",
        "quantization": "fp8",
        "gpu": {"type": "H100-80GB", "count": 1},
        "replicas": {"min": min_replicas, "max": max_replicas},
        "slo": {"decodeLatency": slo},
    }
    if max_model_len is not None:
        spec["maxModelLen"] = max_model_len
    if autoscaling is not None:
        spec["autoscaling"] = autoscaling
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "LLMDeployment", "metadata": {"name": name}, "spec": spec}
