"""`llmop sim serve`, `llmop simulate` and `llmop probe`: the simulator and the active probe on the command line."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from typing import Any

from llmop_dev.replay.traces import TraceError, load_workload
from llmop_dev.specs import SpecFileError, load_spec


class _Fail(Exception):
    """A one-line error for stderr (exit code 2)."""


def _parse_load(values: list[str]) -> dict[tuple[str, str], tuple[float, float]]:
    loads: dict[tuple[str, str], tuple[float, float]] = {}
    for value in values:
        target, _, numbers = value.partition("=")
        namespace, _, name = target.partition("/")
        rps, _, tokens = numbers.partition(":")
        if not name or not rps:
            raise _Fail(f"--load {value!r}: expected NAMESPACE/NAME=RPS[:OUTPUT_TOKENS]")
        loads[(namespace, name)] = (float(rps), float(tokens or 256))
    return loads


def cmd_serve(args: argparse.Namespace) -> int:
    from llmop_dev.sim.server import Fleet, SimServer, StaticDeployment

    fleet = Fleet()
    try:
        loads = _parse_load(args.load or [])
        fleet.loads, fleet.default_load = loads, (args.rps, args.output_tokens)
        fleet.trace = load_workload(args.trace) if args.trace else None
        for path in args.file or []:
            resource, result = load_spec(path)
            rps, tokens = loads.get((resource.namespace, resource.name), (args.rps, args.output_tokens))
            fleet.add(StaticDeployment(resource.namespace, resource.name, result, args.replicas, rps, tokens,
                                       startup_seconds=args.startup_seconds))  # fmt: skip
            if fleet.trace is not None and (resource.namespace, resource.name) not in loads:
                fleet.set_trace(resource.namespace, resource.name, fleet.trace)
        server = SimServer(fleet, args.port)
    except (_Fail, SpecFileError, TraceError, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    sync: Any = None
    if not args.file:
        from llmop_dev.sim.cluster import ClusterSync

        sync = ClusterSync(fleet, args.kubeconfig, args.startup_seconds)
        sync.start()
    server.start()
    print(f"llmop sim serving {server.url}/metrics", flush=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        while not stopped.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    if sync is not None:
        sync.stop()
    server.stop()
    return 0


def cmd_probe(args: argparse.Namespace) -> int:
    from llmop.autoscale.probe import probe

    result = probe(args.endpoint, args.engine, args.max_tokens, args.model, args.timeout)
    if args.json:
        print(json.dumps(result.to_json()))
    elif result.error:
        print(f"probe {result.endpoint} ({result.engine}) failed: {result.error}", file=sys.stderr)
    else:
        tpot = "n/a" if result.tpot_ms is None else f"{result.tpot_ms:.1f} ms"
        ttft = "n/a" if result.ttft_ms is None else f"{result.ttft_ms:.1f} ms"
        print(f"{result.endpoint} ({result.engine}): TTFT {ttft}, TPOT {tpot} over {result.tokens} tokens")
    return 1 if result.error else 0


def register(subparsers: Any) -> None:
    """Add `sim` and `probe` to the `llmop` command line."""
    p_sim = subparsers.add_parser(
        "sim",
        help="the fleet simulator (vLLM/TGI /metrics on 127.0.0.1)",
        description="Serve vLLM- and TGI-format /metrics and streaming APIs for simulated engine pods on 127.0.0.1: "
        "the Ready pods of LLMDeployments in a cluster (cluster mode), or deployments from files (standalone).",
        epilog="examples:\n  llmop sim serve -f examples/llama31-8b-h100-fp8-vllm.yaml --replicas 2 --rps 5\n"
        "  llmop sim serve --kubeconfig $KUBECONFIG --load demo/llama31-8b-fp8=20:200",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sim_sub = p_sim.add_subparsers(dest="sim_command", required=True, metavar="COMMAND")
    p_serve = sim_sub.add_parser("serve", help="serve /metrics and streaming APIs for simulated pods")
    p_serve.add_argument("--port", type=int, default=9400)
    p_serve.add_argument("--kubeconfig", help="cluster mode (default when no -f): mirror Ready pods of LLMDeployments")
    p_serve.add_argument("-f", "--file", action="append", help="standalone mode: an LLMDeployment YAML (repeatable)")
    p_serve.add_argument("--replicas", type=int, default=1, help="standalone mode: pods per deployment")
    p_serve.add_argument(
        "--trace", help="trace file (any replay format) replayed in real time, looping, for every deployment"
    )
    p_serve.add_argument("--rps", type=float, default=0.0, help="constant load per deployment")
    p_serve.add_argument("--output-tokens", type=float, default=256.0)
    p_serve.add_argument("--load", action="append", help="NAMESPACE/NAME=RPS[:OUTPUT_TOKENS] (repeatable)")
    p_serve.add_argument("--startup-seconds", type=float, help="pod start-up delay (default: the plan's estimate)")
    p_serve.set_defaults(func=cmd_serve)

    p_probe = subparsers.add_parser(
        "probe",
        help="measure TTFT and per-token latency with a streaming request",
        description="Send one streaming generation to an engine (vLLM's OpenAI API or TGI's generate_stream) and "
        "print the time to first token and the mean time per output token, as the autoscaler's active probe does.",
        epilog="examples:\n  kubectl port-forward svc/llama31-8b-fp8 8000:8000 &\n"
        "  llmop probe --endpoint http://127.0.0.1:8000 --engine vllm --max-tokens 32 --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p_probe.add_argument("--endpoint", required=True, help="engine base URL, e.g. http://127.0.0.1:8000")
    p_probe.add_argument("--engine", choices=("vllm", "tgi"), required=True)
    p_probe.add_argument("--max-tokens", type=int, default=16)
    p_probe.add_argument("--model", help="vLLM model name (default: the first of /v1/models)")
    p_probe.add_argument("--timeout", type=float, default=30.0)
    p_probe.add_argument("--json", action="store_true")
    p_probe.set_defaults(func=cmd_probe)
