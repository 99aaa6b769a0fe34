"""`llmop dev up|down|status`: the local control plane with a fake GPU fleet, for trying the operator."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kubernetes import client

from llmop_dev.localcluster.binaries import BinariesMissing, find_binaries
from llmop_dev.localcluster.controlplane import ControlPlane, ControlPlaneError
from llmop_dev.localcluster.nodes import DEFAULT_FLEET, KWOK_TYPE_LABEL, KWOK_TYPE_VALUE, node_is_ready
from llmop_dev.localcluster.pki import PKIError

DEFAULT_WORKDIR = Path("~/.local/state/llmop/dev")


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _export(plane: ControlPlane) -> None:
    print(f"export KUBECONFIG={plane.kubeconfig}")
    print(f"# kubectl get nodes -L nvidia.com/gpu.product; stop with: llmop dev down --workdir {plane.workdir}")


def cmd_up(args: argparse.Namespace) -> int:
    """Start the control plane detached (it outlives this command) and print the KUBECONFIG export."""
    workdir = Path(args.workdir).expanduser().resolve()
    existing = ControlPlane.load(workdir)
    if existing.running():
        _say(f"llmop dev: already running from {workdir} ({existing.api_url})")
        _export(existing)
        return 0
    if existing.components:
        _say("llmop dev: stopping the leftovers of a previous control plane")
        existing.stop()
    try:
        binaries = find_binaries(build_missing=args.build)
    except BinariesMissing as error:
        _say(f"llmop dev: {error}")
        return 2
    plane = ControlPlane(
        workdir,
        binaries=binaries,
        fleet=DEFAULT_FLEET,
        pod_ready_delay_seconds=args.pod_ready_delay,
        detach=True,
        timeout=args.timeout,
    )
    nodes = sum(pool.nodes for pool in DEFAULT_FLEET)
    _say(f"llmop dev: starting etcd, kube-apiserver, controller-manager, scheduler, kwok ({nodes} nodes) ...")
    try:
        plane.start()
    except (ControlPlaneError, PKIError) as error:
        _say(f"llmop dev: start failed: {error}")
        return 1
    _say(f"llmop dev: ready in {plane.startup_seconds:.1f} s at {plane.api_url}; logs in {workdir}")
    _export(plane)
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    """Stop the control plane recorded in <workdir>/state.json; a no-op when none is running."""
    plane = ControlPlane.load(Path(args.workdir))
    if not plane.components:
        _say(f"llmop dev: nothing running from {plane.workdir}")
        return 0
    plane.stop()
    _say(f"llmop dev: stopped ({plane.workdir})")
    return 0


def _node_summary(plane: ControlPlane) -> str:
    with plane.api_client() as api_client:
        api_client.configuration.retries = 0
        nodes = client.CoreV1Api(api_client).list_node(
            label_selector=f"{KWOK_TYPE_LABEL}={KWOK_TYPE_VALUE}", _request_timeout=5
        )
    ready = sum(node_is_ready(node) for node in nodes.items)
    gpus = sum(int((node.status.allocatable or {}).get("nvidia.com/gpu", 0)) for node in nodes.items)
    return f"{ready}/{len(nodes.items)} kwok nodes Ready, {gpus} GPUs"


def cmd_status(args: argparse.Namespace) -> int:
    """Print each component's pid and liveness; exit 0 only when everything runs."""
    plane = ControlPlane.load(Path(args.workdir))
    if not plane.components:
        print(f"not running (no state in {plane.workdir})")
        return 1
    for component in plane.components:
        state = "running" if component.alive() else "DEAD"
        print(f"{component.name:<24} pid {component.pid:<8} {state:<8} {component.log}")
    if not plane.running():
        return 1
    try:
        summary = _node_summary(plane)
    except Exception as error:  # status must report, not crash
        print(f"apiserver {plane.api_url}: unreachable ({error})")
        return 1
    print(f"apiserver {plane.api_url}: {summary}")
    print(f"export KUBECONFIG={plane.kubeconfig}")
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `dev {up,down,status}` to the llmop CLI; each handler returns the exit code."""
    dev = subparsers.add_parser(
        "dev",
        help="local control plane (etcd, apiserver, kwok) with a fake GPU fleet",
        description="A local Kubernetes control plane on 127.0.0.1, like `kind create cluster`: etcd, kube-apiserver, "
        "controller-manager, scheduler and kwok nodes labelled like GPU Feature Discovery labels H100, H200, A100, "
        "L40S, L4, A10G and T4 machines. No operator, simulator or Prometheus (that is `llmop demo`).",
        epilog='examples:\n  eval "$(llmop dev up --build | grep ^export)"   # start, then use kubectl\n'
        "  llmop dev up --pod-ready-delay 30   # pods become Ready 30 s after scheduling (model loading)\n"
        "  llmop dev status\n  llmop dev down",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = dev.add_subparsers(dest="dev_command", required=True, metavar="{up,down,status}")
    up = commands.add_parser("up", help="start in the background and print `export KUBECONFIG=...`")
    down = commands.add_parser("down", help="stop what `up` started (idempotent)")
    status = commands.add_parser("status", help="show the components and the fleet")
    for parser in (up, down, status):
        parser.add_argument("--workdir", default=str(DEFAULT_WORKDIR), help="state, logs, PKI and kubeconfig")
    up.add_argument(
        "--pod-ready-delay",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="kwok marks scheduled pods Ready only after this delay (mimics model loading); default 0",
    )
    up.add_argument("--build", action="store_true", help="build the binaries first if they are missing")
    up.add_argument("--timeout", type=float, default=180.0, help="seconds allowed per readiness step")
    up.set_defaults(func=cmd_up)
    down.set_defaults(func=cmd_down)
    status.set_defaults(func=cmd_status)
