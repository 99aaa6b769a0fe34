"""The benchmark grid: specs x traces x start-up x gpu-speed; each cell replays llmop, baselines and references."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmop_dev.replay import capacity_cache, references, run
from llmop_dev.replay.traces import load_workload
from llmop_dev.specs import load_spec

STARTUPS_S = (60.0, 120.0, 300.0)
GPU_SPEEDS = (1.0, 0.8, 1.2)
PEAK_REPLICAS = 8  # each trace is scaled so that its busiest minute needs this many replicas at gpu-speed 1.0
CORE_POLICIES = ("llmop", "hpa", "keda", "oracle")
# Every baseline with its own settings, replayed where start-up is 120 s and the GPU is as planned.
EXTRA_POLICIES = ("hpa-rps", "hpa-concurrency", "hpa-tpot", "keda-running", "keda-waiting")
EXTRA_FRACTIONS = (0.6, 0.7, 0.9)
SLO_SLACK_PT = 0.5  # domination: better on one axis, no worse on the other within these slacks
GPU_SLACK = 0.02
FRONTIER_SLACK_PT = 1.0  # the frontier target: llmop at most this many SLO-minute points below it
BASELINES = ("hpa", "keda")  # the competent baselines llmop is to dominate

Pick = Callable[[dict[str, Any]], dict[str, Any] | None]  # the row of a cell a verdict judges


@dataclass(frozen=True)
class Cell:
    """One point of the grid."""

    spec: str
    trace: str
    startup_s: float
    gpu_speed: float
    seed: int = 0

    @property
    def key(self) -> str:
        return f"{Path(self.spec).stem}|{Path(self.trace).stem}|{self.startup_s:g}|{self.gpu_speed:g}|{self.seed}"


def split_key(key: str) -> tuple[str, int]:
    """A cell key (`Cell.key`) as (`spec|trace|start-up|gpu-speed`, seed)."""
    base, seed = key.rsplit("|", 1)
    return base, int(seed)


def grid(specs: list[str], traces: list[str], startups: tuple[float, ...] = STARTUPS_S,
         speeds: tuple[float, ...] = GPU_SPEEDS, seeds: tuple[int, ...] = (0,)) -> list[Cell]:  # fmt: skip
    """Most telling cells first: as-planned GPU and 120 s start-up, then the rest; seed 0 before other seeds."""
    cells = [Cell(s, t, up, speed, seed) for seed in seeds for speed in speeds for up in startups for s in specs
             for t in traces]  # fmt: skip
    return sorted(cells, key=lambda c: (c.seed, c.gpu_speed != 1.0, c.startup_s != 120.0, c.gpu_speed, c.startup_s))


def rate_scale(spec: str, trace: str) -> float:
    """The factor that makes the trace's busiest minute need PEAK_REPLICAS replicas of the spec's true capacity
    (at the trace's mean lengths, gpu-speed 1.0): every shape is then sized alike whatever its raw rates."""
    resource, plan = load_spec(spec)
    workload = load_workload(trace, seed=0)
    duration = workload.duration_s
    peak = max(workload.intensity(t) for t in _times(duration))
    count = max(len(workload.requests), 1)
    prompt = sum(r.prompt_tokens for r in workload.requests) / count
    output = sum(r.output_tokens for r in workload.requests) / count
    slo = resource.spec.slo.decode_latency
    assert slo is not None
    hardware = run.Scenario(resource, plan, workload, 0.0).hardware()
    capacity = capacity_cache.capacity_rps(
        hardware,
        references._rounded(prompt),
        references._rounded(output),
        float(slo.target_ms),
        float(slo.percentile),
        run.Scenario(resource, plan, workload, 0.0).ttft_bound_s,
    )
    return PEAK_REPLICAS * capacity / peak if peak > 0 else 1.0


def _times(duration: float, step: float = 30.0) -> list[float]:
    return [i * step for i in range(max(int(duration // step), 1))]


def replay_cell(cell: Cell, scale: float, extras: bool) -> dict[str, Any]:
    """Every policy of the cell, plus the frontier; JSON-safe."""
    resource, plan = load_spec(cell.spec)
    workload = load_workload(cell.trace, seed=cell.seed, rate_scale=scale)
    scenario = run.Scenario(resource, plan, workload, cell.startup_s, gpu_speed=cell.gpu_speed, seed=cell.seed)
    rows = [run.run(scenario, policy).to_json() for policy in CORE_POLICIES]
    if extras:
        rows += [run.run(scenario, policy).to_json() for policy in EXTRA_POLICIES]
        for fraction in EXTRA_FRACTIONS:
            for policy in ("hpa-rps", "keda-running"):
                shifted = run.Scenario(resource, plan, workload, cell.startup_s, gpu_speed=cell.gpu_speed,
                                       seed=cell.seed, baseline_target=fraction)  # fmt: skip
                row = run.run(shifted, policy).to_json()
                row["policy"] = f"{policy}@{fraction:g}"
                rows.append(row)
    return {
        "key": cell.key,
        "spec": Path(cell.spec).stem,
        "trace": Path(cell.trace).stem,
        "startup_s": cell.startup_s,
        "gpu_speed": cell.gpu_speed,
        "seed": cell.seed,
        "rate_scale": scale,  # exact: a replay at a rounded factor draws other arrivals
        "requests": len(workload.requests),
        "physics": capacity_cache.cache_path().stem,
        "rows": rows,
        "frontier": run.frontier(scenario),
    }


def replay_policy(
    cell: Cell, recorded: dict[str, Any], policy: str, overrides: tuple[tuple[str, str], ...] = ()
) -> dict[str, Any]:
    """`recorded` with `policy`'s row replayed again (the other rows and the frontier kept: same physics, same
    trace, same seed); refused when the physics changed since the cell was recorded. With `overrides` (llmop's
    settings changed, an ablation) the row is named `llmop key=value ...` and added beside llmop's own."""
    scenario, scale = recorded_scenario(cell, recorded, policy_overrides=overrides)
    row = run.run(scenario, policy).to_json()
    row["policy"] = " ".join([policy, *(f"{key}={value}" for key, value in overrides)])
    rows = [r for r in recorded["rows"] if r["policy"] != row["policy"]] + [row]
    return {**recorded, "rate_scale": scale, "rows": rows}


def replay_late(cell: Cell, recorded: dict[str, Any], late_s: float) -> dict[str, Any]:
    """`recorded` with the late reactive family (true capacity, the load seen `late_s` late: ten points) added
    under `late_frontiers[str(late_s)]`: what the frontier would be for a controller that reads Prometheus."""
    scenario, scale = recorded_scenario(cell, recorded, late_s=late_s)
    late = {**recorded.get("late_frontiers", {}), f"{late_s:g}": run.frontier(scenario, "reactive-late")}
    return {**recorded, "rate_scale": scale, "late_frontiers": late}


def recorded_scenario(cell: Cell, recorded: dict[str, Any], **settings: Any) -> tuple[run.Scenario, float]:
    """The scenario `recorded` was replayed on (same physics, same arrivals), with `settings`, and its exact rate
    factor; refused when the physics or the workload changed since."""
    physics = capacity_cache.cache_path().stem
    if recorded.get("physics") != physics:
        raise ValueError(f"{cell.key}: recorded under physics {recorded.get('physics')}, now {physics}; replay it all")
    resource, plan = load_spec(cell.spec)
    scale = recorded_scale(cell, recorded)
    workload = load_workload(cell.trace, seed=cell.seed, rate_scale=scale)
    if len(workload.requests) != recorded["requests"]:
        count, before = len(workload.requests), recorded["requests"]
        raise ValueError(f"{cell.key}: the workload has {count} requests now, {before} when recorded; replay it all")
    scenario = run.Scenario(resource, plan, workload, cell.startup_s, gpu_speed=cell.gpu_speed, seed=cell.seed,
                            **settings)  # fmt: skip
    return scenario, scale


def recorded_scale(cell: Cell, recorded: dict[str, Any]) -> float:
    """The exact rate factor `recorded` was replayed at: cells written before it was kept exact hold it rounded to
    4 digits, so it is measured again (`rate_scale`) and must round to the figure on file."""
    scale = rate_scale(cell.spec, cell.trace)
    if round(scale, 4) != round(float(recorded["rate_scale"]), 4):
        raise ValueError(f"{cell.key}: rate factor {scale:.6g} now, {recorded['rate_scale']} recorded; replay it all")
    return scale


def dominates(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """`a` is better on one axis and no worse on the other (0.5 SLO-minute point, 2 % GPU-hours slack)."""
    slo_not_worse = a["slo_minutes_pct"] >= b["slo_minutes_pct"] - SLO_SLACK_PT
    gpu_not_worse = a["gpu_hours"] <= b["gpu_hours"] * (1 + GPU_SLACK)
    better = a["slo_minutes_pct"] > b["slo_minutes_pct"] or a["gpu_hours"] < b["gpu_hours"]
    return slo_not_worse and gpu_not_worse and better


def verdicts(cells: list[dict[str, Any]], pick: Pick | None = None) -> dict[str, Any]:
    """The three targets of the policy issue, with every cell that misses, for llmop (or the row `pick` takes from
    each cell: a reference's, in `reach`; cells where it gives none are left out)."""
    take: Pick = pick or (lambda cell: row(cell, "llmop"))
    judged = [(cell, measured) for cell in cells if (measured := take(cell)) is not None]
    frontier_misses, pairs, dominated, misses = [], 0, 0, []
    for cell, measured in judged:
        best = references.frontier(cell["frontier"], measured["gpu_hours"])
        if best is not None and measured["slo_minutes_pct"] < best - FRONTIER_SLACK_PT:
            frontier_misses.append(
                {"key": cell["key"], "llmop": measured["slo_minutes_pct"], "frontier": round(best, 2)}
            )
        for baseline in BASELINES:
            pairs += 1
            if dominates(measured, row(cell, baseline)):
                dominated += 1
            else:
                misses.append(f"{cell['key']} vs {baseline}")
    by_key = {(c["spec"], c["trace"], c["startup_s"], c["gpu_speed"]): (c, m) for c, m in judged}
    slow_losses = []
    for (spec, trace, startup, speed), (cell, measured) in by_key.items():
        planned = by_key.get((spec, trace, startup, 1.0))
        if speed != 0.8 or planned is None:
            continue
        loss = planned[1]["slo_minutes_pct"] - measured["slo_minutes_pct"]
        slow_losses.append({"key": cell["key"], "loss_pt": round(loss, 2), **references_loss(planned[0], cell)})
    return {
        "cells": len(judged),
        "frontier": {"met": len(judged) - len(frontier_misses), "misses": frontier_misses},
        "baselines": {
            "pairs": pairs,
            "dominated": dominated,
            "pct": round(100 * dominated / max(pairs, 1), 1),
            "not_dominated": misses,
        },
        "gpu_speed_0_8": {
            "compared": len(slow_losses),
            "within_3pt": sum(s["loss_pt"] <= 3 for s in slow_losses),
            "losses": [s for s in slow_losses if s["loss_pt"] > 3],
            "oracle_loses_too": sum(s["loss_pt"] > 3 and (s["oracle_loss_pt"] or 0.0) > 3 for s in slow_losses),
        },
    }


def references_loss(planned: dict[str, Any], slower: dict[str, Any]) -> dict[str, float | None]:
    """What the slower GPU costs the references of a cell: the clairvoyant oracle (None without its row) and the
    frontier's best point (its most SLO-minutes at any cost): a loss they share is the GPU's, not the policy's."""
    oracles = [next((r for r in c["rows"] if r["policy"] == "oracle"), None) for c in (planned, slower)]
    best = [max(point["slo_minutes_pct"] for point in c["frontier"]) for c in (planned, slower)]
    oracle_loss = None
    if oracles[0] is not None and oracles[1] is not None:
        oracle_loss = round(oracles[0]["slo_minutes_pct"] - oracles[1]["slo_minutes_pct"], 2)
    return {"oracle_loss_pt": oracle_loss, "frontier_best_loss_pt": round(best[0] - best[1], 2)}


def row(cell: dict[str, Any], policy: str) -> dict[str, Any]:
    return next(row for row in cell["rows"] if row["policy"] == policy)


def read_cells(path: Path, replayed_only: bool = True) -> list[dict[str, Any]]:
    """Cells already written (JSON lines), the last one of each key winning; without the infeasible and failed
    ones unless `replayed_only` is False."""
    if not path.exists():
        return []
    cells: dict[str, dict[str, Any]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            cell = json.loads(line)
            cells[cell["key"]] = cell
    return [c for c in cells.values() if not replayed_only or "rows" in c]


def frontier_gap(cell: dict[str, Any], policy: str) -> float | None:
    """SLO-minute points above (+) or below (-) the frontier at the policy's own GPU-hours."""
    measured = row(cell, policy)
    best = references.frontier(cell["frontier"], measured["gpu_hours"])
    return None if best is None else measured["slo_minutes_pct"] - best


def mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else math.nan
