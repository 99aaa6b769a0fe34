"""The issue's three verdicts for the references (`replay/reach.py`), on hand-made cells."""

from __future__ import annotations

from typing import Any

from llmop_dev.replay import reach


def _row(policy: str, slo: float, gpu: float) -> dict[str, Any]:
    return {"policy": policy, "slo_minutes_pct": slo, "gpu_hours": gpu}


def _point(headroom: float, slo: float, gpu: float) -> dict[str, Any]:
    return {"headroom": headroom, "hold_s": 0.0, "slo_minutes_pct": slo, "gpu_hours": gpu}


def _cell(speed: float, llmop: float, oracle: float, oracle_gpu: float) -> dict[str, Any]:
    rows = [
        _row("llmop", llmop, 5.0),
        _row("hpa", 84.0, 6.0),
        _row("keda", 99.0, 9.0),
        _row("oracle", oracle, oracle_gpu),
    ]
    return {"key": f"s|t|120|{speed:g}|0", "spec": "s", "trace": "t", "startup_s": 120.0, "gpu_speed": speed,
            "rows": rows, "frontier": [_point(0.0, 80.0, 4.0), _point(0.2, 90.0, 6.0)]}  # fmt: skip


def _cells() -> list[dict[str, Any]]:
    planned, slower = _cell(1.0, 86.0, 95.0, 6.5), _cell(0.8, 82.0, 90.0, 6.0)
    planned["late_frontiers"] = {"30": [_point(0.0, 70.0, 3.9), _point(0.2, 88.0, 5.9)]}  # only in one cell
    return [planned, slower]


def _counts(entry: dict[str, Any]) -> tuple[Any, ...]:
    keys = ("cells", "frontier_met", "pairs", "dominated", "slow_compared", "slow_within")
    return (entry["controller"], *(entry[key] for key in keys))


def test_every_reference_is_judged_by_the_same_three_verdicts() -> None:
    assert [_counts(e) for e in reach.reach(_cells())] == [
        ("llmop", 2, 1, 4, 1, 1, 0),  # 82 < 84 - 1 at 5 GPU-hours; only hpa at 1.0 dominated; loses 4 points at 0.8
        ("oracle", 2, 2, 4, 1, 1, 0),  # flat beyond the dearest point; 6.5 > 6.0 x 1.02 at 1.0; loses 5 points
        ("reactive h=0 hold=0s", 2, 2, 4, 0, 1, 1),
        ("reactive h=0.2 hold=0s", 2, 2, 4, 2, 1, 1),
        ("reactive, best point per cell in hindsight", 2, 2, 4, 2, 1, None),
        ("reactive 30 s late h=0 hold=0s", 1, 0, 2, 0, 0, 0),  # 70 < 80 x 3.9 / 4 - 1: below the origin's line
        ("reactive 30 s late h=0.2 hold=0s", 1, 0, 2, 1, 0, 0),  # 88 < 89.5 - 1
        ("reactive 30 s late, best point per cell in hindsight", 1, 0, 2, 1, 0, None),  # its best: 1.5 below
    ]


def test_a_family_folds_into_its_best_fixed_point_for_each_target() -> None:
    folded = reach.condensed(reach.reach(_cells()))
    assert [e["controller"] for e in folded] == [
        "llmop",
        "oracle",
        "reactive, the best fixed point for each target",
        "reactive, best point per cell in hindsight",
        "reactive 30 s late, the best fixed point for each target",
        "reactive 30 s late, best point per cell in hindsight",
    ]
    on_time = folded[2]
    assert (on_time["frontier_met"], on_time["frontier_by"]) == (2, "0 hold=0s")  # the first of two equal
    assert (on_time["dominated"], on_time["dominated_by"]) == (2, "0.2 hold=0s")
    assert (on_time["slow_within"], on_time["slow_by"]) == (1, "0 hold=0s")
    assert reach.lines(folded)[2:5] == [
        "| llmop | 1 of 2 | 1 of 4 (25.0 %) | 0 of 1 |",
        "| oracle | 2 of 2 | 1 of 4 (25.0 %) | 0 of 1 |",
        "| reactive, the best fixed point for each target | 2 of 2 (h=0 hold=0s) | 2 of 4 (50.0 %) (h=0.2 hold=0s) | "
        "1 of 1 (h=0 hold=0s) |",
    ]
    assert reach.lines(folded)[5] == "| reactive, best point per cell in hindsight | 2 of 2 | 2 of 4 (50.0 %) | - |"


def test_the_hindsight_pick_prefers_wins_then_slo_minutes_then_fewer_gpu_hours() -> None:
    cell = _cells()[0]
    cell["frontier"] = [_point(0.0, 86.0, 5.0), _point(0.1, 86.0, 4.8), _point(0.2, 99.0, 9.5), _point(0.3, 85.0, 5.0)]
    # 0 and 0.1 beat hpa alone (0.2 spends more than keda's 9.0 x 1.02); of those 0 and 0.1 tie on minutes: fewer hours
    assert reach.hindsight_pick(reach.ON_TIME)(cell) == _point(0.1, 86.0, 4.8)
    # nearest the frontier: 4.8 h and 9.5 h are both on it (the hull runs from one to the other): the cheaper
    assert reach.hindsight_pick(reach.ON_TIME, "frontier")(cell) == _point(0.1, 86.0, 4.8)
    # late: 70 % at 3.9 h is 0.125 above the origin's line to (4.8, 86); 88 % at 5.9 h is 1.04 below the hull
    assert reach.hindsight_pick("30", "frontier")(cell) == _point(0.0, 70.0, 3.9)
    assert reach.hindsight_pick("30")(cell) == _point(0.2, 88.0, 5.9)  # it alone beats hpa
    assert reach.hindsight_pick("45")(cell) is None  # no family replayed 45 s late
    assert reach.point_pick("30", 0.2, 0.0)(cell) == _point(0.2, 88.0, 5.9)
    assert reach.point_pick("30", 0.2, 120.0)(cell) is None
