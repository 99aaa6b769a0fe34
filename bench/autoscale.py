"""Autoscaling benchmark: the same traces through llmop, HPA, KEDA and two oracles; writes bench/results/."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

from llmop.plan.parse import parse_resource
from llmop.plan.planner import plan
from llmop.plan.types import Plan
from llmop.sim import replay, traces

HERE = Path(__file__).resolve().parent
TRACES = {
    "steady": lambda: traces.steady(40.0),
    "step": lambda: traces.step(20.0, 90.0),
    "diurnal": lambda: traces.diurnal(10.0, 110.0),
    "bursty": lambda: traces.bursty(25.0, 3.0),
}


def write_traces() -> None:
    for name, make in TRACES.items():
        (HERE / "traces" / f"{name}.csv").write_text(make().to_csv(), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-f", "--file", default=str(HERE / "llmdeployment.yaml"))
    parser.add_argument("--startup-seconds", type=float, help="default: the plan's start-up estimate")
    parser.add_argument("--out", default=str(HERE / "results"))
    args = parser.parse_args(argv)
    write_traces()
    resource = parse_resource(yaml.safe_load(Path(args.file).read_text(encoding="utf-8")))
    result = plan(resource.spec, resource.name)  # type: ignore[union-attr]
    assert isinstance(result, Plan), result
    startup = float(args.startup_seconds or result.startup_seconds)
    rows = []
    for name in TRACES:
        trace = traces.load(HERE / "traces" / f"{name}.csv")
        setup = replay.Setup(resource, result, trace, startup)  # type: ignore[arg-type]
        for policy in replay.POLICIES:
            rows.append(replay.run(setup, policy).to_json())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"deployment": resource.name, "startup_seconds": startup, "gpus_per_replica": result.tensor_parallel,  # type: ignore[union-attr]
            "slo_ms": result.slo_target_ms, "results": rows}  # fmt: skip
    (out / "autoscale.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    (out / "autoscale.md").write_text(markdown(meta), encoding="utf-8")
    print(markdown(meta))
    return 0


def markdown(meta: dict) -> str:
    lines = [
        "## Autoscaling benchmark",
        "",
        f"`python bench/autoscale.py` (deployment `{meta['deployment']}`, p95 TPOT SLO {meta['slo_ms']:g} ms, "
        f"start-up {meta['startup_seconds']:.0f} s, same simulator for every policy; figures from the simulator, "
        "not from GPUs). One row: `llmop simulate -f bench/llmdeployment.yaml --trace bench/traces/step.csv "
        "--policy llmop --json`.",
        "",
        "| trace | policy | SLO minutes % | GPU-hours | vs reactive oracle | scale events | step -> decision s | "
        "minutes queueing % |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    oracle = {r["trace"]: r for r in meta["results"] if r["policy"] == "reactive-oracle"}
    for r in meta["results"]:
        base = oracle[r["trace"]]
        ratio = r["gpu_hours"] / base["gpu_hours"] if base["gpu_hours"] else float("nan")
        step = "-" if r["step_to_decision_s"] is None else f"{r['step_to_decision_s']:.0f}"
        lines.append(
            f"| {r['trace']} | {r['policy']} | {r['slo_minutes_pct']:.1f} | {r['gpu_hours']:.2f} | "
            f"{r['slo_minutes_pct'] - base['slo_minutes_pct']:+.1f} pt, {ratio:.2f}x | {r['scale_events']} | {step} | "
            f"{r['queued_minutes_pct']:.1f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
