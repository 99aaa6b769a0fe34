"""`llmop demo`: a local control plane with GPU nodes, the operator, simulator, Prometheus and the examples."""

from __future__ import annotations

import argparse
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import FrameType
from typing import Any

import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from llmop.api.spec import GROUP, PLURAL, VERSION
from llmop_dev.localcluster.binaries import BinariesMissing, find_binaries
from llmop_dev.localcluster.controlplane import ControlPlane
from llmop_dev.localcluster.stack import REPO_ROOT, LocalStack

DEMO_NAMESPACE = "demo"
SCALING_EXAMPLE = "llama31-8b-fp8"


def register(subparsers: Any) -> None:
    demo = subparsers.add_parser("demo", help="run everything locally: cluster, operator, simulator, examples")
    demo.add_argument("--workdir", type=Path, help="where logs and the kubeconfig go (default: a temp dir)")
    demo.add_argument("--duration", type=float, default=0, help="stop after this many seconds (0: until Ctrl-C)")
    demo.add_argument("--interval", type=float, default=15, help="seconds between `kubectl get llmd` prints")
    demo.add_argument("--examples", type=Path, default=REPO_ROOT / "examples", help="folder of LLMDeployments")
    demo.set_defaults(func=cmd_demo)


def _apply_examples(api_client: client.ApiClient, folder: Path) -> list[str]:
    core = client.CoreV1Api(api_client)
    try:
        core.create_namespace({"metadata": {"name": DEMO_NAMESPACE}})
    except ApiException as error:
        if error.status != 409:
            raise
    custom = client.CustomObjectsApi(api_client)
    names = []
    for path in sorted(folder.glob("*.yaml")) + sorted((folder / "invalid").glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        try:
            custom.create_namespaced_custom_object(GROUP, VERSION, DEMO_NAMESPACE, PLURAL, doc)
            names.append(doc["metadata"]["name"])
        except ApiException as error:
            print(f"  {path.name}: refused at admission: {error.reason}")
    return names


def _load_step(stack: LocalStack, names: list[str], started: float) -> str | None:
    """A light load on every deployment, and a step on one so the demo shows a scale-out and a scale-in."""
    elapsed = time.monotonic() - started
    for name in names:
        if name != SCALING_EXAMPLE:
            stack.set_load(DEMO_NAMESPACE, name, 1.0, 200.0)
    rps = 4.0 if elapsed < 60 or elapsed > 300 else 70.0
    if stack.set_load(DEMO_NAMESPACE, SCALING_EXAMPLE, rps, 200.0):
        return f"load on {SCALING_EXAMPLE}: {rps:g} req/s x 200 tokens (1 req/s on the others)"
    return None


def cmd_demo(args: argparse.Namespace) -> int:
    try:
        binaries = find_binaries(build_missing=True)
    except BinariesMissing as error:
        print(f"error: {error}")
        return 2
    workdir = (args.workdir or Path(tempfile.mkdtemp(prefix="llmop-demo-"))).resolve()
    stopping = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print(f"starting the local control plane in {workdir} ...", flush=True)
    plane = ControlPlane(workdir / "cluster", binaries=binaries)
    stack: LocalStack | None = None
    try:
        plane.start()
        print(f"control plane ready in {plane.startup_seconds:.1f} s: {plane.api_url}")
        stack = LocalStack(plane, workdir / "stack", sim_startup_seconds=20, autoscale_interval_s=5)
        stack.start()
        with plane.api_client() as api_client:
            names = _apply_examples(api_client, args.examples)
        assert stack.prometheus is not None
        print(
            f"\napplied {len(names)} LLMDeployments in namespace {DEMO_NAMESPACE}\n"
            f"  export KUBECONFIG={plane.kubeconfig}\n"
            f"  kubectl get llmd -n {DEMO_NAMESPACE}     # kubectl: {binaries.kubectl}\n"
            f"  Prometheus: {stack.prometheus.url}   simulator: {stack.sim_url}/control/state\n"
            f"  logs: {stack.workdir}/operator.log\n"
            "Ctrl-C stops everything.\n",
            flush=True,
        )
        started = time.monotonic()
        next_print = 0.0
        while not stopping and (not args.duration or time.monotonic() - started < args.duration):
            note = _load_step(stack, names, started)
            if time.monotonic() >= next_print:
                table = subprocess.run(
                    [str(binaries.kubectl), "--kubeconfig", str(plane.kubeconfig), "get", "llmd", "-n",
                     DEMO_NAMESPACE], capture_output=True, text=True, timeout=30,
                )  # fmt: skip
                print(f"--- t={time.monotonic() - started:.0f}s  {note or ''}\n{table.stdout or table.stderr}",
                      flush=True)  # fmt: skip
                next_print = time.monotonic() + args.interval
            time.sleep(1)
    finally:
        print("stopping ...", flush=True)
        if stack is not None:
            stack.stop()
        plane.stop()
    return 0
