"""The operator under benchmark: `llmop run` as a child process with its own ServiceAccount identity."""

from __future__ import annotations

import base64
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from kubernetes import client

from apiwatch import HOST
from llmop.controller.heap import PROCESS_ENV
from llmop_dev.localcluster.controlplane import ControlPlane
from llmop_dev.processes import free_port, stop_process

REPO_ROOT = Path(__file__).resolve().parent.parent
OPERATOR_SRC = REPO_ROOT / "operator"
OPERATOR_NAMESPACE = "llmop-system"
OPERATOR_SA = "llmop-operator"
OPERATOR_USER = f"system:serviceaccount:{OPERATOR_NAMESPACE}:{OPERATOR_SA}"


def _die_with_parent() -> None:
    """In the child between fork and exec: SIGTERM when the benchmark dies, so no operator outlives it."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG


def operator_kubeconfig(plane: ControlPlane, api_client: client.ApiClient, out: Path) -> Path:
    """A kubeconfig whose only credential is a token of llmop-system/llmop-operator (bound to cluster-admin)."""
    core, rbac = client.CoreV1Api(api_client), client.RbacAuthorizationV1Api(api_client)
    core.create_namespaced_service_account(OPERATOR_NAMESPACE, {"metadata": {"name": OPERATOR_SA}})
    rbac.create_cluster_role_binding(
        {
            "metadata": {"name": "llmop-bench-operator"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [{"kind": "ServiceAccount", "name": OPERATOR_SA, "namespace": OPERATOR_NAMESPACE}],
        }
    )
    request = core.create_namespaced_service_account_token(
        OPERATOR_SA, OPERATOR_NAMESPACE, {"spec": {"expirationSeconds": 6 * 3600}}
    )
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "bench",
                "cluster": {
                    "server": plane.api_url,
                    "certificate-authority-data": base64.b64encode(plane.pki.ca_cert.read_bytes()).decode(),
                },
            }
        ],
        "users": [{"name": OPERATOR_SA, "user": {"token": request.status.token}}],
        "contexts": [{"name": "bench", "context": {"cluster": "bench", "user": OPERATOR_SA}}],
        "current-context": "bench",
    }
    out.write_text(yaml.safe_dump(config, sort_keys=False))
    out.chmod(0o600)
    return out


@dataclass
class Operator:
    """`llmop run` as a child process; stopped by its own pid."""

    kubeconfig: Path
    log_path: Path
    interval_s: float
    leader_elect: bool = True
    resync_s: float = 300.0
    metrics_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> Operator:
        election = ["--lease-namespace", OPERATOR_NAMESPACE] if self.leader_elect else ["--no-leader-elect"]
        argv = [sys.executable, "-m", "llmop.cli", "run", *election, "--metrics-port",
                str(self.metrics_port), "--metrics-address", HOST, "--health-port", "0"]  # fmt: skip
        env = {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "PYTHONPATH": os.pathsep.join(p for p in (str(OPERATOR_SRC), os.environ.get("PYTHONPATH")) if p),
            **PROCESS_ENV,  # as the operator image runs it
            "LLMOP_AUTOSCALE_INTERVAL_SECONDS": f"{self.interval_s:g}",
            "LLMOP_RESYNC_SECONDS": f"{self.resync_s:g}",
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=REPO_ROOT,
                preexec_fn=_die_with_parent,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"operator exited: {self.log_tail()}")
            try:
                with socket.create_connection((HOST, self.metrics_port), timeout=1):
                    return self
            except OSError:
                time.sleep(0.3)
        raise TimeoutError(f"operator metrics port not open after 60 s: {self.log_tail()}")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def status(self) -> dict[str, int]:
        """Numeric fields of /proc/<pid>/status (sizes in kB)."""
        fields = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if value.split() and value.split()[0].isdigit():
                fields[key] = int(value.split()[0])
        return fields

    def rss_mb(self) -> tuple[float, float]:
        """(VmRSS, VmHWM) in MiB."""
        fields = self.status()
        return round(fields["VmRSS"] / 1024.0, 1), round(fields["VmHWM"] / 1024.0, 1)

    def passes(self) -> tuple[float, float]:
        """(reconcile passes, autoscaler decisions) so far, from the operator's own /metrics on 127.0.0.1."""
        url = f"http://{HOST}:{self.metrics_port}/metrics"
        direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through a proxy
        with direct.open(url, timeout=10) as response:
            text = response.read().decode()
        totals = {"llmop_reconcile_duration_seconds_count": 0.0, "llmop_scale_decisions_total": 0.0}
        for line in text.splitlines():
            name = line.split("{", 1)[0].split(" ", 1)[0]
            if name in totals:
                totals[name] += float(line.rsplit(" ", 1)[1])
        return totals["llmop_reconcile_duration_seconds_count"], totals["llmop_scale_decisions_total"]

    def cpu_seconds(self) -> float:
        parts = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def stop(self) -> None:
        stop_process(self.process)
