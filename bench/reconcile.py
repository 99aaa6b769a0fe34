"""Reconcile benchmark on the local control plane: create N LLMDeployments at once and measure the operator.

Figures (one JSON object with --json; also written to bench/results/reconcile-<count>.json):

- llmop_p50_ms / llmop_p99_ms: LLMDeployment create -> owned Deployment exists. Start: the earliest moment this
  client knows the LLMDeployment exists (its create call returned, or the watch delivered it); end: a client-side
  watch on Deployments delivers the owned one. time.monotonic() throughout, never creationTimestamp.
- kcm_p50_ms / kcm_p99_ms: in the same run, kube-controller-manager's Deployment -> ReplicaSet latency, both
  ends seen by client-side watches (the watch delay is in both ends, so it cancels out).
- all_available_s: first create -> every LLMDeployment has Available=True (watch on LLMDeployments).
- operator_rss_mb: VmRSS of the operator process (/proc/<pid>/status) at the end, all resources present.
- steady_state_writes: write requests (create/update/patch/delete) by the operator during a quiet window after
  everything settled, counted from the API server's audit log. The operator runs with its own identity (a
  ServiceAccount token, system:serviceaccount:llmop-system:llmop-operator); no other process uses that
  identity, so every audit entry with that user is the operator's.

It starts its own control plane (etcd, kube-apiserver with an audit log, controller-manager, scheduler, kwok)
in a temporary directory, on 127.0.0.1 only, and stops everything it started by pid at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
OPERATOR_SRC = REPO_ROOT / "operator"
sys.path.insert(0, str(OPERATOR_SRC))  # this checkout's llmop, whatever an installed one points at

from apiwatch import AuditLog, RawApi, Watch  # noqa: E402
from llmop.api.spec import GROUP, PLURAL, VERSION  # noqa: E402
from llmop_dev.localcluster.controlplane import ControlPlane  # noqa: E402
from llmop_dev.localcluster.nodes import NodePool  # noqa: E402
from llmop_dev.localcluster.samples import h100_llmdeployment  # noqa: E402
from llmop_dev.localcluster.stack import install_crd  # noqa: E402
from operator_proc import OPERATOR_NAMESPACE, OPERATOR_USER, Operator, operator_kubeconfig  # noqa: E402

NAMESPACE = "llmop-bench"
WARMUP_NAMESPACE = "llmop-bench-warmup"
GPUS_PER_NODE = 8
LEASE_RESOURCE = "leases"  # leader-election renewals: writes by design, reported apart from steady-state writes


def llmd(name: str) -> dict[str, Any]:
    """1 x H100 fp8, one replica, autoscaling on (no Prometheus here: it holds)."""
    return h100_llmdeployment(name, min_replicas=1, max_replicas=1, target_ms=40, slo_window=None)


def by_operator(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The operator's writes other than its Lease renewals."""
    return [
        e
        for e in AuditLog.by_user(entries, OPERATOR_USER)
        if (e.get("objectRef") or {}).get("resource") != LEASE_RESOURCE
    ]


def lease_writes(entries: list[dict[str, Any]]) -> int:
    return sum(
        (e.get("objectRef") or {}).get("resource") == LEASE_RESOURCE for e in AuditLog.by_user(entries, OPERATOR_USER)
    )


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[rank - 1]


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 1)


@dataclass
class Timeline:
    """First-seen monotonic times, keyed by object name."""

    created: dict[str, float] = field(default_factory=dict)  # LLMDeployment create call returned
    llmd_seen: dict[str, float] = field(default_factory=dict)
    available: dict[str, float] = field(default_factory=dict)
    deployment_seen: dict[str, float] = field(default_factory=dict)
    replicaset_seen: dict[str, float] = field(default_factory=dict)  # keyed by the owning Deployment's name
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_llmd(self, kind: str, obj: dict[str, Any], seen: float) -> None:
        name = obj["metadata"]["name"]
        conditions = (obj.get("status") or {}).get("conditions") or []
        with self.lock:
            self.llmd_seen.setdefault(name, seen)
            if any(c.get("type") == "Available" and c.get("status") == "True" for c in conditions):
                self.available.setdefault(name, seen)

    def on_deployment(self, kind: str, obj: dict[str, Any], seen: float) -> None:
        with self.lock:
            self.deployment_seen.setdefault(obj["metadata"]["name"], seen)

    def on_replicaset(self, kind: str, obj: dict[str, Any], seen: float) -> None:
        owners = obj["metadata"].get("ownerReferences") or []
        owner = next((o["name"] for o in owners if o.get("kind") == "Deployment"), None)
        if owner:
            with self.lock:
                self.replicaset_seen.setdefault(owner, seen)

    def llmop_latencies(self) -> list[float]:
        with self.lock:
            out = []
            for name, done in self.deployment_seen.items():
                starts = [t for t in (self.created.get(name), self.llmd_seen.get(name)) if t is not None]
                if starts:
                    out.append(done - min(starts))
            return out

    def kcm_latencies(self) -> list[float]:
        with self.lock:
            return [self.replicaset_seen[n] - t for n, t in self.deployment_seen.items() if n in self.replicaset_seen]


# ---- the run -----------------------------------------------------------------------------------------------


def wait_until(probe: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if probe():
            return True
        time.sleep(interval)
    return probe()


def llmd_path(namespace: str, name: str = "") -> str:
    return f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}" + (f"/{name}" if name else "")


@contextlib.contextmanager
def watches(api: RawApi, timeline: Timeline) -> Iterator[list[Watch]]:
    threads = [
        Watch(api, llmd_path(NAMESPACE), timeline.on_llmd),
        Watch(api, f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments", timeline.on_deployment),
        Watch(api, f"/apis/apps/v1/namespaces/{NAMESPACE}/replicasets", timeline.on_replicaset),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.ready.wait(30)
        if thread.error:
            raise RuntimeError(thread.error)
    try:
        yield threads
    finally:
        for thread in threads:
            thread.stop()
        for thread in threads:
            thread.join(5)


def warm_up(api: RawApi) -> None:
    """One LLMDeployment through the operator before the clock starts (imports, watch streams), then deleted."""
    status, body = api.request("POST", llmd_path(WARMUP_NAMESPACE), llmd("warmup"))
    if status != 201:
        raise RuntimeError(f"warm-up create: HTTP {status}: {body.get('message')}")
    deployment = f"/apis/apps/v1/namespaces/{WARMUP_NAMESPACE}/deployments/warmup"
    if not wait_until(lambda: api.request("GET", deployment)[0] == 200, 120):
        raise TimeoutError("the operator did not create the warm-up Deployment in 120 s")
    api.request("DELETE", llmd_path(WARMUP_NAMESPACE, "warmup"), {"propagationPolicy": "Foreground"})
    wait_until(lambda: api.request("GET", deployment)[0] == 404, 60)


def run(args: argparse.Namespace) -> dict[str, Any]:
    count: int = args.count
    nodes = args.nodes or math.ceil(count / GPUS_PER_NODE) + 2
    fleet = (NodePool("H100-80GB", nodes, GPUS_PER_NODE, "p5.48xlarge", cpu="192", memory="2048Gi"),)
    workdir = Path(tempfile.mkdtemp(prefix="llmop-bench-"))
    plane = ControlPlane(workdir / "cp", fleet=fleet, pod_ready_delay_seconds=0, audit_log=True)
    operator: Operator | None = None
    result: dict[str, Any] = {"count": count}
    progress = (
        (lambda msg: print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr))
        if args.verbose
        else (lambda msg: None)
    )
    try:
        progress(f"starting the control plane with {nodes} kwok nodes x {GPUS_PER_NODE} H100 in {workdir}")
        plane.start()
        api = RawApi(plane)
        with plane.api_client() as api_client:
            install_crd(api_client)
            core = client.CoreV1Api(api_client)
            for ns in (NAMESPACE, WARMUP_NAMESPACE, OPERATOR_NAMESPACE):
                core.create_namespace({"metadata": {"name": ns}})
            wait_until(
                lambda: api.request("GET", f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts/default")[0] == 200, 60
            )
            kubeconfig = operator_kubeconfig(plane, api_client, workdir / "operator.kubeconfig")
        operator = Operator(
            kubeconfig, workdir / "operator.log", args.interval, not args.no_leader_elect, args.resync
        ).start()
        progress(f"operator pid {operator.pid}; warm-up")
        warm_up(api)
        rss_idle, _ = operator.rss_mb()
        audit = AuditLog(plane.audit_log_path)
        audit.read_new()  # skip everything before the clock starts
        timeline = Timeline()
        with watches(api, timeline) as threads:
            names = [f"bench-{i:04d}" for i in range(count)]
            failures: list[str] = []

            def create(name: str) -> None:
                status, body = api.request("POST", llmd_path(NAMESPACE), llmd(name))
                done = time.monotonic()
                if status != 201:
                    failures.append(f"{name}: HTTP {status} {body.get('message')}")
                with timeline.lock:
                    timeline.created[name] = done

            progress(f"creating {count} LLMDeployments with {args.concurrency} client threads")
            cpu_at_start = operator.cpu_seconds()
            t0 = time.monotonic()
            with ThreadPoolExecutor(args.concurrency) as pool:
                list(pool.map(create, names))
            create_wall = time.monotonic() - t0
            if failures:
                raise RuntimeError(f"{len(failures)} creates failed, e.g. {failures[:3]}")
            progress(f"created in {create_wall:.1f} s; waiting for every Deployment and every Available")
            wait_until(lambda: len(timeline.deployment_seen) >= count, args.timeout)
            wait_until(lambda: len(timeline.replicaset_seen) >= count, 60)
            all_available = wait_until(lambda: len(timeline.available) >= count, args.timeout, interval=0.5)
            errors = [t.error for t in threads if t.error]
            if errors:
                raise RuntimeError("; ".join(errors))
            with timeline.lock:
                available_at = max(timeline.available.values()) if all_available else None
                n_available = len(timeline.available)
            cpu_creation = operator.cpu_seconds() - cpu_at_start
            creation_writes = by_operator(audit.read_new())
            rss_available, _ = operator.rss_mb()
            progress(f"all Available: {all_available} ({n_available}/{count}); settling")

            # settle: until the operator has written nothing for `settle` seconds (bounded)
            settle_deadline = time.monotonic() + args.settle_max
            last_write = time.monotonic()
            while time.monotonic() < settle_deadline and time.monotonic() - last_write < args.settle:
                time.sleep(1.0)
                late = by_operator(audit.read_new())
                creation_writes += late
                if late:
                    last_write = time.monotonic()
            settled = time.monotonic() - last_write >= args.settle
            progress(f"settled: {settled}; quiet window of {args.quiet:g} s")
            cpu_before, window_start = operator.cpu_seconds(), time.monotonic()
            reconciles_before, decisions_before = operator.passes()
            time.sleep(args.quiet)
            window_entries = audit.read_new()
            window = time.monotonic() - window_start
            cpu_window = operator.cpu_seconds() - cpu_before
            reconciles_after, decisions_after = operator.passes()
            reconciles = int(reconciles_after - reconciles_before)
            steady = by_operator(window_entries)
            rss, hwm = operator.rss_mb()
            threads_at_end = operator.status().get("Threads", 0)
            fds_at_end = len(os.listdir(f"/proc/{operator.pid}/fd"))
            present = len(api.request("GET", llmd_path(NAMESPACE))[1].get("items") or [])
            operator_alive = operator.process is not None and operator.process.poll() is None

        llmop = timeline.llmop_latencies()
        kcm = timeline.kcm_latencies()
        others: Counter[str] = Counter(
            (e.get("userAgent") or "?").split(" ")[0].split("/")[0]
            for e in window_entries
            if (e.get("user") or {}).get("username") != OPERATOR_USER
        )
        result.update(
            {
                "llmop_p50_ms": ms(percentile(llmop, 50)),
                "llmop_p99_ms": ms(percentile(llmop, 99)),
                "llmop_max_ms": ms(max(llmop) if llmop else None),
                "llmop_mean_ms": ms(statistics.fmean(llmop) if llmop else None),
                "kcm_p50_ms": ms(percentile(kcm, 50)),
                "kcm_p99_ms": ms(percentile(kcm, 99)),
                "kcm_max_ms": ms(max(kcm) if kcm else None),
                "all_available_s": None if available_at is None else round(available_at - t0, 2),
                "available": n_available,
                "operator_rss_mb": rss,
                "operator_rss_peak_mb": hwm,
                "operator_rss_idle_mb": rss_idle,
                "operator_rss_at_available_mb": rss_available,
                "operator_threads": threads_at_end,
                "operator_open_fds": fds_at_end,
                "steady_state_writes": len(steady),
                "steady_state_reconciles": reconciles,
                "steady_state_autoscaler_passes": int(decisions_after - decisions_before),
                "steady_state_writes_per_reconcile": round(len(steady) / reconciles, 3) if reconciles else None,
                "steady_state_lease_renewals_per_min": round(60.0 * lease_writes(window_entries) / window, 1),
                "steady_state_writes_by_request": AuditLog.describe(steady),
                "steady_state_window_s": round(window, 1),
                "steady_state_settled": settled,
                "steady_state_operator_cpu_pct": round(100.0 * cpu_window / window, 1),
                "steady_state_other_writers": dict(others.most_common()),
                "creation_writes": len(creation_writes),
                "creation_operator_cpu_s": round(cpu_creation, 1),
                "creation_writes_by_request": AuditLog.describe(creation_writes),
                "count": count,
                "present_at_end": present,
                "operator_alive": operator_alive,
                "create_wall_s": round(create_wall, 2),
                "nodes": nodes,
                "gpus": nodes * GPUS_PER_NODE,
                "autoscale_interval_s": args.interval,
                "cpus": os.cpu_count(),
            }
        )
        election = "no leader election" if args.no_leader_elect else "Lease leader election"
        result["notes"] = (
            f"{count} LLMDeployments (1 x H100-80GB each) created by {args.concurrency} client threads against a "
            f"local control plane (kwok, {nodes} nodes x {GPUS_PER_NODE} H100 = room for every pod; pods turn "
            f"Ready at once). Operator: `llmop run` ({election}), "
            f"cluster-wide, full reconcile every {args.resync:g} s, autoscaler tick "
            f"{args.interval:g} s, no Prometheus (the autoscaler holds replicas), authenticated as {OPERATOR_USER}. "
            "llmop latency: min(create returned, LLMD seen by watch) -> owned Deployment seen by watch; KCM latency: "
            "Deployment seen by watch -> its ReplicaSet seen by watch (same run, so KCM works at the pace the "
            "operator creates Deployments). Steady-state writes: audit-log entries (verbs create/update/patch/delete) "
            f"whose user is {OPERATOR_USER}, Lease renewals counted apart, over a {window:.0f} s window after "
            + (f"the operator had made no write for {args.settle:g} s." if settled else "a bounded settle.")
            + f" {os.cpu_count()} CPUs shared by every component."
        )
        return result
    finally:
        if operator is not None:
            if args.keep:
                print(f"operator log: {operator.log_path}", file=sys.stderr)
            operator.stop()
        plane.stop()
        if args.keep:
            print(f"kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=200, help="LLMDeployments to create at once")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--concurrency", type=int, default=16, help="client threads that create")
    parser.add_argument("--nodes", type=int, default=0, help="kwok H100 x8 nodes (default: room for every pod)")
    parser.add_argument("--interval", type=float, default=15.0, help="operator autoscaler tick, seconds")
    parser.add_argument(
        "--resync", type=float, default=30.0, help="operator's full-reconcile period (it is 300 s by default)"
    )
    parser.add_argument("--no-leader-elect", action="store_true", help="run the operator without the Lease")
    parser.add_argument("--quiet", type=float, default=60.0, help="steady-state window, seconds")
    parser.add_argument(
        "--settle", type=float, default=None, help="operator write-free seconds before the window (interval + 5)"
    )
    parser.add_argument("--settle-max", type=float, default=120.0, help="longest wait for the settle")
    parser.add_argument("--timeout", type=float, default=900.0, help="longest wait for Deployments / Available")
    parser.add_argument("--out", default=str(HERE / "results"), help="directory of reconcile-<count>.json")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, audit log)")
    parser.add_argument("-v", "--verbose", action="store_true", help="progress on stderr")
    args = parser.parse_args(argv)
    if args.settle is None:  # every object has had a timer pass since the operator's last write
        args.settle = args.interval + 5.0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the clean-up in `finally` on SIGTERM too
    result = run(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"reconcile-{args.count}.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>32}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
