"""Autoscaling benchmark on the independent simulator: the grid of specs x traces x start-up x gpu-speed.

`python bench/autoscale.py --suite` replays every cell (llmop, the competent baselines, the perfect-knowledge
reactive frontier and the clairvoyant oracle), appending each finished cell to bench/results/autoscale-cells.jsonl
(a rerun resumes), then writes autoscale.json, autoscale.md and one PNG per spec, and prints the three verdicts.
`--quick` runs the start-up 120 s cells at gpu-speed 1.0 and 0.8 only. `--seeds 0,1,2` also replays the cells at
other arrival seeds: the verdicts stay those of seed 0, and the report adds how far each cell moves with the seed
alone (the noise floor of a 1-point verdict). `--late 30` replays, in the cells on file, the reactive family that
knows the true capacity but sees the load 30 s late (what reading it from Prometheus costs at best); the report gives
the three verdicts for every reference too, so a target no reference reaches is known for one.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from llmop_dev.replay import reach, seed_noise, suite
from llmop_dev.replay.suite_report import headline, markdown, plot, update_benchmarks

HERE = Path(__file__).resolve().parent


def _cell(cell: suite.Cell, scale: float) -> dict[str, Any]:
    if scale <= 0:  # no load at all meets the SLO on this trace: nothing for an autoscaler to do
        return {"key": cell.key, "infeasible": True, "reason": "the SLO cannot be met at any rate on this trace"}
    extras = cell.startup_s == 120.0 and cell.gpu_speed == 1.0 and cell.seed == 0
    try:
        return suite.replay_cell(cell, scale, extras)
    except Exception as error:  # one broken cell must not lose the others
        return {"key": cell.key, "error": f"{type(error).__name__}: {error}"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", action="store_true", help="the whole grid")
    parser.add_argument("--quick", action="store_true", help="start-up 120 s, gpu-speed 1.0 and 0.8")
    parser.add_argument("--report", action="store_true", help="only rewrite the report from the cells on file")
    parser.add_argument("--speed", action="store_true", help="time one replay of the 1-hour Azure conversation trace")
    parser.add_argument("--rerun", metavar="POLICY", help="replay only this policy in cells already on file")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="with --rerun llmop: an ablation, llmop with this PolicyConfig field changed")  # fmt: skip
    parser.add_argument("--late", type=float, metavar="SECONDS",
                        help="replay the reactive family that sees the load SECONDS late, cells on file")  # fmt: skip
    parser.add_argument("--speeds", help="with --quick: only these gpu-speeds (comma-separated, e.g. 1.0)")
    parser.add_argument("--seeds", default="0", help="arrival seeds (comma-separated); verdicts use seed 0")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    parser.add_argument("--spec", action="append", help="LLMDeployment YAML (default: bench/specs/*.yaml)")
    parser.add_argument("--trace", action="append", help="trace CSV (default: bench/traces/*.csv)")
    parser.add_argument("--out", default=str(HERE / "results"))
    args = parser.parse_args(argv)
    specs = args.spec or sorted(str(p) for p in (HERE / "specs").glob("*.yaml"))
    traces = args.trace or sorted(str(p) for p in (HERE / "traces").glob("*.csv"))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cells_file = out / "autoscale-cells.jsonl"
    if args.speed:
        print(json.dumps(_speed(out), indent=2))
        return 0
    seeds = tuple(int(v) for v in args.seeds.split(","))
    if not args.report:
        if args.quick:
            speeds = tuple(float(v) for v in args.speeds.split(",")) if args.speeds else (1.0, 0.8)
            cells = suite.grid(specs, traces, startups=(120.0,), speeds=speeds, seeds=seeds)
        elif args.suite:
            cells = suite.grid(specs, traces, seeds=seeds)
        else:
            parser.error("choose --suite, --quick or --report")
        if args.rerun:
            overrides = tuple(tuple(item.split("=", 1)) for item in args.set)
            _rerun(cells, cells_file, args.jobs, suite.replay_policy, args.rerun, overrides)
        elif args.late is not None:
            _rerun(cells, cells_file, args.jobs, suite.replay_late, args.late)
        else:
            _run(cells, cells_file, args.jobs)
    replayed = suite.read_cells(cells_file)
    done = [c for c in replayed if _seed(c) == 0]
    noise = seed_noise.spreads(replayed)
    skipped = [c for c in suite.read_cells(cells_file, replayed_only=False) if "rows" not in c and _seed(c) == 0]
    if not done:
        print("no cells on file", file=sys.stderr)
        return 1
    summary = {"verdicts": suite.verdicts(done), "reach": reach.reach(done), "cells": len(done),
               "peak_replicas": suite.PEAK_REPLICAS, "skipped": skipped,
               "seed_noise": seed_noise.summary(noise)}  # fmt: skip
    (out / "autoscale.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    text = markdown(done, summary["verdicts"], skipped, summary["reach"])
    noise_lines = seed_noise.lines(noise)
    if noise_lines:
        text += "\n## Seed noise\n\n" + "\n".join(noise_lines) + "\n"
    (out / "autoscale.md").write_text(text, encoding="utf-8")
    if out.resolve() == (HERE / "results").resolve():  # a scratch --out leaves the published report alone
        published = headline(done, summary["verdicts"], skipped, summary["reach"])
        if noise_lines:
            published += "\nSeed noise: " + noise_lines[0] + "\n"
        update_benchmarks(HERE.parent / "BENCHMARKS.md", published)
    for spec in sorted({c["spec"] for c in done}):
        plot([c for c in done if c["spec"] == spec], out / f"autoscale-{spec}.png", spec)
    print(json.dumps(summary["verdicts"], indent=2)[:4000])
    return 0


def _seed(cell: dict[str, Any]) -> int:
    """The arrival seed of a cell on file (from its key: infeasible cells carry only the key)."""
    return suite.split_key(cell["key"])[1]


def _speed(out: Path) -> dict[str, Any]:
    """CPU seconds of single replays (one process, capacities already measured) of the Azure conversation trace
    (19,366 requests in 58 minutes) on the 8B-on-L40S spec, per policy; written to replay-speed.json."""
    from llmop_dev.replay import run
    from llmop_dev.replay.traces import load_workload
    from llmop_dev.specs import load_spec

    resource, plan = load_spec(str(HERE / "specs" / "llama31-8b-fp8-l40s-vllm.yaml"))
    workload = load_workload(HERE / "traces" / "azure-conv-2023.csv")
    scenario = run.Scenario(resource, plan, workload, 120.0)
    run.run(scenario, "reactive")  # measures the true capacities once (cached on disk)
    figures: dict[str, Any] = {"trace": "azure-conv-2023", "requests": len(workload.requests),
                               "duration_s": workload.duration_s, "cpu_seconds": {}}  # fmt: skip
    for policy in ("llmop", "hpa", "keda", "reactive", "oracle"):
        started = time.process_time()
        run.run(scenario, policy)
        figures["cpu_seconds"][policy] = round(time.process_time() - started, 2)
    (out / "replay-speed.json").write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return figures


def _run(cells: list[suite.Cell], cells_file: Path, jobs: int) -> None:
    finished = {c["key"] for c in suite.read_cells(cells_file, replayed_only=False) if "error" not in c}
    todo = [cell for cell in cells if cell.key not in finished]
    print(f"{len(cells)} cells, {len(todo)} to replay with {jobs} processes", flush=True)
    scales: dict[tuple[str, str], float] = {}
    for cell in todo:
        if (cell.spec, cell.trace) not in scales:
            scales[(cell.spec, cell.trace)] = suite.rate_scale(cell.spec, cell.trace)
    started = time.monotonic()
    with ProcessPoolExecutor(max_workers=max(jobs, 1)) as pool:
        futures = {pool.submit(_cell, cell, scales[(cell.spec, cell.trace)]): cell for cell in todo}
        for count, future in enumerate(as_completed(futures), start=1):
            result = future.result()
            if "error" in result:
                print(f"cell {result['key']} failed: {result['error']}", flush=True)
            with cells_file.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(result) + "\n")
            took = time.monotonic() - started
            print(f"[{count}/{len(todo)} {took:.0f} s] {result['key']}", flush=True)


def _rerun(cells: list[suite.Cell], cells_file: Path, jobs: int, replay: Callable[..., dict[str, Any]],
           *settings: Any) -> None:  # fmt: skip
    """Replay one thing again in the recorded cells (`suite.replay_policy`: one policy after a change to it;
    `suite.replay_late`: the late reactive family), keeping the rest."""
    recorded = {c["key"]: c for c in suite.read_cells(cells_file)}
    todo = [cell for cell in cells if cell.key in recorded]
    print(f"{len(cells)} cells, {len(todo)} on file to replay {replay.__name__}{settings} in", flush=True)
    with ProcessPoolExecutor(max_workers=max(jobs, 1)) as pool:
        futures = [pool.submit(replay, cell, recorded[cell.key], *settings) for cell in todo]
        for future in as_completed(futures):
            with cells_file.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(future.result()) + "\n")


if __name__ == "__main__":
    sys.exit(main())
