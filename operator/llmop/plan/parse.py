"""Turn a resource dict (from YAML or the API server) into a validated spec, or field-named errors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from llmop.api.spec import API_VERSION, KIND, LLMDeploymentSpec
from llmop.plan.suggest import did_you_mean, quoted_choices
from llmop.plan.types import Finding, PlanErrors

_CHOICE_ERRORS = frozenset({"enum", "literal_error"})


@dataclass(frozen=True)
class Resource:
    """A parsed LLMDeployment: identity plus the validated spec."""

    name: str
    namespace: str
    spec: LLMDeploymentSpec


def _path(location: tuple[int | str, ...]) -> str:
    path = "spec"
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in {"function-after[_no_control_characters(), list[str]]"}:
            continue
        elif "[" in str(part) or str(part) in {"str", "int", "literal['auto']", "ArchitectureSpec"}:
            continue  # pydantic union-branch tags, not fields
        else:
            path += f".{part}"
    return path


def _choice_findings(items: list[dict[str, Any]]) -> dict[str, Finding]:
    """One finding per field whose value is not one of its names (a union's branches merged), with a suggestion."""
    choices: dict[str, list[str]] = {}
    values: dict[str, Any] = {}
    for item in items:
        if item["type"] not in _CHOICE_ERRORS:
            continue
        path = _path(tuple(item["loc"]))
        names = quoted_choices(str((item.get("ctx") or {}).get("expected", "")))
        choices.setdefault(path, []).extend(name for name in names if name not in choices.get(path, []))
        values[path] = item.get("input")
    findings: dict[str, Finding] = {}
    for path, names in choices.items():
        value = values[path]
        hint = did_you_mean(value, names) if isinstance(value, str) else ""
        findings[path] = Finding(path, f"{value!r} is not one of {', '.join(names)}{hint}")
    return findings


def validation_findings(error: ValidationError) -> list[Finding]:
    """One finding per pydantic error, named by the camelCase field path, with the offending value."""
    items: list[dict[str, Any]] = [dict(item) for item in error.errors(include_url=False)]
    merged = _choice_findings(items)
    findings: list[Finding] = []
    seen: set[str] = set()
    for item in items:
        path = _path(tuple(item["loc"]))
        value = item.get("input")
        if path in merged:
            if path not in seen:
                seen.add(path)
                findings.append(merged[path])
            continue
        if item["type"] == "missing":
            message = "is required"
        elif item["type"] == "extra_forbidden":
            message = "is not a field of LLMDeployment (check the spelling)"
        else:
            shown = repr(value) if not isinstance(value, dict | list) else type(value).__name__
            message = f"{shown} is invalid: {item['msg']}"
        key = f"{path}: {message}"
        if key not in seen:
            seen.add(key)
            findings.append(Finding(path, message))
    return findings


def parse_spec(spec: Any) -> LLMDeploymentSpec | PlanErrors:
    if not isinstance(spec, dict):
        return PlanErrors((Finding("spec", "must be a mapping"),))
    try:
        return LLMDeploymentSpec.model_validate(spec)
    except ValidationError as error:
        return PlanErrors(tuple(validation_findings(error)))


def parse_resource(obj: Any) -> Resource | PlanErrors:
    """Check apiVersion/kind/metadata and validate the spec."""
    if not isinstance(obj, dict):
        return PlanErrors((Finding("(document)", f"expected a {KIND} mapping, got {type(obj).__name__}"),))
    errors: list[Finding] = []
    if obj.get("apiVersion") != API_VERSION:
        errors.append(Finding("apiVersion", f"{obj.get('apiVersion')!r} is not {API_VERSION!r}"))
    if obj.get("kind") != KIND:
        errors.append(Finding("kind", f"{obj.get('kind')!r} is not {KIND!r}"))
    metadata: dict[str, Any] = obj["metadata"] if isinstance(obj.get("metadata"), dict) else {}
    name = metadata.get("name")
    if not isinstance(name, str) or not name:
        errors.append(Finding("metadata.name", "is required"))
    if errors:
        return PlanErrors(tuple(errors))
    if "spec" not in obj:
        return PlanErrors((Finding("spec", "is required"),))
    spec = parse_spec(obj["spec"])
    if isinstance(spec, PlanErrors):
        return spec
    return Resource(name=str(name), namespace=str(metadata.get("namespace") or "default"), spec=spec)
