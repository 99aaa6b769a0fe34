"""Generate the LLMDeployment CustomResourceDefinition from the pydantic models (the single source of truth)."""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import BaseModel

from llmop.api.spec import GROUP, KIND, PLURAL, SHORT_NAMES, SINGULAR, VERSION, LLMDeploymentSpec
from llmop.api.status import LLMDeploymentStatus

_DROP_KEYS = {"title", "additionalProperties", "$defs"}

READY_REASON = '.status.conditions[?(@.type=="Ready")].reason'
SLO_MET = '.status.conditions[?(@.type=="SLOMet")].status'
WIDE = 1  # printer column priority: shown by `kubectl get -o wide` only, so default rows stay under ~100 characters

PRINTER_COLUMNS: list[dict[str, Any]] = [
    {"name": "Model", "type": "string", "jsonPath": ".spec.model.name", "priority": WIDE},
    {"name": "Engine", "type": "string", "jsonPath": ".spec.engine", "priority": WIDE},
    {"name": "Quant", "type": "string", "jsonPath": ".spec.quantization", "priority": WIDE},
    {"name": "GPU", "type": "string", "jsonPath": ".spec.gpu.type"},
    {"name": "Replicas", "type": "integer", "jsonPath": ".status.replicas"},
    {"name": "Desired", "type": "integer", "jsonPath": ".status.desiredReplicas", "priority": WIDE},
    {"name": "Ready", "type": "integer", "jsonPath": ".status.readyReplicas"},
    {
        "name": "TPOT",
        "type": "number",
        "jsonPath": ".status.decodeLatency.observedMs",
        "description": "Observed decode latency (ms per output token) at the SLO's percentile, or the active probe's",
    },
    {"name": "Pctl", "type": "integer", "jsonPath": ".status.decodeLatency.percentile", "priority": WIDE},
    {"name": "SLO", "type": "number", "jsonPath": ".spec.slo.decodeLatency.targetMs", "description": "ms"},
    {
        "name": "SLOMet",
        "type": "string",
        "jsonPath": SLO_MET,
        "description": "False while the decode-latency SLO is breached (the SLOMet condition), whatever the Phase",
    },
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
    {"name": "Reason", "type": "string", "jsonPath": READY_REASON, "priority": WIDE},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]

# The scale subresource: `kubectl scale`, an HPA or KEDA read and write spec.replicas.min (the replica count with
# autoscaling disabled, the autoscaler's floor with it enabled) and find the pods through status.selector.
SCALE: dict[str, str] = {
    "specReplicasPath": ".spec.replicas.min",
    "statusReplicasPath": ".status.replicas",
    "labelSelectorPath": ".status.selector",
}


def _resolve(node: Any, definitions: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_resolve(item, definitions) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = definitions[node["$ref"].split("/")[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _resolve(merged, definitions)
    return {key: _resolve(value, definitions) for key, value in node.items()}


def _structural(node: Any) -> Any:
    """Turn pydantic's JSON Schema into a Kubernetes structural OpenAPI v3 schema."""
    if isinstance(node, list):
        return [_structural(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: value for key, value in node.items() if key not in _DROP_KEYS}
    if node.get("x-kubernetes-preserve-unknown-fields"):
        kept = {k: v for k, v in node.items() if k in {"description", "x-kubernetes-preserve-unknown-fields"}}
        branches = [b for b in node.get("anyOf", [node]) if b.get("type") != "null"]
        if branches and all(b.get("type") == "object" for b in branches):
            kept["type"] = "object"
        return kept
    if node.get("x-kubernetes-int-or-string"):
        kept = {
            k: v
            for k, v in node.items()
            if k in {"description", "default", "x-kubernetes-int-or-string", "x-kubernetes-validations"}
        }
        return kept
    if "anyOf" in node:
        branches = [b for b in node.pop("anyOf") if b.get("type") != "null"]
        if len(branches) == 1:
            node = {**branches[0], **node}
        else:
            raise ValueError(f"cannot express union {branches} in a structural schema")
        if node.get("default") is None:
            node.pop("default", None)
    node = {key: value for key, value in node.items() if key not in _DROP_KEYS}
    if "const" in node:
        node["enum"] = [node.pop("const")]
    if "exclusiveMinimum" in node and not isinstance(node["exclusiveMinimum"], bool):
        node["minimum"] = node["exclusiveMinimum"]
        node["exclusiveMinimum"] = True
    result = {key: _structural(value) for key, value in node.items()}
    if result.get("type") == "object" and "properties" in result:
        for prop in result["properties"].values():
            if prop.get("type") == "object" and "default" not in prop and _all_defaulted(prop):
                # Spell the nested defaults out: CEL rules on the object see them (an empty {} has no keys).
                prop["default"] = {k: p["default"] for k, p in prop["properties"].items() if "default" in p}
    return result


def _all_defaulted(schema: dict[str, Any]) -> bool:
    """True for an object whose fields are all optional and at least one has a default."""
    props = schema.get("properties", {})
    return not schema.get("required") and any("default" in p for p in props.values())


def openapi_schema(model: type[BaseModel]) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    structural: dict[str, Any] = _structural(_resolve(raw, raw.get("$defs", {})))
    return structural


def crd() -> dict[str, Any]:
    """The CustomResourceDefinition object."""
    spec_schema = openapi_schema(LLMDeploymentSpec)
    spec_schema["description"] = "Desired state: model, engine, quantization, GPU, replicas and SLO."
    status_schema = openapi_schema(LLMDeploymentStatus)
    status_schema["description"] = "Observed state, written by llmop."
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}", "labels": {"app.kubernetes.io/part-of": "llmop"}},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": SINGULAR,
                "shortNames": list(SHORT_NAMES),
                "categories": ["llmop", "all"],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}, "scale": SCALE},
                    "additionalPrinterColumns": PRINTER_COLUMNS,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": "LLMDeployment serves one model on GPUs with vLLM or TGI, planned, "
                            "deployed and autoscaled on decode latency by llmop.",
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec_schema,
                                "status": status_schema,
                            },
                        }
                    },
                }
            ],
        },
    }


def crd_yaml() -> str:
    header = "# Generated by `llmop crd` from operator/llmop/api; do not edit by hand.\n"
    return header + yaml.safe_dump(crd(), sort_keys=False, width=120)
