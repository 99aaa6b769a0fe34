"""What the policy issue's targets ask of any controller: its three verdicts for the references themselves (the
clairvoyant oracle, each fixed point of the reactive family on time and seeing the load late, and the best point of
each family chosen per cell in hindsight), so a target no reference reaches is known for one."""

from __future__ import annotations

from typing import Any

from llmop_dev.replay import references, suite

ON_TIME = ""  # the family key of the reactive frontier itself; a late family is keyed by its lag in seconds


def family(cell: dict[str, Any], lag: str) -> list[dict[str, Any]]:
    """The ten points of a reactive family in a cell: the frontier's (`ON_TIME`) or the late one's of `lag`
    (`suite.replay_late`); none where that family was not replayed."""
    points: list[dict[str, Any]] = cell["frontier"] if lag == ON_TIME else cell.get("late_frontiers", {}).get(lag, [])
    return points


def point_pick(lag: str, headroom: float, hold_s: float) -> suite.Pick:
    """One fixed member of a family in every cell: a controller with that headroom and scale-in hold."""

    def pick(cell: dict[str, Any]) -> dict[str, Any] | None:
        return next((p for p in family(cell, lag) if p["headroom"] == headroom and p["hold_s"] == hold_s), None)

    return pick


def hindsight_pick(lag: str, aim: str = "baselines") -> suite.Pick:
    """The member of a family that serves one target best in each cell, chosen after the fact: no controller can
    choose so, so it bounds the family from above. `baselines`: the most baselines dominated (ties: the higher
    SLO-minutes, then the fewer GPU-hours); `frontier`: the least below the frontier (ties: the fewer GPU-hours)."""

    def pick(cell: dict[str, Any]) -> dict[str, Any] | None:
        points = family(cell, lag)
        if not points:
            return None

        def merit(point: dict[str, Any]) -> tuple[float, ...]:
            if aim == "frontier":
                best = references.frontier(cell["frontier"], point["gpu_hours"])
                gap = 0.0 if best is None else point["slo_minutes_pct"] - best
                return gap, -point["gpu_hours"]
            wins = sum(suite.dominates(point, suite.row(cell, baseline)) for baseline in suite.BASELINES)
            return wins, point["slo_minutes_pct"], -point["gpu_hours"]

        return max(points, key=merit)

    return pick


def _kind(lag: str) -> str:
    """A family's name in the table: `reactive`, `reactive 30 s late`."""
    return "reactive" if lag == ON_TIME else f"reactive {lag} s late"


def _counts(cells: list[dict[str, Any]], pick: suite.Pick) -> dict[str, int]:
    verdicts = suite.verdicts(cells, pick)
    slow = verdicts["gpu_speed_0_8"]
    return {
        "cells": verdicts["cells"],
        "frontier_met": verdicts["frontier"]["met"],
        "pairs": verdicts["baselines"]["pairs"],
        "dominated": verdicts["baselines"]["dominated"],
        "slow_compared": slow["compared"],
        "slow_within": slow["within_3pt"],
    }


def reach(cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The three verdicts for llmop, the oracle, every fixed point of each reactive family on file and each family's
    best in hindsight (for the frontier and the baselines, each on its own; a per-cell choice says nothing of the
    slow GPU, which compares two cells). An entry names its `family` and, for a fixed point, its `point`."""
    entries = [
        {"controller": "llmop", "family": None, "point": None, **_counts(cells, lambda c: suite.row(c, "llmop"))}
    ]
    if all(any(r["policy"] == "oracle" for r in c["rows"]) for c in cells):
        oracle = _counts(cells, lambda c: suite.row(c, "oracle"))
        entries.append({"controller": "oracle", "family": None, "point": None, **oracle})
    lags = sorted({lag for c in cells for lag in c.get("late_frontiers", {})}, key=float)
    for lag in (ON_TIME, *lags):
        kind = _kind(lag)
        members = sorted({(p["headroom"], p["hold_s"]) for c in cells for p in family(c, lag)}, key=lambda m: m[::-1])
        for headroom, hold_s in members:
            point = f"{headroom:g} hold={hold_s:g}s"
            counts = _counts(cells, point_pick(lag, headroom, hold_s))
            entries.append({"controller": f"{kind} h={point}", "family": kind, "point": point, **counts})
        if members:
            counts = _counts(cells, hindsight_pick(lag))
            counts["frontier_met"] = _counts(cells, hindsight_pick(lag, "frontier"))["frontier_met"]
            entries.append({"controller": f"{kind}, best point per cell in hindsight", "family": kind, "point": None,
                            **counts, "slow_within": None})  # fmt: skip
    return entries


def condensed(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """llmop, the oracle and the hindsight rows as they are; each family's fixed points folded into one entry, before
    its hindsight row, holding the best of them for each target with the point behind it (`frontier_by`,
    `dominated_by`, `slow_by`)."""
    kept = [e for e in entries if e["point"] is None]
    families: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        if entry["point"] is not None:
            families.setdefault(entry["family"], []).append(entry)
    for kind, members in families.items():
        folded: dict[str, Any] = {**members[0], "controller": f"{kind}, the best fixed point for each target",
                                  "point": None}  # fmt: skip
        for count, named in (
            ("frontier_met", "frontier_by"),
            ("dominated", "dominated_by"),
            ("slow_within", "slow_by"),
        ):
            best = max(members, key=lambda member, count=count: member[count])
            folded[count], folded[named] = best[count], best["point"]
        kept.insert(next(i for i, e in enumerate(kept) if e["family"] == kind), folded)
    return kept


def lines(entries: list[dict[str, Any]]) -> list[str]:
    """The entries as a Markdown table (a folded entry names the point behind each figure)."""
    table = [
        "| controller | within 1 point of the frontier | dominates `hpa` and `keda` | gpu-speed 0.8 within 3 points |",
        "| --- | --- | --- | --- |",
    ]
    for entry in entries:

        def by(named: str, entry: dict[str, Any] = entry) -> str:
            return f" (h={entry[named]})" if named in entry else ""

        frontier = "-" if entry["frontier_met"] is None else f"{entry['frontier_met']} of {entry['cells']}"
        slow = "-" if entry["slow_within"] is None else f"{entry['slow_within']} of {entry['slow_compared']}"
        share = 100 * entry["dominated"] / max(entry["pairs"], 1)
        dominated = f"{entry['dominated']} of {entry['pairs']} ({share:.1f} %)"
        table.append(
            f"| {entry['controller']} | {frontier}{by('frontier_by')} | {dominated}{by('dominated_by')} | "
            f"{slow}{by('slow_by')} |"
        )
    return table
