"""`llmop simulate`: the benchmark's replay as a user command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmop.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_simulate_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = tmp_path / "t.csv"
    trace.write_text("seconds,requests_per_second,mean_output_tokens\n0,10,256\n300,45,256\n900,45,256\n")
    code = main(["simulate", "-f", str(ROOT / "bench/llmdeployment.yaml"), "--trace", str(trace), "--policy",
                 "llmop", "--startup-seconds", "60", "--json"])  # fmt: skip
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) >= {"slo_minutes_pct", "gpu_hours", "scale_events", "step_to_decision_s"}
    assert result["scale_events"] >= 1 and 0 < result["gpu_hours"] < 8 * 0.25
    assert result["step_to_decision_s"] is not None and 0 <= result["step_to_decision_s"] <= 120


def test_simulate_bad_trace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = tmp_path / "bad.csv"
    trace.write_text("0,ten,256\n")
    assert main(["simulate", "-f", str(ROOT / "bench/llmdeployment.yaml"), "--trace", str(trace)]) == 2
    assert "not numbers" in capsys.readouterr().err
