"""`llmop simulate`: replay a trace through a policy on the independent simulator and score it."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from llmop_dev.replay import run, score
from llmop_dev.replay.traces import TraceError, load_workload
from llmop_dev.specs import SpecFileError, load_spec


def load_scenario(args: argparse.Namespace) -> run.Scenario:
    resource, result = load_spec(args.file)
    workload = load_workload(args.trace, seed=args.seed, rate_scale=args.rate_scale, time_scale=args.time_scale)
    startup = float(result.startup_seconds if args.startup_seconds is None else args.startup_seconds)
    return run.Scenario(
        resource,
        result,
        workload,
        startup,
        gpu_speed=args.gpu_speed,
        seed=args.seed,
        router=args.router,
        ttft_bound_s=args.ttft_bound_ms / 1000.0,
        baseline_target=args.baseline_target,
    )


def cmd_simulate(args: argparse.Namespace) -> int:
    try:
        scenario = load_scenario(args)
        if args.policy == "reactive-frontier":
            payload: dict[str, Any] = {"points": run.frontier(scenario)}
            print(json.dumps(payload) if args.json else _frontier_text(payload["points"]))
            return 0
        outcome = run.run(scenario, args.policy)
    except (SpecFileError, TraceError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(outcome.to_json()))
        return 0
    data = outcome.to_json()
    print(f"{scenario.resource.name} under {args.policy} on {outcome.trace} ({data['minutes']} min, "
          f"start-up {scenario.startup_s:.0f} s, gpu-speed {scenario.gpu_speed:g}):")  # fmt: skip
    for key in ("slo_minutes_pct", "gpu_hours", "scale_events", "step_to_decision_s", "ttft_p95_s",
                "queue_minutes_pct", "timeouts"):  # fmt: skip
        print(f"  {key.ljust(20)} {'-' if data[key] is None else data[key]}")
    return 0


def _frontier_text(points: list[dict[str, Any]]) -> str:
    lines = ["headroom  hold_s  slo_minutes_pct  gpu_hours"]
    lines += [
        f"{p['headroom']:8g}  {p['hold_s']:6g}  {p['slo_minutes_pct']:15.1f}  {p['gpu_hours']:9.3f}" for p in points
    ]
    return "\n".join(lines)


def add_replay_arguments(parser: argparse.ArgumentParser) -> None:
    """The knobs every replay shares (also used by bench/autoscale.py)."""
    parser.add_argument("--startup-seconds", type=float, help="pod start-up delay (default: the plan's estimate)")
    parser.add_argument("--gpu-speed", type=float, default=1.0, help="the simulated GPU is F times as fast as planned")
    parser.add_argument("--seed", type=int, default=0, help="seed for arrivals, lengths, start-up jitter and noise")
    parser.add_argument("--rate-scale", type=float, default=1.0, help="multiply the trace's arrival rate")
    parser.add_argument("--time-scale", type=float, default=1.0, help="stretch the trace's time")
    parser.add_argument("--router", choices=("least-requests", "round-robin"), default="least-requests")
    parser.add_argument("--ttft-bound-ms", type=float, default=score.DEFAULT_TTFT_BOUND_S * 1000.0,
                        help="a minute is met only if its p95 time to first token is within this")  # fmt: skip
    parser.add_argument("--baseline-target", type=float, default=0.8,
                        help="baselines' target, a fraction of the plan's capacity per replica (0.6-0.9)")  # fmt: skip


def register(subparsers: Any) -> None:
    """Add `simulate` to the `llmop` command line."""
    p = subparsers.add_parser(
        "simulate",
        help="replay a load trace through an autoscaling policy on the independent simulator",
        description="Replay a trace (seconds,requests_per_second,mean_output_tokens; timestamp_s,prompt_tokens,"
        "output_tokens; or the Azure LLM inference trace 2023) through a policy and score it.",
        epilog="examples:\n  llmop simulate -f bench/llmdeployment.yaml --trace bench/traces/azure-conv-2023.csv "
        "--policy hpa --gpu-speed 0.8 --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("-f", "--file", required=True, help="LLMDeployment YAML")
    p.add_argument("--trace", required=True, help="trace CSV (three formats, detected from the header)")
    p.add_argument("--policy", choices=run.POLICIES, default="llmop")
    add_replay_arguments(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_simulate)
