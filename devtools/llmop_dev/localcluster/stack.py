"""The local closed loop around a control plane: CRD, fleet simulator, Prometheus and the operator, on 127.0.0.1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from llmop.api.crd import crd
from llmop_dev.localcluster.controlplane import ControlPlane
from llmop_dev.localcluster.prometheus import Prometheus
from llmop_dev.processes import free_port, stop_process

REPO_ROOT = Path(__file__).resolve().parents[3]
RULES_FILE = REPO_ROOT / "charts/llmop/files/prometheus-rules.yaml"


def install_crd(api_client: client.ApiClient, timeout: float = 60.0) -> None:
    """Create or update the generated CRD and wait until it is Established."""
    api = client.ApiextensionsV1Api(api_client)
    body = crd()
    name = body["metadata"]["name"]
    try:
        api.create_custom_resource_definition(body)
    except ApiException as error:
        if error.status != 409:
            raise
        api.patch_custom_resource_definition(
            name, body, field_manager="llmop-dev", force=True, _content_type="application/apply-patch+yaml"
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        conditions = api.read_custom_resource_definition(name).status.conditions or []
        if any(c.type == "Established" and c.status == "True" for c in conditions):
            return
        time.sleep(0.2)
    raise TimeoutError(f"CRD {name} not Established after {timeout:.0f} s")


@dataclass
class ManagedProcess:
    """A child process with a log file, stopped by pid."""

    name: str
    argv: list[str]
    log_path: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> ManagedProcess:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=REPO_ROOT)
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, kill: bool = False, timeout: float = 20.0) -> None:
        stop_process(self.process, kill, timeout)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@dataclass
class LocalStack:
    """Simulator + Prometheus + operator wired to one control plane; every address is 127.0.0.1."""

    control_plane: ControlPlane
    workdir: Path
    namespaces: tuple[str, ...] = ()
    sim_startup_seconds: float = 20.0
    scrape_interval_s: float = 2.0
    autoscale_interval_s: float = 5.0
    sim_port: int = field(default_factory=free_port)
    operator_metrics_port: int = field(default_factory=free_port)
    sim: ManagedProcess | None = None
    operator: ManagedProcess | None = None
    prometheus: Prometheus | None = None
    simulated: bool = True  # False: real engines serve the pods' metrics (set `prometheus` to scrape them)

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "KUBECONFIG": str(self.control_plane.kubeconfig)}

    @property
    def sim_url(self) -> str:
        return f"http://127.0.0.1:{self.sim_port}"

    def start(self) -> LocalStack:
        self.workdir.mkdir(parents=True, exist_ok=True)
        with self.control_plane.api_client() as api_client:
            install_crd(api_client)
        if self.simulated:
            self.start_sim()
        self.start_prometheus()
        self.start_operator()
        return self

    def start_sim(self) -> None:
        argv = [sys.executable, "-m", "llmop.cli", "sim", "serve", "--port", str(self.sim_port),
                "--kubeconfig", str(self.control_plane.kubeconfig),
                "--startup-seconds", f"{self.sim_startup_seconds:g}"]  # fmt: skip
        self.sim = ManagedProcess("sim", argv, self.workdir / "sim.log", self.env).start()
        self._wait_http(f"{self.sim_url}/health", "simulator", self.sim)

    def start_prometheus(self) -> None:
        if self.prometheus is None:
            rules = (RULES_FILE,) if RULES_FILE.exists() else ()
            self.prometheus = Prometheus(
                self.workdir / "prometheus",
                [f"127.0.0.1:{self.sim_port}"],
                self.scrape_interval_s,
                operator_targets=[f"127.0.0.1:{self.operator_metrics_port}"],
                rule_files=rules,
            )
        self.prometheus.start()

    def start_operator(self) -> None:
        assert self.prometheus is not None
        # --allow-custom-probe-endpoints: the simulator serves each engine on 127.0.0.1, not behind its Service
        argv = [sys.executable, "-m", "llmop.cli", "run", "--prometheus-url", self.prometheus.url,
                "--metrics-port", str(self.operator_metrics_port), "--metrics-address", "127.0.0.1",
                "--health-port", "0", "--autoscale-interval", f"{self.autoscale_interval_s:g}",
                "--no-leader-elect", "--allow-custom-probe-endpoints"]  # fmt: skip
        for namespace in self.namespaces:
            argv += ["-n", namespace]
        self.operator = ManagedProcess("operator", argv, self.workdir / "operator.log", self.env).start()
        self._wait_http(f"http://127.0.0.1:{self.operator_metrics_port}/metrics", "operator", self.operator)

    def set_load(self, namespace: str, name: str, rps: float, output_tokens: float | None = None) -> bool:
        body: dict[str, Any] = {"namespace": namespace, "name": name, "rps": rps}
        if output_tokens is not None:
            body["meanOutputTokens"] = output_tokens
        request = urllib.request.Request(
            f"{self.sim_url}/control/load", json.dumps(body).encode(), {"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status == 200
        except OSError:
            return False

    def sim_state(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(f"{self.sim_url}/control/state", timeout=5) as response:
            payload = json.loads(response.read())
        return payload if isinstance(payload, list) else payload.get("deployments", [])

    def stop(self) -> None:
        for _, step in self.stop_steps():
            step()

    def stop_steps(self) -> list[tuple[str, Callable[[], None]]]:
        """What stop() does, one named step per process, so a caller can go on when one step fails."""
        steps: list[tuple[str, Callable[[], None]]] = []
        for part in (self.operator, self.sim):
            if part is not None:
                steps.append((part.name, part.stop))
        if self.prometheus is not None:
            steps.append(("prometheus", self.prometheus.stop))
        return steps

    @staticmethod
    def _wait_http(url: str, what: str, process: ManagedProcess, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not process.alive():
                raise RuntimeError(f"{what} exited: {process.log()[-2000:]}")
            try:
                with urllib.request.urlopen(url, timeout=1):
                    return
            except OSError:
                time.sleep(0.3)
        raise TimeoutError(f"{what} not serving {url} after {timeout:.0f} s; log: {process.log_path}")
