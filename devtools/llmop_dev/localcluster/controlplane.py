"""Local control plane on 127.0.0.1: etcd, kube-apiserver, controller-manager, scheduler and kwok."""

from __future__ import annotations

import base64
import contextlib
import ctypes
import json
import os
import shutil
import signal
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from llmop_dev.localcluster.binaries import Binaries, find_binaries
from llmop_dev.localcluster.nodes import (
    DEFAULT_FLEET,
    NodePool,
    apply_fleet,
    create_nodes,
    node_manifest,
    wait_nodes_ready,
)
from llmop_dev.localcluster.pki import PKI, create_pki
from llmop_dev.processes import free_ports

SERVICE_CIDR = "10.96.0.0/16"
POD_CIDR = "10.244.0.0/16"  # kwok's fake pod IPs; never connect to them
POD_READY_DELAY_ANNOTATION = "pod-ready.stage.kwok.x-k8s.io/delay"  # per-pod override, e.g. "30s"
STOP_GRACE_SECONDS = 10.0
# Beyond the defaults: OpenShift enables it, and it refuses blockOwnerDeletion on a child from a writer that may not
# update the owner's finalizers, so the chart's RBAC is tested under it.
ADMISSION_PLUGINS = ("OwnerReferencesPermissionEnforcement",)
# With ControlPlane(audit_log=True): every write (create/update/patch/delete) at Metadata level, nothing else.
AUDIT_POLICY: dict[str, Any] = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [
        {"level": "Metadata", "verbs": ["create", "update", "patch", "delete", "deletecollection"]},
        {"level": "None"},
    ],
}
_PR_SET_PDEATHSIG = 1


class ControlPlaneError(RuntimeError):
    """A component failed to start or become ready; the message names its log and quotes its tail."""


@dataclass
class Component:
    """One started process of the control plane."""

    name: str
    pid: int
    argv: list[str]
    log: str
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False, compare=False)

    def alive(self) -> bool:
        if self.process is not None:
            return self.process.poll() is None
        try:
            stat = Path(f"/proc/{self.pid}/stat").read_text()
            cmdline = Path(f"/proc/{self.pid}/cmdline").read_bytes().split(b"\0")[0].decode()
        except OSError:
            return False
        # a reused pid runs another binary; a zombie is already dead
        return cmdline == self.argv[0] and stat.rsplit(")", 1)[1].split()[0] != "Z"

    def paused(self) -> bool:
        """True while the process is stopped by a signal (SIGSTOP), as `pause` leaves it."""
        try:
            return Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "T"
        except OSError:
            return False

    def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds; only ever this component's own pid."""
        if not self.alive():
            return
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)
                os.kill(self.pid, signal.SIGCONT)  # a paused (SIGSTOP) process handles SIGTERM only once resumed
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                if not self.alive():
                    return
                time.sleep(0.05)


def log_tail(path: Path | str, lines: int = 30) -> str:
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def kwok_stages(default_stages: str, pod_ready_delay_seconds: float) -> str:
    """kwok's fast stages with pod-ready delayed by the given seconds (a per-pod annotation overrides it)."""
    stages = [doc for doc in yaml.safe_load_all(default_stages) if doc]
    for stage in stages:
        if stage["metadata"]["name"] == "pod-ready":
            stage["spec"]["delay"] = {
                "durationMilliseconds": round(pod_ready_delay_seconds * 1000),
                "durationFrom": {"expressionFrom": f'.metadata.annotations["{POD_READY_DELAY_ANNOTATION}"]'},
            }
    return yaml.safe_dump_all(stages, sort_keys=False)


def _die_with_parent() -> Callable[[], None]:
    libc = ctypes.CDLL(None, use_errno=True)
    parent = os.getpid()

    def preexec() -> None:  # runs in the child between fork and exec
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


def _get(url: str, context: ssl.SSLContext | None = None) -> int:
    """HTTP status of GET url (0 when unreachable), never through a proxy."""
    handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})]
    if context is not None:
        handlers.append(urllib.request.HTTPSHandler(context=context))
    try:
        with urllib.request.build_opener(*handlers).open(url, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code
    except (OSError, ssl.SSLError):
        return 0


@dataclass
class ControlPlane:
    """etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok with a fake GPU fleet."""

    workdir: Path
    binaries: Binaries | None = None
    fleet: Sequence[NodePool] = DEFAULT_FLEET
    pod_ready_delay_seconds: float = 0.0
    detach: bool = False  # True: processes outlive this Python process (`llmop dev up`)
    timeout: float = 120.0  # per readiness step
    audit_log: bool = False  # True: the API server logs every write request to `audit_log_path` (JSON lines)
    ports: dict[str, int] = field(default_factory=dict)
    components: list[Component] = field(default_factory=list)
    startup_seconds: float = 0.0

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "kubeconfig"

    @property
    def state_file(self) -> Path:
        return self.workdir / "state.json"

    @property
    def audit_log_path(self) -> Path:
        return self.workdir / "audit.log"

    @property
    def pki(self) -> PKI:
        return PKI(self.workdir / "pki")

    @property
    def api_url(self) -> str:
        return f"https://127.0.0.1:{self.ports['apiserver']}"

    def log(self, name: str) -> Path:
        return self.workdir / f"{name}.log"

    def api_client(self) -> client.ApiClient:
        return config.new_client_from_config(config_file=str(self.kubeconfig))

    def running(self) -> bool:
        return bool(self.components) and all(c.alive() for c in self.components)

    def __enter__(self) -> ControlPlane:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- lifecycle -------------------------------------------------------------------------------

    def start(self) -> ControlPlane:
        """Start every component in order and wait for each to be ready; stops them all on failure."""
        began = time.monotonic()
        self.workdir = self.workdir.expanduser().resolve()
        self.workdir.mkdir(parents=True, exist_ok=True)
        previous = ControlPlane.load(self.workdir)
        if previous.running():
            raise ControlPlaneError(f"a control plane is already running from {self.workdir}")
        previous.stop()  # leftovers of a crashed run, matched by pid and binary path
        self.binaries = self.binaries or find_binaries()
        for stale in ("etcd-data", "pki", "certs"):
            shutil.rmtree(self.workdir / stale, ignore_errors=True)
        create_pki(self.pki.directory)
        names = ("etcd", "etcd-peer", "apiserver", "controller-manager", "scheduler")
        self.ports = dict(zip(names, free_ports(len(names)), strict=True))
        self._write_configs()
        try:
            self._start_components()
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = round(time.monotonic() - began, 1)
        self.save()
        return self

    def _start_components(self) -> None:
        assert self.binaries is not None
        b, d, pki, p = self.binaries, self.workdir, self.pki, self.ports
        etcd = f"http://127.0.0.1:{p['etcd']}"
        peer = f"http://127.0.0.1:{p['etcd-peer']}"
        self._spawn("etcd", [
            str(b.etcd), "--name=llmop", f"--data-dir={d / 'etcd-data'}",
            f"--listen-client-urls={etcd}", f"--advertise-client-urls={etcd}",
            f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=llmop={peer}", "--unsafe-no-fsync=true", "--log-level=warn",
        ])  # fmt: skip
        self._wait("etcd", self._probe("etcd"))
        self._spawn("kube-apiserver", [
            str(b.kube_apiserver), f"--etcd-servers={etcd}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={p['apiserver']}",
            "--endpoint-reconciler-type=none", f"--cert-dir={d / 'certs'}",
            f"--tls-cert-file={pki.apiserver_cert}", f"--tls-private-key-file={pki.apiserver_key}",
            f"--client-ca-file={pki.ca_cert}", "--authorization-mode=Node,RBAC", "--allow-privileged=true",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki.sa_pub}", f"--service-account-signing-key-file={pki.sa_key}",
            f"--service-cluster-ip-range={SERVICE_CIDR}", "--profiling=false", "--v=1",
            f"--enable-admission-plugins={','.join(ADMISSION_PLUGINS)}",
            *self._audit_flags(),
        ])  # fmt: skip
        self._wait("kube-apiserver", self._probe("kube-apiserver"))
        kubeconfig = str(self.kubeconfig)
        delegated = [
            f"--authentication-kubeconfig={kubeconfig}", f"--authorization-kubeconfig={kubeconfig}",
            "--authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics", "--bind-address=127.0.0.1",
        ]  # fmt: skip
        self._spawn("kube-controller-manager", [
            str(b.kube_controller_manager), f"--kubeconfig={kubeconfig}", *delegated,
            f"--secure-port={p['controller-manager']}", f"--cert-dir={d / 'certs' / 'kcm'}",
            "--leader-elect=false", "--controllers=*", "--use-service-account-credentials=false",
            f"--root-ca-file={pki.ca_cert}", f"--service-account-private-key-file={pki.sa_key}",
            f"--cluster-signing-cert-file={pki.ca_cert}", f"--cluster-signing-key-file={pki.ca_key}",
            f"--service-cluster-ip-range={SERVICE_CIDR}", "--v=1",
        ])  # fmt: skip
        self._spawn("kube-scheduler", [
            str(b.kube_scheduler), f"--config={d / 'scheduler.yaml'}", *delegated,
            f"--secure-port={p['scheduler']}", f"--cert-dir={d / 'certs' / 'scheduler'}", "--v=1",
        ])  # fmt: skip
        for name in ("kube-controller-manager", "kube-scheduler"):
            self._wait(name, self._probe(name))
        # No --node-ip, --node-port or --server-address: kwok serves nothing and invents no reachable IPs.
        self._spawn("kwok", [
            str(b.kwok), f"--kubeconfig={kubeconfig}", f"--config={d / 'kwok-stages.yaml'}",
            "--manage-all-nodes=false", "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
            f"--cidr={POD_CIDR}", "--node-lease-duration-seconds=40",
        ])  # fmt: skip
        self._check(["kwok", "kube-controller-manager"], self._nodes_ready)
        self._check(["kube-controller-manager"], self._default_service_account)

    def _audit_flags(self) -> list[str]:
        if not self.audit_log:
            return []
        policy = self.workdir / "audit-policy.yaml"
        policy.write_text(yaml.safe_dump(AUDIT_POLICY, sort_keys=False))
        self.audit_log_path.unlink(missing_ok=True)
        return [f"--audit-policy-file={policy}", f"--audit-log-path={self.audit_log_path}"]

    def _probe(self, name: str) -> Callable[[], bool]:
        """The readiness check of one component (kwok: none beyond being alive)."""
        if name == "etcd":
            return lambda: _get(f"http://127.0.0.1:{self.ports['etcd']}/health") == 200
        if name == "kube-apiserver":
            api_context = ssl.create_default_context(cafile=str(self.pki.ca_cert))
            api_context.load_cert_chain(str(self.pki.admin_cert), str(self.pki.admin_key))
            return lambda: _get(f"{self.api_url}/readyz", api_context) == 200
        if name in ("kube-controller-manager", "kube-scheduler"):
            insecure = ssl.create_default_context()  # KCM and the scheduler serve self-signed certs
            insecure.check_hostname = False
            insecure.verify_mode = ssl.CERT_NONE
            url = f"https://127.0.0.1:{self.ports[name.removeprefix('kube-')]}/healthz"
            return lambda: _get(url, insecure) == 200
        return lambda: True

    def _spawn(self, name: str, argv: list[str], append: bool = False) -> Component:
        log = self.log(name)
        with log.open("ab" if append else "wb") as out:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                start_new_session=self.detach,
                preexec_fn=None if self.detach else _die_with_parent(),
            )
        component = Component(name, process.pid, argv, str(log), process)
        self.components.append(component)
        self.save()
        return component

    # ---- faults (tests) ---------------------------------------------------------------------------

    def component(self, name: str) -> Component:
        """The running component called `name` (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok)."""
        for component in self.components:
            if component.name == name:
                return component
        raise KeyError(f"no component {name!r}; have {', '.join(c.name for c in self.components)}")

    def restart(self, name: str, grace: float = STOP_GRACE_SECONDS) -> Component:
        """Stop one component (SIGTERM, SIGKILL after `grace` s), start it again with the same argv, ports and
        data, and wait until it is ready; its log is appended to. The others keep running."""
        old = self.component(name)
        old.stop(grace)
        index = self.components.index(old)
        self.components.remove(old)
        new = self._spawn(name, old.argv, append=True)
        self.components.remove(new)
        self.components.insert(index, new)  # keep the start order: stop() goes in reverse
        self.save()
        self._wait(name, self._probe(name))
        return new

    def pause(self, name: str) -> None:
        """Freeze one component with SIGSTOP (it holds its sockets open and answers nothing) until `resume`."""
        os.kill(self.component(name).pid, signal.SIGSTOP)

    def resume(self, name: str) -> None:
        """SIGCONT a component frozen by `pause`."""
        os.kill(self.component(name).pid, signal.SIGCONT)

    def _failure(self, names: Sequence[str], reason: str) -> ControlPlaneError:
        parts = [f"{names[0]} not ready: {reason}"]
        for name in names:
            parts.append(f"--- {self.log(name)} (last lines) ---\n{log_tail(self.log(name))}")
        return ControlPlaneError("\n".join(parts))

    def _wait(self, name: str, probe: Callable[[], bool]) -> None:
        deadline = time.monotonic() + self.timeout
        component = next(c for c in self.components if c.name == name)
        while not probe():
            if not component.alive():
                raise self._failure([name], f"exited with code {component.process and component.process.poll()}")
            if time.monotonic() > deadline:
                raise self._failure([name], f"no healthy answer after {self.timeout:.0f} s")
            time.sleep(0.2)

    def _check(self, names: list[str], step: Callable[[], None]) -> None:
        try:
            step()
        except (TimeoutError, ApiException) as error:
            raise self._failure(names, str(error)) from error

    def _nodes_ready(self) -> None:
        if self.fleet:
            apply_fleet(self.kubeconfig, self.fleet, self.timeout)
            return
        sentinel = node_manifest(NodePool(None, 1, 0, "sentinel", cpu="1", memory="1Gi"), 0)
        with self.api_client() as api_client:
            api = client.CoreV1Api(api_client)
            wait_nodes_ready(api, create_nodes(api, [sentinel]), self.timeout)
            api.delete_node(sentinel["metadata"]["name"])

    def _default_service_account(self) -> None:
        deadline = time.monotonic() + self.timeout
        with self.api_client() as api_client:
            api = client.CoreV1Api(api_client)
            while True:
                try:
                    api.read_namespaced_service_account("default", "default")
                    return
                except ApiException as error:
                    if error.status != 404 or time.monotonic() > deadline:
                        raise TimeoutError("serviceaccount default/default was not created") from error
                time.sleep(0.2)

    def stop(self) -> None:
        """Stop every started process in reverse order (SIGTERM, SIGKILL after 10 s)."""
        for component in reversed(self.components):
            component.stop()
        self.components = []
        self.state_file.unlink(missing_ok=True)

    # ---- files -----------------------------------------------------------------------------------

    def _write_configs(self) -> None:
        pki = self.pki

        def data(path: Path) -> str:
            return base64.b64encode(path.read_bytes()).decode()

        kubeconfig = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "llmop-dev",
                    "cluster": {"server": self.api_url, "certificate-authority-data": data(pki.ca_cert)},
                }
            ],
            "users": [
                {
                    "name": "llmop-admin",
                    "user": {
                        "client-certificate-data": data(pki.admin_cert),
                        "client-key-data": data(pki.admin_key),
                    },
                }
            ],
            "contexts": [{"name": "llmop-dev", "context": {"cluster": "llmop-dev", "user": "llmop-admin"}}],
            "current-context": "llmop-dev",
        }
        self.kubeconfig.write_text(yaml.safe_dump(kubeconfig, sort_keys=False))
        self.kubeconfig.chmod(0o600)
        scheduler = {
            "apiVersion": "kubescheduler.config.k8s.io/v1",
            "kind": "KubeSchedulerConfiguration",
            "clientConnection": {"kubeconfig": str(self.kubeconfig)},
            "leaderElection": {"leaderElect": False},
        }
        (self.workdir / "scheduler.yaml").write_text(yaml.safe_dump(scheduler, sort_keys=False))
        assert self.binaries is not None
        stages = kwok_stages(self.binaries.kwok_stages.read_text(), self.pod_ready_delay_seconds)
        (self.workdir / "kwok-stages.yaml").write_text(stages)

    def save(self) -> None:
        state: dict[str, Any] = {
            "workdir": str(self.workdir),
            "kubeconfig": str(self.kubeconfig),
            "api_url": self.api_url if "apiserver" in self.ports else None,
            "ports": self.ports,
            "pod_ready_delay_seconds": self.pod_ready_delay_seconds,
            "startup_seconds": self.startup_seconds,
            "bin_dir": str(self.binaries.root) if self.binaries else None,
            "components": [{"name": c.name, "pid": c.pid, "argv": c.argv, "log": c.log} for c in self.components],
        }
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(self.state_file)

    @classmethod
    def load(cls, workdir: Path) -> ControlPlane:
        """The control plane recorded in `<workdir>/state.json` (empty, not running, if there is none)."""
        workdir = workdir.expanduser().resolve()
        plane = cls(workdir)
        try:
            state = json.loads(plane.state_file.read_text())
        except (OSError, ValueError):
            return plane
        plane.ports = {k: int(v) for k, v in state.get("ports", {}).items()}
        plane.pod_ready_delay_seconds = float(state.get("pod_ready_delay_seconds", 0.0))
        plane.startup_seconds = float(state.get("startup_seconds", 0.0))
        plane.components = [Component(c["name"], c["pid"], c["argv"], c["log"]) for c in state["components"]]
        if state.get("bin_dir"):
            plane.binaries = Binaries(Path(state["bin_dir"]))
        return plane
