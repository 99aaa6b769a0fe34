"""`llmop demo`: a local control plane with GPU nodes, the operator, simulator, Prometheus and the examples."""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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


DEMO_DESCRIPTION = """\
Start a local control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok GPU nodes), the fleet
simulator, Prometheus and the operator, all on 127.0.0.1; apply examples/ into namespace demo; print
`kubectl get llmd` while one deployment's load steps up and down. Ctrl-C or SIGTERM stops every process it
started and removes its temporary directory (a --workdir you give is kept, with the logs)."""
DEMO_EXAMPLES = """\
examples:
  llmop demo                                  # until Ctrl-C
  llmop demo --duration 600 --interval 30     # ten minutes, a table every 30 s
  llmop demo --workdir /tmp/demo              # keep the logs and the kubeconfig afterwards"""


class Interrupted(Exception):
    """SIGINT or SIGTERM arrived: unwind from wherever the demo is (starting up included) into the teardown."""


@contextmanager
def stop_signals() -> Iterator[None]:
    """SIGINT/SIGTERM raise Interrupted in the main thread until the block ends; the previous handlers return."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise Interrupted(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextmanager
def signals_ignored() -> Iterator[None]:
    """A second Ctrl-C during the teardown must not cut it short (that is how processes were left behind)."""
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def teardown(steps: list[tuple[str, Callable[[], None]]]) -> list[str]:
    """Run every step even when one fails; the failures, named, for the last line."""
    failed: list[str] = []
    for name, step in steps:
        try:
            step()
        except Exception as error:  # one part that cannot stop must not leave the others running
            failed.append(f"{name}: {type(error).__name__}: {error}")
    return failed


def register(subparsers: Any) -> None:
    demo = subparsers.add_parser(
        "demo",
        help="run everything locally: cluster, operator, simulator, examples",
        description=DEMO_DESCRIPTION,
        epilog=DEMO_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
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
    temporary = args.workdir is None
    workdir = (args.workdir or Path(tempfile.mkdtemp(prefix="llmop-demo-"))).resolve()
    plane = ControlPlane(workdir / "cluster", binaries=binaries)
    stack: LocalStack | None = None
    stopped_by = "the end of --duration"
    failed: list[str] = []
    try:
        with stop_signals():
            print(f"starting the local control plane in {workdir} ...", flush=True)
            plane.start()
            print(f"control plane ready in {plane.startup_seconds:.1f} s: {plane.api_url}")
            stack = LocalStack(plane, workdir / "stack", sim_startup_seconds=20, autoscale_interval_s=5)
            stack.start()
            _run(args, binaries.kubectl, plane, stack)
    except Interrupted as signal_name:
        stopped_by = str(signal_name)
    finally:
        with signals_ignored():
            print(f"stopping ({stopped_by}) ...", flush=True)
            steps: list[tuple[str, Callable[[], None]]] = []
            if stack is not None:
                steps += stack.stop_steps()
            steps.append(("control plane", plane.stop))
            if temporary:
                steps.append(("temporary directory", lambda: shutil.rmtree(workdir)))
            failed = teardown(steps)
            print("stopped" + ("" if temporary else f"; logs kept in {workdir}"), flush=True)
            for line in failed:
                print(f"  could not stop {line}", flush=True)
    return 1 if failed else 0


def _run(args: argparse.Namespace, kubectl: Path, plane: ControlPlane, stack: LocalStack) -> None:
    """Apply the examples, then step the load and print the table until --duration (or a signal)."""
    with plane.api_client() as api_client:
        names = _apply_examples(api_client, args.examples)
    assert stack.prometheus is not None
    print(
        f"\napplied {len(names)} LLMDeployments in namespace {DEMO_NAMESPACE}\n"
        f"  export KUBECONFIG={plane.kubeconfig}\n"
        f"  kubectl get llmd -n {DEMO_NAMESPACE}     # kubectl: {kubectl}\n"
        f"  Prometheus: {stack.prometheus.url}   simulator: {stack.sim_url}/control/state\n"
        f"  logs: {stack.workdir}/operator.log\n"
        "Ctrl-C stops everything.\n",
        flush=True,
    )
    started = time.monotonic()
    next_print = 0.0
    while not args.duration or time.monotonic() - started < args.duration:
        note = _load_step(stack, names, started)
        if time.monotonic() >= next_print:
            table = subprocess.run(
                [str(kubectl), "--kubeconfig", str(plane.kubeconfig), "get", "llmd", "-n", DEMO_NAMESPACE],
                capture_output=True, text=True, timeout=30,
            )  # fmt: skip
            print(f"--- t={time.monotonic() - started:.0f}s  {note or ''}\n{table.stdout or table.stderr}",
                  flush=True)  # fmt: skip
            next_print = time.monotonic() + args.interval
        time.sleep(1)
