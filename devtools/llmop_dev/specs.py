"""LLMDeployment files for the dev tools: the first resource of a YAML file and its accepted plan, or why not."""

from __future__ import annotations

from pathlib import Path

import yaml

from llmop.plan.parse import Resource, parse_resource
from llmop.plan.planner import plan
from llmop.plan.types import Plan, PlanErrors


class SpecFileError(Exception):
    """A spec file that cannot be used; the message is one line naming the file (commands exit with 2)."""


def load_spec(path: str) -> tuple[Resource, Plan]:
    """The first LLMDeployment of a YAML file and its accepted plan."""
    try:
        documents = [d for d in yaml.safe_load_all(Path(path).read_text(encoding="utf-8")) if d is not None]
    except (OSError, yaml.YAMLError) as error:
        raise SpecFileError(f"{path}: {error}") from None
    if not documents:
        raise SpecFileError(f"{path}: no LLMDeployment in the file")
    resource = parse_resource(documents[0])
    if isinstance(resource, PlanErrors):
        raise SpecFileError(f"{path}: {resource.summary}")
    result = plan(resource.spec, resource.name)
    if isinstance(result, PlanErrors):
        raise SpecFileError(f"{path}: refused: {result.summary}")
    return resource, result
