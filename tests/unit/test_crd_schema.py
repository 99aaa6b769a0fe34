"""The generated CRD: structural schema, enums, defaults, CEL rules, printer columns, short name."""

from __future__ import annotations

from typing import Any

from llmop.api.crd import crd
from llmop.api.spec import REPLICAS_RULE


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
    assert spec["quantization"]["enum"] == ["none", "fp8", "awq", "gptq", "int8", "nf4", "fp4", "auto"]
    assert spec["quantizationCandidates"]["items"]["enum"] == ["none", "fp8", "awq", "gptq", "int8", "nf4", "fp4"]
    assert "H100-80GB" in spec["gpu"]["properties"]["type"]["enum"]
    assert spec["gpu"]["properties"]["type"]["enum"][-1] == "auto"
    assert "auto" not in spec["gpu"]["properties"]["candidates"]["items"]["enum"]
    assert spec["gpu"]["properties"]["count"]["default"] == "auto"
    assert spec["replicas"]["default"] == {"min": 1, "max": 1}
    assert spec["slo"]["properties"]["decodeLatency"]["properties"]["percentile"]["enum"] == [50, 90, 95, 99]
    assert crd()["spec"]["names"]["shortNames"] == ["llmd"]


def test_scale_subresource_replicas_rule_and_printer_columns() -> None:
    version = crd()["spec"]["versions"][0]
    schema = version["schema"]["openAPIV3Schema"]
    rule = next(
        r for r in schema["properties"]["spec"]["x-kubernetes-validations"] if r.get("fieldPath") == ".replicas"
    )
    assert rule == {"rule": REPLICAS_RULE, "fieldPath": ".replicas",
                    "message": "replicas.min must be <= replicas.max while autoscaling is enabled"}  # fmt: skip
    assert version["subresources"] == {
        "status": {},
        "scale": {
            "specReplicasPath": ".spec.replicas.min",
            "statusReplicasPath": ".status.replicas",
            "labelSelectorPath": ".status.selector",
        },
    }
    assert schema["properties"]["status"]["properties"]["selector"]["type"] == "string"
    columns = {c["name"]: (c["jsonPath"], c.get("priority", 0)) for c in version["additionalPrinterColumns"]}
    assert [name for name, (_, priority) in columns.items() if priority == 0] == [
        "GPU", "Replicas", "Ready", "TPOT", "SLO", "SLOMet", "Phase", "Age"]  # fmt: skip
    assert [name for name, (_, priority) in columns.items() if priority == 1] == [
        "Model", "Engine", "Quant", "Desired", "Pctl", "Reason"]  # fmt: skip
    assert columns["TPOT"][0] == ".status.decodeLatency.observedMs"  # any percentile, and the probe's readings
    assert columns["Reason"][0] == '.status.conditions[?(@.type=="Ready")].reason'
    assert columns["SLOMet"][0] == '.status.conditions[?(@.type=="SLOMet")].status'  # a breach at a glance
