"""Engine-argv test fixtures: plans for every examples/*.yaml from `llmop plan --json`, by engine."""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLES_DIR = REPO / "examples"


def _llmop_exe() -> str | None:
    """The `llmop` console script next to this interpreter, else the one on PATH."""
    here = Path(sys.executable).parent / "llmop"
    return str(here) if here.exists() else shutil.which("llmop")


def _plan(path: Path) -> dict[str, Any]:
    """Run `llmop plan -f PATH --json`; on failure return {"_error": message}."""
    exe = _llmop_exe()
    if exe is None:
        return {"_error": "the `llmop` console script is not installed (pip install -e '.[dev]')"}
    try:
        proc = subprocess.run(
            [exe, "plan", "-f", str(path), "--json"],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=REPO,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"_error": f"llmop plan failed to run: {exc}"}
    try:
        doc: dict[str, Any] = json.loads(proc.stdout)
    except json.JSONDecodeError:
        return {"_error": f"no JSON from llmop plan (rc={proc.returncode}): {proc.stderr[-2000:]}"}
    if not doc.get("ok"):
        return {"_error": f"top-level example does not plan: {doc.get('errors')}"}
    return doc


@functools.cache
def example_plans() -> tuple[tuple[str, dict[str, Any]], ...]:
    """(file name, `--json` document) for each examples/*.yaml, planned once per session."""
    return tuple((p.name, _plan(p)) for p in sorted(EXAMPLES_DIR.glob("*.yaml")))


def plans_for(engine: str) -> list[tuple[str, dict[str, Any]]]:
    """Examples whose plan is for `engine`; examples that failed to plan are kept (their test fails)."""
    out = []
    for name, doc in example_plans():
        if "_error" in doc or doc["plan"].get("engine") == engine:
            out.append((name, doc))
    return out


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize `tgi_example` / `vllm_example` with (file name, document) per example."""
    for engine in ("tgi", "vllm"):
        fixture = f"{engine}_example"
        if fixture in metafunc.fixturenames:
            cases = plans_for(engine)
            metafunc.parametrize(fixture, cases, ids=[name for name, _ in cases])


@pytest.fixture(scope="session")
def vllm_example_plans() -> list[tuple[str, dict[str, Any]]]:
    """(file name, `--json` document) for every example planned for vLLM."""
    return plans_for("vllm")


def require_engine_check() -> bool:
    """True when CI demands that the vLLM checks run instead of skipping."""
    return os.environ.get("REQUIRE_ENGINE_CHECK", "") not in ("", "0")


@pytest.fixture(scope="session")
def engine_check_required() -> bool:
    """REQUIRE_ENGINE_CHECK=1: a missing vLLM venv fails instead of skipping."""
    return require_engine_check()
