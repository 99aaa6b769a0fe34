"""The generated CRD: structural schema, enums, defaults, CEL rules, printer columns, short name."""

from __future__ import annotations

from typing import Any

from llmop.api.crd import crd


def _walk(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        if "properties" in node or "type" in node or "x-kubernetes-int-or-string" in node:
            found.append((path, node))
        for key, value in node.get("properties", {}).items():
            found.extend(_walk(value, f"{path}.{key}"))
        if isinstance(node.get("items"), dict):
            found.extend(_walk(node["items"], f"{path}[]"))
    return found


def test_structural() -> None:
    version = crd()["spec"]["versions"][0]
    schema = version["schema"]["openAPIV3Schema"]
    for path, node in _walk(schema):
        assert (
            "type" in node or node.get("x-kubernetes-int-or-string") or node.get("x-kubernetes-preserve-unknown-fields")
        ), path
        for forbidden in ("anyOf", "oneOf", "$ref", "additionalProperties", "title", "const"):
            assert forbidden not in node, (path, forbidden)
    spec = schema["properties"]["spec"]["properties"]
    assert spec["engine"]["enum"] == ["vllm", "tgi"]
    assert spec["quantization"]["enum"] == ["none", "fp8", "awq", "gptq", "int8", "nf4", "fp4"]
    assert "H100-80GB" in spec["gpu"]["properties"]["type"]["enum"]
    assert spec["gpu"]["properties"]["count"]["default"] == "auto"
    assert spec["replicas"]["x-kubernetes-validations"][0]["rule"] == "self.min <= self.max"
    assert spec["replicas"]["default"] == {"min": 1, "max": 1}
    assert spec["slo"]["properties"]["decodeLatency"]["properties"]["percentile"]["enum"] == [50, 90, 95, 99]
    assert version["subresources"] == {"status": {}}
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert columns == ["Model", "Engine", "Quant", "GPU", "Replicas", "Ready", "P95 TPOT", "SLO", "Phase", "Age"]
    assert crd()["spec"]["names"]["shortNames"] == ["llmd"]
