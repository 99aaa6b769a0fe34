"""`bench/autoscale.py` end to end on one short cell: a replay, an ablation rerun, the late family and the report."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _bench(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The script as a module its worker processes can import again (they are handed its functions by name)."""
    monkeypatch.syspath_prepend(str(BENCH))
    return importlib.import_module("autoscale")


def _last_record(path: Path) -> dict[str, Any]:
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    record: dict[str, Any] = json.loads(lines[-1])
    return record


def test_a_cell_is_replayed_rerun_as_an_ablation_and_given_its_late_family(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    trace = tmp_path / "short-step.csv"
    trace.write_text("seconds,requests_per_second,mean_output_tokens\n0,20,128\n120,60,128\n240,60,128\n")
    common = ["--quick", "--speeds", "1.0", "--jobs", "1", "--out", str(tmp_path / "out"),
              "--spec", str(BENCH / "specs" / "llama31-8b-fp8-l40s-vllm.yaml"), "--trace", str(trace)]  # fmt: skip
    bench = _bench(monkeypatch)
    cells = tmp_path / "out" / "autoscale-cells.jsonl"

    assert bench.main(common) == 0
    recorded = _last_record(cells)
    assert recorded["key"] == "llama31-8b-fp8-l40s-vllm|short-step|120|1|0"
    assert [row["policy"] for row in recorded["rows"]][:4] == ["llmop", "hpa", "keda", "oracle"]

    assert bench.main([*common, "--rerun", "llmop", "--set", "tolerance=0.3"]) == 0
    ablated = _last_record(cells)
    assert [row["policy"] for row in ablated["rows"]][-1] == "llmop tolerance=0.3"
    assert ablated["frontier"] == recorded["frontier"]

    assert bench.main([*common, "--late", "0"]) == 0
    late = _last_record(cells)
    assert late["late_frontiers"] == {"0": recorded["frontier"]}  # 0 s late is the frontier itself
    assert late["rows"] == ablated["rows"]

    summary = json.loads((tmp_path / "out" / "autoscale.json").read_text(encoding="utf-8"))
    names = [entry["controller"] for entry in summary["reach"]]
    assert names[:2] == ["llmop", "oracle"]
    assert names[-1] == "reactive 0 s late, best point per cell in hindsight"
    assert len(names) == 2 + 2 * (10 + 1)  # ten fixed points and the hindsight best, on time and 0 s late
    report = (tmp_path / "out" / "autoscale.md").read_text(encoding="utf-8")
    assert "The same verdicts for the references:" in report
    assert "| reactive 0 s late h=0 hold=0s | 1 of 1 |" in report  # on the frontier's cheapest point
    assert '"frontier"' in capsys.readouterr().out  # the verdicts are printed
