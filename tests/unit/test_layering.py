"""The import graph: the layers import only downward, the operator ships no dev tooling, the judge never imports
the judged."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OPERATOR = ROOT / "operator" / "llmop"
REPLAY = ROOT / "devtools" / "llmop_dev" / "replay"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def _package_imports(package: Path) -> dict[str, set[str]]:
    return {str(path.relative_to(ROOT)): _imports(path) for path in sorted(package.rglob("*.py"))}


# package -> prefixes it must never import
FORBIDDEN = {
    "catalog": ("llmop.engines", "llmop.plan", "llmop.render", "llmop.autoscale", "llmop.controller", "llmop_dev"),
    "engines": ("llmop.plan", "llmop.render", "llmop.autoscale", "llmop.controller", "llmop_dev"),
    "api": ("llmop.plan", "llmop.render", "llmop.autoscale", "llmop.controller", "llmop_dev"),
    "plan": ("llmop.render", "llmop.autoscale", "llmop.sizing", "llmop.controller", "llmop_dev"),
    "render": ("llmop.autoscale", "llmop.controller", "llmop_dev"),
    "autoscale": ("llmop.controller", "llmop.render", "llmop_dev"),
    "sizing": ("llmop.controller", "llmop.render", "llmop_dev"),
    "controller": ("llmop_dev",),
    "hub": ("llmop.plan", "llmop.render", "llmop.autoscale", "llmop.controller", "llmop_dev"),
}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_each_layer_imports_only_downward(package: str) -> None:
    bad = {
        module: sorted(name for name in names if name.startswith(FORBIDDEN[package]))
        for module, names in _package_imports(OPERATOR / package).items()
    }
    assert {module: names for module, names in bad.items() if names} == {}


def test_the_operator_package_imports_no_development_tooling() -> None:
    offenders = [m for m, names in _package_imports(OPERATOR).items() if any(n.startswith("llmop_dev") for n in names)]
    assert offenders == []


def test_the_simulator_physics_never_imports_what_it_judges() -> None:
    judged = ("llmop.plan.latency", "llmop.plan.planner", "llmop.autoscale", "llmop.controller")
    for name in ("hardware.py", "engine.py", "fleet.py", "truth.py", "traces.py", "exporter.py"):
        names = _imports(REPLAY / name)
        assert not [n for n in names if n.startswith(judged)], name


def test_the_e2e_simulator_has_no_physics_of_the_planner() -> None:
    judged = ("llmop.plan.latency", "llmop.autoscale.capacity", "llmop.autoscale.policy")
    offenders = {
        module: sorted(n for n in names if n.startswith(judged))
        for module, names in _package_imports(ROOT / "devtools" / "llmop_dev" / "sim").items()
    }
    assert {module: names for module, names in offenders.items() if names} == {}
