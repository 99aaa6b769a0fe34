"""How far the grid's per-cell figures move with the arrival seed alone: the noise floor of its verdicts."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from llmop_dev.replay import suite


def base_key(cell: dict[str, Any]) -> str:
    """The cell without its seed: `spec|trace|start-up|gpu-speed`."""
    return suite.split_key(str(cell["key"]))[0]


@dataclass(frozen=True)
class SeedSpread:
    """llmop in one cell of the grid replayed at several seeds (the same trace shape, other arrival draws)."""

    cell: str
    seeds: tuple[int, ...]
    gaps: tuple[float, ...]  # SLO-minute points above the frontier at llmop's GPU-hours, at each seed
    slo_minutes_pct: tuple[float, ...]
    gpu_hours: tuple[float, ...]
    dominated: tuple[int, ...]  # of the 2 pairs (hpa, keda), how many llmop dominates at each seed

    @property
    def spread(self) -> float:
        """Largest minus smallest gap over the seeds."""
        return max(self.gaps) - min(self.gaps)

    @property
    def mean_gap(self) -> float:
        return statistics.fmean(self.gaps)

    @property
    def flips(self) -> bool:
        """Whether the frontier verdict (within the slack or not) differs between seeds."""
        return len({gap >= -suite.FRONTIER_SLACK_PT for gap in self.gaps}) > 1


def spreads(cells: list[dict[str, Any]]) -> list[SeedSpread]:
    """Every cell replayed at two or more seeds, in key order; seeds ascending within each."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for cell in cells:
        groups.setdefault(base_key(cell), []).append(cell)
    result = []
    for key, group in sorted(groups.items()):
        gapped = ((c, suite.frontier_gap(c, "llmop")) for c in group)
        measured = sorted(((c, gap) for c, gap in gapped if gap is not None), key=lambda pair: pair[0]["seed"])
        if len(measured) < 2:
            continue
        rows = [suite.row(c, "llmop") for c, _ in measured]
        wins = [
            sum(suite.dominates(r, suite.row(c, b)) for b in suite.BASELINES)
            for r, (c, _) in zip(rows, measured, strict=True)
        ]
        result.append(
            SeedSpread(
                cell=key,
                seeds=tuple(int(c["seed"]) for c, _ in measured),
                gaps=tuple(gap for _, gap in measured),
                slo_minutes_pct=tuple(r["slo_minutes_pct"] for r in rows),
                gpu_hours=tuple(r["gpu_hours"] for r in rows),
                dominated=tuple(wins),
            )
        )
    return result


def summary(items: list[SeedSpread]) -> dict[str, Any]:
    """The noise floor in numbers: spreads of the gap, verdicts that flip, verdicts on the first and mean seeds."""
    if not items:
        return {"cells": 0}
    spread = sorted(item.spread for item in items)
    slack = suite.FRONTIER_SLACK_PT
    return {
        "cells": len(items),
        "seeds": sorted({seed for item in items for seed in item.seeds}),
        "gap_spread_median": round(statistics.median(spread), 2),
        "gap_spread_max": round(spread[-1], 2),
        "gap_stdev_mean": round(statistics.fmean(statistics.stdev(item.gaps) for item in items), 2),
        "verdict_flips": sum(item.flips for item in items),
        "met_first_seed": sum(item.gaps[0] >= -slack for item in items),
        "met_every_seed": sum(min(item.gaps) >= -slack for item in items),
        "met_on_mean": sum(item.mean_gap >= -slack for item in items),
        "mean_gap_first_seed": round(statistics.fmean(item.gaps[0] for item in items), 2),
        "mean_gap_all_seeds": round(statistics.fmean(item.mean_gap for item in items), 2),
    }


def lines(items: list[SeedSpread]) -> list[str]:
    """Markdown: the summary sentence and one row per cell."""
    if not items:
        return []
    numbers = summary(items)
    seeds = ", ".join(str(seed) for seed in numbers["seeds"])
    text = [
        f"{numbers['cells']} cells replayed at seeds {seeds} (the same trace shape and rate, other arrival draws). "
        f"llmop's gap to the frontier moves by {numbers['gap_spread_median']:.1f} points between seeds (median; "
        f"at most {numbers['gap_spread_max']:.1f}); the 1-point verdict flips with the seed alone in "
        f"{numbers['verdict_flips']} cells. Within 1 point: {numbers['met_first_seed']} at the first seed, "
        f"{numbers['met_every_seed']} at every seed, {numbers['met_on_mean']} on the mean over the seeds.",
        "",
        "| cell | seeds | frontier gap per seed | SLO-min % per seed | GPU-h per seed | hpa/keda dominated |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for item in items:
        text.append(
            f"| {item.cell} | {', '.join(map(str, item.seeds))} | {' '.join(f'{g:+.1f}' for g in item.gaps)} | "
            f"{' '.join(f'{s:.1f}' for s in item.slo_minutes_pct)} | {' '.join(f'{h:.2f}' for h in item.gpu_hours)} "
            f"| {' '.join(map(str, item.dominated))} |"
        )
    return text
