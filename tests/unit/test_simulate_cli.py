"""`llmop simulate`: the benchmark's replay as a user command (keys, flags, errors)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmop.cli import main

ROOT = Path(__file__).resolve().parents[2]
SPEC = str(ROOT / "bench/llmdeployment.yaml")
KEYS = {"policy", "trace", "slo_minutes_pct", "gpu_hours", "scale_events", "step_to_decision_s", "ttft_p95_s",
        "queue_minutes_pct", "timeouts", "rejected", "minutes"}  # fmt: skip


@pytest.fixture(autouse=True)
def _capacity_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMOP_REPLAY_CACHE", str(tmp_path_factory.getbasetemp() / "replay-cache"))


def _trace(tmp_path: Path, minutes: int = 10) -> str:
    """A step from 4 to 60 req/s half-way through `minutes`."""
    trace = tmp_path / "t.csv"
    half = minutes * 30
    trace.write_text(f"seconds,requests_per_second,mean_output_tokens\n0,4,128\n{half},60,128\n{2 * half},60,128\n")
    return str(trace)


def _simulate(args: list[str], capsys: pytest.CaptureFixture[str]) -> dict:
    assert main(["simulate", "-f", SPEC, *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_simulate_json_keys_and_a_scale_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = _simulate(["--trace", _trace(tmp_path), "--policy", "llmop", "--startup-seconds", "60"], capsys)
    assert set(result) == KEYS
    assert result["minutes"] == 10 and result["trace"] == "t"
    assert result["scale_events"] >= 1 and result["step_to_decision_s"] is not None


def test_seed_makes_a_replay_repeatable_and_gpu_speed_changes_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--trace", _trace(tmp_path, minutes=2), "--policy", "hpa", "--startup-seconds", "60", "--seed", "3"]
    first, again = _simulate(args, capsys), _simulate(args, capsys)
    assert first == again
    slower = _simulate([*args, "--gpu-speed", "0.5"], capsys)
    assert slower != first


def test_reactive_frontier_prints_ten_points(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # the shape of the output, not the frontier's figures: a 2-minute trace replays the ten points in a second
    points = _simulate(["--trace", _trace(tmp_path, minutes=2), "--policy", "reactive-frontier"], capsys)["points"]
    assert [(p["headroom"], p["hold_s"]) for p in points] == [
        (h, hold) for hold in (0.0, 120.0) for h in (0.0, 0.1, 0.2, 0.3, 0.5)
    ]
    assert {"slo_minutes_pct", "gpu_hours"} <= set(points[0])


def test_simulate_bad_trace_names_the_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = tmp_path / "bad.csv"
    trace.write_text("seconds,requests_per_second,mean_output_tokens\n0,ten,256\n")
    assert main(["simulate", "-f", SPEC, "--trace", str(trace)]) == 2
    err = capsys.readouterr().err
    assert "bad.csv:2" in err and "ten" in err
