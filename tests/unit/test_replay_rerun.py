"""A policy replayed again in a recorded cell (`suite.replay_policy`) meets the arrivals the cell was recorded on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from llmop_dev.replay import suite
from llmop_dev.replay.traces import load_workload

SPEC = str(Path(__file__).resolve().parents[2] / "bench" / "specs" / "llama31-8b-fp8-l40s-vllm.yaml")


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[suite.Cell, dict[str, Any]]:
    trace = tmp_path_factory.mktemp("trace") / "short-step.csv"
    trace.write_text("seconds,requests_per_second,mean_output_tokens\n0,20,128\n120,60,128\n240,60,128\n")
    cell = suite.Cell(SPEC, str(trace), startup_s=60.0, gpu_speed=1.0)
    return cell, suite.replay_cell(cell, suite.rate_scale(cell.spec, cell.trace), extras=False)


def test_a_cell_keeps_its_exact_rate_factor(recorded: tuple[suite.Cell, dict[str, Any]]) -> None:
    cell, record = recorded
    scale = suite.rate_scale(cell.spec, cell.trace)
    assert record["rate_scale"] == scale
    assert record["requests"] == len(load_workload(cell.trace, seed=0, rate_scale=scale).requests)
    # Rounded as cells were kept before, the factor draws other arrivals: why a rerun must not use it.
    rounded = load_workload(cell.trace, seed=0, rate_scale=round(scale, 4))
    exact = load_workload(cell.trace, seed=0, rate_scale=scale)
    assert [r.arrival_s for r in rounded.requests] != [r.arrival_s for r in exact.requests]


def test_a_rerun_of_a_rounded_record_replays_the_recorded_arrivals(
    recorded: tuple[suite.Cell, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    cell, record = recorded
    old_style = {**record, "rate_scale": round(record["rate_scale"], 4)}
    drawn: list[float] = []

    def spying_load(path: str, **kwargs: Any) -> Any:
        if "rate_scale" in kwargs:  # `rate_scale` itself reads the trace unscaled
            drawn.append(kwargs["rate_scale"])
        return load_workload(path, **kwargs)

    monkeypatch.setattr(suite, "load_workload", spying_load)
    again = suite.replay_policy(cell, old_style, "llmop")
    assert drawn == [record["rate_scale"]]
    assert again["rate_scale"] == record["rate_scale"]
    assert suite.row(again, "llmop") == suite.row(record, "llmop")  # deterministic: the same arrivals, the same row
    assert [r["policy"] for r in again["rows"]] == ["hpa", "keda", "oracle", "llmop"]
    assert again["frontier"] == record["frontier"]


def test_a_rerun_is_refused_when_the_workload_moved(recorded: tuple[suite.Cell, dict[str, Any]]) -> None:
    cell, record = recorded
    with pytest.raises(ValueError, match=r"short-step\|60\|1\|0: the workload has \d+ requests now, \d+ when"):
        suite.replay_policy(cell, {**record, "requests": record["requests"] + 1}, "llmop")
    with pytest.raises(ValueError, match=r"rate factor [\d.]+ now, 0.5 recorded; replay it all"):
        suite.replay_policy(cell, {**record, "rate_scale": 0.5}, "llmop")
    with pytest.raises(ValueError, match="recorded under physics capacity-old, now capacity-"):
        suite.replay_policy(cell, {**record, "physics": "capacity-old"}, "llmop")


def test_the_late_family_seen_zero_seconds_late_is_the_frontier(recorded: tuple[suite.Cell, dict[str, Any]]) -> None:
    cell, record = recorded
    on_time = suite.replay_late(cell, record, 0.0)
    assert on_time["late_frontiers"] == {"0": record["frontier"]}  # the same ten points, to the digit
    late = suite.replay_late(cell, on_time, 30.0)
    assert list(late["late_frontiers"]) == ["0", "30"]  # a second lag is added beside the first
    points = late["late_frontiers"]["30"]
    assert [(p["headroom"], p["hold_s"]) for p in points] == [(p["headroom"], p["hold_s"]) for p in record["frontier"]]
    assert points != record["frontier"]  # the step at 120 s is met 30 s later
    assert late["rows"] == record["rows"] and late["frontier"] == record["frontier"]
    with pytest.raises(ValueError, match=r"the workload has \d+ requests now"):
        suite.replay_late(cell, {**record, "requests": record["requests"] + 1}, 30.0)
