"""The benchmark's scoring, references and verdicts, on hand-made numbers."""

from __future__ import annotations

from typing import Any

import pytest

from llmop_dev.replay import reach, references, score, seed_noise, suite, suite_report
from llmop_dev.replay.types import PodView, Request, View


class _Workload:
    """A step: 10 req/s until 600 s, then 30 req/s; 1000-token prompts, 200-token outputs."""

    name = "step"
    duration_s = 1200.0
    requests: tuple[Request, ...] = ()

    def intensity(self, t: float) -> float:
        return 10.0 if t < 600 else 30.0

    def mean_output_tokens(self, t: float) -> float:
        return 200.0

    def mean_prompt_tokens(self, t: float) -> float:
        return 1000.0


def _view(now: float, pods: int) -> View:
    return View(now, tuple(PodView(f"p{i}", True, 0.0) for i in range(pods)), lambda expr: [])


def _sizer(headroom: float = 0.0) -> references.Sizer:
    return references.Sizer(_Workload(), lambda prompt, output: 4.0, headroom, 1, 20)


def test_weighted_quantile_is_the_lowest_value_reaching_the_rank() -> None:
    points = [(0.010, 90.0), (0.030, 5.0), (0.050, 5.0)]
    assert score.weighted_quantile(points, 0.90) == 0.010
    assert score.weighted_quantile(points, 0.95) == 0.030
    assert score.weighted_quantile(points, 0.96) == 0.050
    assert score.weighted_quantile([], 0.95) is None


def test_a_minute_is_met_only_with_tpot_ttft_and_no_timeouts() -> None:
    points = [(0.040, 95.0), (0.060, 5.0)]
    assert score.judge_minute(0, points, [0.5, 1.0], 0.0, 0, 0.045, 95, 2.0).met
    assert not score.judge_minute(0, points, [0.5, 1.0], 0.0, 0, 0.045, 99, 2.0).met  # p99 is 60 ms
    assert score.judge_minute(0, points, [0.5] * 19 + [2.5], 0.0, 0, 0.045, 95, 2.0).met is not False
    assert not score.judge_minute(0, points, [0.5] * 18 + [2.5, 2.5], 0.0, 0, 0.045, 95, 2.0).met
    assert not score.judge_minute(0, points, [], 0.0, 1, 0.045, 95, 2.0).met
    assert score.judge_minute(0, [], [], 0.0, 0, 0.045, 95, 2.0).met  # idle


def test_summary_counts_met_and_queue_minutes() -> None:
    minutes = [score.Minute(0, 0.01, 0.1, 0.0, 0, True), score.Minute(1, 0.09, 0.1, 3.0, 0, False),
               score.Minute(2, 0.01, 0.1, 0.9, 2, False), score.Minute(3, None, None, 1.0, 0, True)]  # fmt: skip
    result = score.summarize(minutes, [0.1, 0.2, 3.0], 7200.0, rejected=4)
    assert (result.slo_minutes_pct, result.queue_minutes_pct, result.timeouts) == (50.0, 50.0, 2)
    assert (result.gpu_hours, result.ttft_p95_s, result.rejected, result.minutes) == (2.0, 3.0, 4, 4)


def test_sizer_uses_true_rate_capacity_and_headroom() -> None:
    assert _sizer().need(0.0) == 3  # 10 / 4 -> 3
    assert _sizer().need(900.0) == 8  # 30 / 4 -> 8 (7.5 up)
    assert _sizer(0.2).need(900.0) == 9  # 36 / 4
    assert references._rounded(1000.0) == 1024.0 and references._rounded(200.0) == 215.3


def test_reactive_reference_scales_in_only_after_its_hold() -> None:
    reference = references.ReactiveReference(_sizer(), hold_s=120.0)
    assert reference.desired(_view(0.0, 5)) == 5  # needs 3, holds 5
    assert reference.desired(_view(60.0, 5)) == 5
    assert reference.desired(_view(120.0, 5)) == 3
    assert reference.desired(_view(700.0, 3)) == 8  # up at once
    assert references.ReactiveReference(_sizer(), hold_s=0.0).desired(_view(0.0, 5)) == 3


def test_the_late_reference_sizes_for_the_load_of_lag_seconds_before() -> None:
    late = references.LateReactiveReference(_sizer(), hold_s=120.0, lag_s=30.0)
    assert late.name == "reactive-late h=0 hold=120s lag=30s"
    assert late.desired(_view(10.0, 3)) == 3  # before the trace began: the load at 0
    assert late.desired(_view(620.0, 3)) == 3  # sees 590 s: still 10 req/s
    assert late.desired(_view(630.0, 3)) == 8  # sees 600 s: the step
    assert references.ReactiveReference(_sizer(), hold_s=120.0).desired(_view(620.0, 3)) == 8
    assert references.LateReactiveReference(_sizer(), hold_s=0.0).lag_s == references.LATE_S == 30.0


def test_clairvoyant_oracle_starts_replicas_a_start_up_ahead() -> None:
    oracle = references.ClairvoyantOracle(_sizer(), startup_s=120.0)
    assert oracle.desired(_view(400.0, 3)) == 3
    assert oracle.desired(_view(480.0, 3)) == 8  # 480 + 120 + 10 reaches the step at 600


def test_frontier_interpolates_between_pareto_points() -> None:
    points = [{"gpu_hours": 4.0, "slo_minutes_pct": 80.0}, {"gpu_hours": 6.0, "slo_minutes_pct": 90.0},
              {"gpu_hours": 7.0, "slo_minutes_pct": 85.0}, {"gpu_hours": 8.0, "slo_minutes_pct": 95.0}]  # fmt: skip
    assert references.frontier(points, 3.0) == 60.0  # below the cheapest point: on the line from the origin
    assert references.frontier([], 3.0) is None
    assert references.frontier(points, 5.0) == 85.0
    assert references.frontier(points, 7.0) == 92.5  # the dominated 7 h point is not on the frontier
    assert references.frontier(points, 9.0) == 95.0


def _row(policy: str, slo: float, gpu: float) -> dict[str, Any]:
    return {"policy": policy, "slo_minutes_pct": slo, "gpu_hours": gpu}


def test_domination_has_half_a_point_and_two_percent_of_slack() -> None:
    assert suite.dominates(_row("a", 90.0, 5.0), _row("b", 90.0, 5.5))
    assert suite.dominates(_row("a", 89.6, 5.0), _row("b", 90.0, 5.5))
    assert not suite.dominates(_row("a", 89.4, 5.0), _row("b", 90.0, 5.5))
    assert suite.dominates(_row("a", 95.0, 5.1), _row("b", 90.0, 5.0))
    assert not suite.dominates(_row("a", 95.0, 5.2), _row("b", 90.0, 5.0))
    assert not suite.dominates(_row("a", 90.0, 5.0), _row("b", 90.0, 5.0))


def _cell(speed: float, llmop: float) -> dict[str, Any]:
    frontier = [{"headroom": 0.0, "hold_s": 0.0, "gpu_hours": 4.0, "slo_minutes_pct": 80.0},
                {"headroom": 0.2, "hold_s": 0.0, "gpu_hours": 6.0, "slo_minutes_pct": 90.0}]  # fmt: skip
    rows = [_row("llmop", llmop, 5.0), _row("hpa", 84.0, 6.0), _row("keda", 99.0, 9.0)]
    return {"key": f"s|t|120|{speed:g}|0", "spec": "s", "trace": "t", "startup_s": 120.0, "gpu_speed": speed,
            "rows": rows, "frontier": frontier}  # fmt: skip


def test_verdicts_count_frontier_baselines_and_slow_gpu() -> None:
    result = suite.verdicts([_cell(1.0, 86.0), _cell(0.8, 82.0)])
    assert result["frontier"]["met"] == 1  # 82 < 85 - 1 at 5 GPU-hours
    assert result["frontier"]["misses"] == [{"key": "s|t|120|0.8|0", "llmop": 82.0, "frontier": 85.0}]
    assert (result["baselines"]["pairs"], result["baselines"]["dominated"]) == (
        4,
        1,
    )  # hpa at 1.0 only (82 < 84 - 0.5 at 0.8); keda never
    assert result["gpu_speed_0_8"] == {
        "compared": 1,
        "within_3pt": 0,
        "losses": [{"key": "s|t|120|0.8|0", "loss_pt": 4.0, "oracle_loss_pt": None, "frontier_best_loss_pt": 0.0}],
        "oracle_loses_too": 0,
    }


def test_a_slow_gpu_loss_names_what_it_costs_the_oracle_and_the_frontiers_best_point() -> None:
    planned, slower = _cell(1.0, 86.0), _cell(0.8, 80.0)
    planned["rows"].append(_row("oracle", 97.0, 5.5))
    slower["rows"].append(_row("oracle", 93.5, 6.5))
    slower["frontier"][1]["slo_minutes_pct"] = 85.0  # the best point at 0.8: 5 points below 1.0's
    result = suite.verdicts([planned, slower])["gpu_speed_0_8"]
    assert result["losses"] == [
        {"key": "s|t|120|0.8|0", "loss_pt": 6.0, "oracle_loss_pt": 3.5, "frontier_best_loss_pt": 5.0}
    ]
    assert result["oracle_loses_too"] == 1
    slower["rows"][-1]["slo_minutes_pct"] = 94.0  # the oracle loses 3 points: not more than 3
    assert suite.verdicts([planned, slower])["gpu_speed_0_8"]["oracle_loses_too"] == 0
    for cell in (planned, slower):  # what the report's table reads besides
        cell["requests"] = 1000
        cell["frontier"].append({"headroom": 0.2, "hold_s": 120.0, "gpu_hours": 7.0, "slo_minutes_pct": 80.0})
    text = suite_report.markdown(
        [planned, slower], suite.verdicts([planned, slower]), [], reach.reach([planned, slower])
    )
    assert "- s|t|120|0.8|0: -6.0 pt (the oracle -3.0 pt, the frontier's best point -5.0 pt)" in text.splitlines()
    assert "In 0 of these 1 the clairvoyant oracle loses more than 3 points too." in text


def test_the_report_lists_other_baselines_with_a_dash_where_a_cell_has_none() -> None:
    planned, slower = _cell(1.0, 86.0), _cell(0.8, 82.0)
    for cell in (planned, slower):  # the report's reference column (h=0.2, hold 2 minutes) and request count
        cell["requests"] = 1000
        cell["frontier"] = [
            *cell["frontier"],
            {"headroom": 0.2, "hold_s": 120.0, "gpu_hours": 7.0, "slo_minutes_pct": 92.0},
        ]
    planned["rows"] += [
        _row("oracle", 97.0, 5.5),
        _row("hpa-rps@0.6", 95.0, 7.5),
        _row("llmop share_rule=false", 85.0, 4.9),
    ]
    slower["rows"] += [
        _row("oracle", 96.0, 6.5),
        _row("llmop share_rule=false", 80.0, 4.8),
    ]  # an ablation only: no baseline row here
    text = suite_report.markdown(
        [planned, slower], suite.verdicts([planned, slower]), [], reach.reach([planned, slower])
    )
    table = text[text.index("Every baseline") :].splitlines()
    # the ablation-only cell is not listed (ablations have their own table); a blank line ends the table
    assert table[2:6] == ["| spec | trace | hpa-rps@0.6 |", "| --- | --- | --- |", "| s | t | 95.0 / 7.50 |", ""]


def test_ablation_overrides_set_fields_and_nested_settings_from_text() -> None:
    from llmop.autoscale.calibration import CalibrationSettings
    from llmop.autoscale.policy import PolicyConfig
    from llmop_dev.replay.run import override

    config = PolicyConfig(target_ms=40.0, percentile=95, min_replicas=1, max_replicas=8,
                          calibration=CalibrationSettings())  # fmt: skip
    changed = override(
        config,
        (("tolerance", "0.3"), ("share_rule", "false"), ("calibration.half_life_s", "45"),
         ("calibration.event_move", "0.2")),
    )  # fmt: skip
    assert changed.tolerance == 0.3
    assert changed.share_rule is False
    assert changed.calibration == CalibrationSettings(half_life_s=45.0, event_move=0.2)
    assert config.calibration == CalibrationSettings()  # the original is left as it was
    assert override(config, (("calibration", "none"),)).calibration is None
    with pytest.raises(AttributeError):
        override(config, (("calibration.no_such_field", "1"),))


def _seeded(seed: int, llmop: float, gpu: float = 5.0, trace: str = "t") -> dict[str, Any]:
    cell = _cell(1.0, llmop)
    cell["rows"][0]["gpu_hours"] = gpu
    return {**cell, "key": f"s|{trace}|120|1|{seed}", "trace": trace, "seed": seed}


def test_seed_noise_spreads_the_gap_over_the_seeds_of_each_cell() -> None:
    cells = [_seeded(1, 84.0), _seeded(0, 86.0), _seeded(2, 83.5, gpu=6.0), _seeded(0, 90.0, trace="lone")]
    (item,) = seed_noise.spreads(cells)  # the cell with one seed has no spread
    assert item.cell == "s|t|120|1"
    assert item.seeds == (0, 1, 2)
    assert item.gaps == (1.0, -1.0, -6.5)  # frontier 85 at 5 GPU-hours, 90 at 6
    assert item.slo_minutes_pct == (86.0, 84.0, 83.5)
    assert item.gpu_hours == (5.0, 5.0, 6.0)
    assert item.dominated == (1, 1, 0)  # hpa (84 / 6 h) at seeds 0 and 1; at 2 better on neither axis
    assert item.spread == 7.5
    assert item.mean_gap == pytest.approx(-6.5 / 3)
    assert item.flips  # met at seeds 0 and 1 (within 1 point), missed at seed 2


def test_seed_noise_summary_and_lines_count_flips_and_each_way_of_meeting() -> None:
    steady = [_seeded(0, 85.5, trace="a"), _seeded(1, 85.0, trace="a")]  # gaps +0.5, 0.0
    noisy = [_seeded(0, 86.0, trace="b"), _seeded(1, 81.0, trace="b")]  # gaps +1.0, -4.0
    items = seed_noise.spreads(steady + noisy)
    assert seed_noise.summary(items) == {
        "cells": 2,
        "seeds": [0, 1],
        "gap_spread_median": 2.75,
        "gap_spread_max": 5.0,
        "gap_stdev_mean": 1.94,
        "verdict_flips": 1,
        "met_first_seed": 2,
        "met_every_seed": 1,
        "met_on_mean": 1,  # b's mean gap is -1.5
        "mean_gap_first_seed": 0.75,
        "mean_gap_all_seeds": -0.62,
    }
    assert seed_noise.summary([]) == {"cells": 0}
    text = seed_noise.lines(items)
    assert text[0].startswith("2 cells replayed at seeds 0, 1 ")
    assert "flips with the seed alone in 1 cells" in text[0]
    assert "Within 1 point: 2 at the first seed, 1 at every seed, 1 on the mean over the seeds." in text[0]
    assert text[4:] == [
        "| s|a|120|1 | 0, 1 | +0.5 +0.0 | 85.5 85.0 | 5.00 5.00 | 1 1 |",
        "| s|b|120|1 | 0, 1 | +1.0 -4.0 | 86.0 81.0 | 5.00 5.00 | 1 0 |",
    ]
    assert seed_noise.lines([]) == []


def test_the_grid_puts_seed_zero_first_then_each_other_seed() -> None:
    cells = suite.grid(["a.yaml"], ["t.csv"], startups=(120.0,), speeds=(0.8, 1.0), seeds=(0, 3))
    assert [(c.seed, c.gpu_speed) for c in cells] == [(0, 1.0), (0, 0.8), (3, 1.0), (3, 0.8)]
    assert cells[2].key == "a|t|120|1|3"


def test_a_cell_key_splits_into_the_cell_and_its_seed() -> None:
    cell = suite.Cell("bench/specs/a.yaml", "bench/traces/t.csv", 120.0, 0.8, 2)
    assert suite.split_key(cell.key) == ("a|t|120|0.8", 2)
