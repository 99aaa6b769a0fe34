"""`make mutation`: mutmut over the pure core in a staging copy (src/ layout, as mutmut expects), killed by the unit
tests; writes bench/results/mutation.md (score and surviving mutants) and mutation.json.

Usage: python scripts/mutation.py [--report] [MODULE ...]   (default: the pure core below; MODULE is a path under
operator/; --report rewrites the report from the last run in .mutation/)
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAGE = ROOT / ".mutation"
CORE = (
    "llmop/autoscale/policy.py",
    "llmop/plan/planner.py",
    "llmop/plan/compat.py",
    "llmop/plan/memory.py",
    "llmop/plan/latency.py",
    "llmop/controller/status_update.py",
    "llmop/controller/reconcile.py",
    "llmop/engines/promql.py",
)
COPIED = ("devtools", "tests", "bench", "charts", "crds", "examples", "scripts", "images", "README.md", "BENCHMARKS.md")


def stage(modules: tuple[str, ...]) -> None:
    """A copy of the repository with operator/ as src/ and a pyproject that tells mutmut what to mutate."""
    shutil.rmtree(STAGE, ignore_errors=True)
    STAGE.mkdir()
    shutil.copytree(ROOT / "operator", STAGE / "src", ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    (STAGE / "operator").symlink_to("src")  # tests that read operator/ (the image's Dockerfile) see the same tree
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, STAGE / name, ignore=shutil.ignore_patterns("__pycache__", "results"))
        else:
            shutil.copy2(source, STAGE / name)
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    text = text.replace('pythonpath = ["operator", "devtools", "tests"]', 'pythonpath = ["src", "devtools", "tests"]')
    only = ", ".join(f'"src/{module}"' for module in modules)
    text += (
        "\n[tool.mutmut]\n"
        'source_paths = ["src"]\n'
        f"only_mutate = [{only}]\n"
        f"also_copy = {json.dumps(['operator', *COPIED[:1], *COPIED[2:]])}\n"
        'pytest_add_cli_args_test_selection = ["tests/unit"]\n'
        'pytest_add_cli_args = ["-p", "no:cacheprovider", "-q"]\n'
    )
    (STAGE / "pyproject.toml").write_text(text, encoding="utf-8")


def results() -> dict[str, str]:
    out = subprocess.run([sys.executable, "-m", "mutmut", "results", "--all", "true"], cwd=STAGE,
                         capture_output=True, text=True, check=False).stdout  # fmt: skip
    found: dict[str, str] = {}
    for line in out.splitlines():
        match = re.match(r"\s*(\S+__mutmut_\d+): (.+)$", line)
        if match:
            found[match.group(1)] = match.group(2).strip()
    return found


def main(argv: list[str]) -> int:
    report_only = "--report" in argv
    modules = tuple(a for a in argv if a != "--report") or CORE
    started = time.monotonic()
    if not report_only:
        stage(modules)
        subprocess.run([sys.executable, "-m", "mutmut", "run", "--max-children", "2"], cwd=STAGE, check=False)
    took = time.monotonic() - started
    outcome = results()
    killed = sum(status == "killed" for status in outcome.values())
    judged = [name for name, status in outcome.items() if status in ("killed", "survived", "timeout")]
    survived = sorted(name for name, status in outcome.items() if status == "survived")
    score = 100.0 * killed / max(len(judged), 1)
    summary = {"modules": list(modules), "mutants": len(outcome), "judged": len(judged), "killed": killed,
               "survived": len(survived), "score_pct": round(score, 1), "seconds": round(took)}  # fmt: skip
    results_dir = ROOT / "bench" / "results"
    (results_dir / "mutation.json").write_text(json.dumps({**summary, "surviving": survived}, indent=2) + "\n")
    lines = ["## Mutation testing (mutmut, unit tests)", "", "| figure | value |", "| --- | --- |"]
    lines += [f"| {key} | {value} |" for key, value in summary.items() if key != "modules"]
    lines += ["", "Modules: " + ", ".join(f"`{m}`" for m in modules), "", "Surviving mutants:", ""]
    lines += [f"- `{name}`" for name in survived] or ["- none"]
    (results_dir / "mutation.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
