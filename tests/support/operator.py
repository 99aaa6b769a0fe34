"""Run the real operator (`llmop run`) as a subprocess against the local control plane, and wait helpers."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from llmop.api.spec import GROUP, PLURAL, VERSION
from llmop_dev.processes import free_port, stop_process

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def wait_for(probe: Callable[[], T | None], timeout: float = 60.0, interval: float = 0.5, what: str = "") -> T:
    """Poll until `probe` returns something truthy; fail with the last value after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what or probe}: last={last!r}")


@dataclass
class OperatorProcess:
    """One `llmop run` process with its own log file and metrics port on 127.0.0.1."""

    kubeconfig: Path
    log_path: Path
    namespaces: tuple[str, ...] = ()
    leader_elect: bool = False
    lease_namespace: str = "default"
    lease_name: str = "llmop-operator"
    prometheus_url: str | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    metrics_port: int = field(default_factory=free_port)
    health_port: int = 0  # 0: no /healthz and /readyz
    entry: str = "llmop.cli"  # module run with -m; support.wedgeable lets SIGUSR1 wedge the event loop
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> OperatorProcess:
        argv = [
            sys.executable,
            "-m",
            self.entry,
            "run",
            "--metrics-port",
            str(self.metrics_port),
            "--metrics-address",
            "127.0.0.1",
            "--health-port",
            str(self.health_port),
            "--health-address",
            "127.0.0.1",
            "--autoscale-interval",
            "2",
        ]
        for ns in self.namespaces:
            argv += ["-n", ns]
        if self.leader_elect:
            argv += ["--lease-namespace", self.lease_namespace, "--lease-name", self.lease_name]
        else:
            argv.append("--no-leader-elect")
        if self.prometheus_url:
            argv += ["--prometheus-url", self.prometheus_url]
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig), "LLMOP_RESYNC_SECONDS": "2", **self.extra_env}
        if self.entry != "llmop.cli":
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "tests"), env.get("PYTHONPATH")]))
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, kill: bool = False) -> None:
        stop_process(self.process, kill)

    def restart(self) -> OperatorProcess:
        self.stop()
        return self.start()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def llmd_api(kube: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(kube)


def get_llmd(kube: client.ApiClient, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        return llmd_api(kube).get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    except ApiException as error:
        if error.status == 404:
            return None
        raise


def condition(body: dict[str, Any] | None, type_: str) -> dict[str, Any] | None:
    if not body:
        return None
    return next((c for c in (body.get("status") or {}).get("conditions") or [] if c.get("type") == type_), None)


def events_for(kube: client.ApiClient, namespace: str, name: str) -> list[dict[str, Any]]:
    items = client.CoreV1Api(kube).list_namespaced_event(namespace).items
    return [
        {"type": e.type, "reason": e.reason, "message": e.message}
        for e in items
        if e.involved_object.kind == "LLMDeployment" and e.involved_object.name == name
    ]


@pytest.fixture
def operator(control_plane: Any, namespace: str, tmp_path: Path) -> Iterator[OperatorProcess]:
    """The operator watching only this test's namespace."""
    proc = OperatorProcess(control_plane.kubeconfig, tmp_path / "operator.log", namespaces=(namespace,)).start()
    try:
        yield proc
    finally:
        proc.stop()
        if os.environ.get("LLMOP_SHOW_OPERATOR_LOG"):
            print(proc.log())


def kubectl(control_plane: Any, *args: str, input_text: str | None = None, check: bool = True) -> str:
    """Run the control plane's kubectl with its admin kubeconfig; return stdout (stderr on failure)."""
    argv = [str(control_plane.binaries.kubectl), "--kubeconfig", str(control_plane.kubeconfig), *args]
    result = subprocess.run(argv, input=input_text, capture_output=True, text=True, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed: {result.stderr}")
    return result.stdout if result.returncode == 0 else result.stderr


@pytest.fixture(scope="session")
def crd(control_plane: Any) -> str:
    """The generated CRD applied with kubectl and Established."""
    kubectl(control_plane, "apply", "--server-side", "-f", str(ROOT / "crds"))
    kubectl(control_plane, "wait", "--for=condition=Established", "--timeout=60s", f"crd/{PLURAL}.{GROUP}")
    return f"{PLURAL}.{GROUP}"
