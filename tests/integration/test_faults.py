"""Fault injection on a control plane of this module's own (stopping etcd or the API server would disturb the
shared one): operator crashes, an API server restart, an etcd stall, conflicting writers, hand edits, two
operator replicas and lost GPU nodes. After each fault every LLMDeployment has exactly one Deployment, Service
and PodDisruptionBudget owned by it, no ReplicaSet churn unless a rollout was due, and a status that tells the
truth; the autoscaler holds what it decided and adopts nothing (no Prometheus here: metrics unavailable, except
for the fake one that makes the two-replica test scale)."""

from __future__ import annotations

import json
import os
import re
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from prometheus_client.parser import text_string_to_metric_families
from urllib3.exceptions import HTTPError

from llmop.api.spec import GROUP, PLURAL, VERSION
from llmop.render.labels import MANAGED_BY, SELECTOR_LABEL
from llmop_dev.localcluster.binaries import BinariesMissing, find_binaries
from llmop_dev.localcluster.controlplane import ControlPlane
from llmop_dev.localcluster.nodes import NodePool, create_nodes, node_manifest, wait_nodes_ready
from llmop_dev.localcluster.stack import install_crd
from support.operator import OperatorProcess, condition, events_for, get_llmd, llmd_api, wait_for

pytestmark = pytest.mark.timeout(600)

H100 = NodePool("H100-80GB", 3, 8, "p5.48xlarge", cpu="192", memory="2048Gi")
A100 = NodePool("A100-80GB", 2, 4, "a2-ultragpu-4g", cpu="48", memory="680Gi")  # only the node-loss test uses it
FLEET = (H100, A100)
MANAGED = f"app.kubernetes.io/managed-by={MANAGED_BY}"
LEASE_SECONDS, RENEW_SECONDS, RENEW_DEADLINE_SECONDS = 15, 2.0, 10.0  # LeaderElector's defaults (`llmop run`)
ETCD_STALL_SECONDS = 6.0  # below the renew deadline minus one renew period: the leader keeps its lease
TICK_S = 2.0  # OperatorProcess: --autoscale-interval 2 (the resync timer runs at the same interval)


# ---- fixtures: this module's own control plane ---------------------------------------------------------------


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """etcd + kube-apiserver + KCM + scheduler + kwok with FLEET, and the CRD; stopped after this module."""
    try:
        find_binaries()
    except BinariesMissing as error:
        if os.environ.get("REQUIRE_K8S") == "1":
            pytest.fail(f"REQUIRE_K8S=1 but {error}", pytrace=False)
        pytest.skip(str(error))
    control_plane = ControlPlane(tmp_path_factory.mktemp("faults-plane"), fleet=FLEET)
    control_plane.start()
    try:
        with control_plane.api_client() as api_client:
            install_crd(api_client)
        yield control_plane
    finally:
        for component in control_plane.components:
            if component.paused():
                control_plane.resume(component.name)
        control_plane.stop()


@pytest.fixture(scope="module")
def kube(plane: ControlPlane) -> Iterator[client.ApiClient]:
    """Admin client of this module's control plane (overrides the shared one)."""
    with plane.api_client() as api_client:
        yield api_client


@pytest.fixture
def namespace(kube: client.ApiClient) -> Iterator[str]:
    """A fresh namespace on this module's control plane (overrides the shared one)."""
    core = client.CoreV1Api(kube)
    name = f"f-{uuid.uuid4().hex[:8]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    try:
        yield name
    finally:
        core.delete_namespace(name, propagation_policy="Background")


@pytest.fixture
def operators(namespace: str) -> Iterator[list[OperatorProcess]]:
    """Operators started by the test (see `_operator`); killed before the namespace goes, their log tails printed."""
    started: list[OperatorProcess] = []
    yield started
    for index, proc in enumerate(started):
        proc.stop(kill=True)
        print(f"--- operator {index} ({proc.log_path}) last lines\n" + "\n".join(proc.log().splitlines()[-60:]))


def _operator(
    plane: ControlPlane, namespace: str, tmp_path: Path, started: list[OperatorProcess], **kwargs: Any
) -> OperatorProcess:
    log = tmp_path / f"operator-{len(started)}.log"
    proc = OperatorProcess(plane.kubeconfig, log, namespaces=(namespace,), **kwargs)
    started.append(proc)
    return proc.start()


class FakePrometheus:
    """Answers the operator's instant queries on 127.0.0.1 like Prometheus would for vLLM pods: a p95 TPOT per
    LLMDeployment (all decode-latency mass in one vLLM bucket), 8 running and 0 waiting requests, nothing else."""

    BUCKETS_S = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2)  # vLLM's first ITL bucket edges
    TOKENS_PER_S = 40.0  # 1200 samples in a 30 s window: enough to judge

    def __init__(self) -> None:
        self.bucket: dict[str, float] = {}  # LLMDeployment -> upper edge of the bucket holding its latency
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query).get("query", [""])[0]
                body = json.dumps({"status": "success", "data": {"resultType": "vector", "result": fake.answer(query)}})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def set_p95(self, name: str, bucket_upper_s: float) -> None:
        """Put `name`'s decode latency in the vLLM bucket ending at `bucket_upper_s` (p95 just below it)."""
        self.bucket[name] = bucket_upper_s

    def answer(self, query: str) -> list[dict[str, Any]]:
        found = re.search(r'llmdeployment="([^"]+)"', query)
        name = found.group(1) if found else ""
        now = time.time()
        if query.lstrip("(").startswith("sum by (le)") and "_bucket" in query:  # "(colon names) or (escaped)"
            upper = self.bucket.get(name, 0.05)
            rows = [(str(edge), self.TOKENS_PER_S if edge >= upper else 0.0) for edge in self.BUCKETS_S]
            rows.append(("+Inf", self.TOKENS_PER_S))
            return [{"metric": {"le": le}, "value": [now, str(rate)]} for le, rate in rows]
        for metric, value in (("num_requests_running", 8.0), ("num_requests_waiting", 0.0)):
            if f"(vllm:{metric}{{" in query:
                return [{"metric": {"llmdeployment": name}, "value": [now, str(value)]}]
        return []

    def __enter__(self) -> FakePrometheus:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


# ---- helpers ---------------------------------------------------------------------------------------------------


def _llmd(
    name: str, *, gpu: str = "H100-80GB", count: int = 1, minimum: int = 1, maximum: int = 4, up: str = "10s"
) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "LLMDeployment",
        "metadata": {"name": name},
        "spec": {
            "model": {"name": "meta-llama/Llama-3.1-8B-Instruct"},
            "engine": "vllm",
            "quantization": "fp8" if gpu.startswith("H") else "none",
            "gpu": {"type": gpu, "count": count},
            "maxModelLen": 8192,
            "replicas": {"min": minimum, "max": maximum},
            "slo": {"decodeLatency": {"percentile": 95, "targetMs": 50, "window": "30s"}},
            "autoscaling": {"scaleUpStabilization": up, "scaleDownStabilization": "30s"},
        },
    }


def _create(kube: client.ApiClient, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    return cast(dict[str, Any], llmd_api(kube).create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body))


def _body(kube: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    body = get_llmd(kube, namespace, name)
    assert body is not None, f"LLMDeployment {namespace}/{name} is gone"
    return body


def _status(kube: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    return _body(kube, namespace, name).get("status") or {}


def _condition(body: dict[str, Any], type_: str) -> dict[str, Any]:
    found = condition(body, type_)
    assert found is not None, f"no {type_} condition in {body.get('status')}"
    return found


def _patch_spec(kube: client.ApiClient, namespace: str, name: str, spec: dict[str, Any]) -> None:
    llmd_api(kube).patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name, {"spec": spec})


def _raw(response: Any) -> dict[str, Any]:
    return json.loads(response.data)


def _items(kube: client.ApiClient, namespace: str) -> dict[str, list[dict[str, Any]]]:
    """Every LLMDeployment, the operator's children, ReplicaSets and pods in the namespace, as plain dicts."""
    apps, core, policy = client.AppsV1Api(kube), client.CoreV1Api(kube), client.PolicyV1Api(kube)
    kw: dict[str, Any] = {"_preload_content": False}
    return {
        "LLMDeployment": cast(
            dict[str, Any], llmd_api(kube).list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
        )["items"],
        "Deployment": _raw(apps.list_namespaced_deployment(namespace, **kw))["items"],
        "Service": _raw(core.list_namespaced_service(namespace, **kw))["items"],
        "PodDisruptionBudget": _raw(policy.list_namespaced_pod_disruption_budget(namespace, **kw))["items"],
        "ReplicaSet": _raw(apps.list_namespaced_replica_set(namespace, **kw))["items"],
        "Pod": _raw(core.list_namespaced_pod(namespace, label_selector=MANAGED, **kw))["items"],
    }


def _deployment(kube: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    return _raw(client.AppsV1Api(kube).read_namespaced_deployment(name, namespace, _preload_content=False))


def problems(
    kube: client.ApiClient,
    namespace: str,
    names: set[str],
    replica_sets: dict[str, int] | None = None,
    metrics: bool = False,
) -> list[str]:
    """What is wrong with the namespace (empty: converged and truthful).

    Exactly the LLMDeployments `names`; for each exactly one Deployment, Service and PDB, controlled by it (uid),
    and nothing else of the operator's; `replica_sets[name]` ReplicaSets (default 1: no churn) with only the
    newest scaled up; the pods the Deployment asks for, all Running and Ready; and a status that says so.
    """
    try:
        items = _items(kube, namespace)
    except (ApiException, HTTPError) as error:
        return [f"API: {error}"]
    found: list[str] = []
    llmds = {o["metadata"]["name"]: o for o in items["LLMDeployment"]}
    if set(llmds) != names:
        found.append(f"LLMDeployments {sorted(llmds)} != {sorted(names)}")
    uids = {o["metadata"]["uid"]: name for name, o in llmds.items()}
    for kind in ("Deployment", "Service", "PodDisruptionBudget"):
        have = sorted(o["metadata"]["name"] for o in items[kind])
        if have != sorted(llmds):
            found.append(f"{kind}s {have} != one per LLMDeployment {sorted(llmds)}")
        for obj in items[kind]:
            refs = obj["metadata"].get("ownerReferences") or []
            if len(refs) != 1 or refs[0].get("kind") != "LLMDeployment" or not refs[0].get("controller"):
                found.append(f"{kind} {obj['metadata']['name']}: ownerReferences {refs}")
            elif uids.get(refs[0]["uid"]) != obj["metadata"]["name"]:
                found.append(f"{kind} {obj['metadata']['name']}: owner uid {refs[0]['uid']} is not its LLMDeployment")
    deployments = {o["metadata"]["name"]: o for o in items["Deployment"]}
    for name, llmd in llmds.items():
        dep = deployments.get(name)
        if dep is None:
            continue
        want = (replica_sets or {}).get(name, 1)
        owned = [
            rs for rs in items["ReplicaSet"] if rs["metadata"]["ownerReferences"][0]["uid"] == dep["metadata"]["uid"]
        ]
        scaled = [rs["metadata"]["name"] for rs in owned if rs["spec"].get("replicas")]
        if len(owned) != want or len(scaled) != 1:
            found.append(f"{name}: {len(owned)} ReplicaSets (want {want}), scaled up: {scaled}")
        spec_replicas = dep["spec"]["replicas"]
        dep_status = dep.get("status") or {}
        pods = [p for p in items["Pod"] if p["metadata"]["labels"].get(SELECTOR_LABEL) == name]
        running = [
            p for p in pods if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")
        ]
        if len(pods) != spec_replicas or len(running) != spec_replicas:
            found.append(f"{name}: {len(pods)} pods, {len(running)} running, Deployment wants {spec_replicas}")
        if dep_status.get("observedGeneration") != dep["metadata"]["generation"]:
            found.append(f"{name}: Deployment generation {dep['metadata']['generation']} not observed by KCM yet")
        status = llmd.get("status") or {}
        truth = {
            "observedGeneration": llmd["metadata"]["generation"],
            "phase": "Ready",
            "desiredReplicas": spec_replicas,
            "replicas": dep_status.get("replicas", 0),
            "readyReplicas": dep_status.get("readyReplicas", 0),
            "deploymentName": name,
        }
        wrong = {key: (status.get(key), value) for key, value in truth.items() if status.get(key) != value}
        last_ready = (status.get("autoscaler") or {}).get("lastReady")
        if last_ready != dep_status.get("readyReplicas", 0):  # the autoscaler has seen the replicas as they are
            wrong["autoscaler.lastReady"] = (last_ready, dep_status.get("readyReplicas", 0))
        if dep_status.get("readyReplicas", 0) != spec_replicas:
            wrong["deployment ready"] = (dep_status.get("readyReplicas", 0), spec_replicas)
        # without Prometheus the autoscaler must say so (and hold) rather than judge the SLO
        for type_, want_status in (
            ("Available", "True"),
            ("Degraded", "False"),
            ("Progressing", "False"),
            ("MetricsAvailable", "True" if metrics else "False"),
            ("SLOMet", "True" if metrics else "Unknown"),
        ):
            got = (condition(llmd, type_) or {}).get("status")
            if got != want_status:
                wrong[type_] = (got, want_status)
        if wrong:
            found.append(f"{name}: status (have, want) {wrong}")
    return found


def settle(
    kube: client.ApiClient,
    namespace: str,
    names: set[str],
    timeout: float,
    replica_sets: dict[str, int] | None = None,
    what: str = "converged",
    metrics: bool = False,
) -> float:
    """Wait until `problems` is empty; return the seconds it took; fail with the remaining problems."""
    began = time.monotonic()
    deadline = began + timeout
    found = problems(kube, namespace, names, replica_sets, metrics)
    shown: list[str] = []
    while found:
        if found != shown:  # the path to convergence, in the captured output of a failing test
            print(f"{time.monotonic() - began:5.1f} s {what}? " + "; ".join(found))
            shown = found
        if time.monotonic() > deadline:
            raise AssertionError(f"not {what} after {timeout:.0f} s:\n  " + "\n  ".join(found))
        time.sleep(0.5)
        found = problems(kube, namespace, names, replica_sets, metrics)
    return time.monotonic() - began


def fingerprint(kube: client.ApiClient, namespace: str) -> dict[str, Any]:
    """uid and resourceVersion of every child and ReplicaSet, and each LLMDeployment's status minus timestamps."""
    items = _items(kube, namespace)
    prints: dict[str, Any] = {}
    for kind in ("Deployment", "Service", "PodDisruptionBudget", "ReplicaSet"):
        for obj in items[kind]:
            prints[f"{kind}/{obj['metadata']['name']}"] = (obj["metadata"]["uid"], obj["metadata"]["resourceVersion"])
    for obj in items["LLMDeployment"]:
        status = dict(obj.get("status") or {})
        status.get("decodeLatency", {}).pop("observedAt", None)  # the time of the last Prometheus reading
        prints[f"status/{obj['metadata']['name']}"] = status
    return prints


def assert_same_objects(before: dict[str, Any], after: dict[str, Any]) -> None:
    """Every child and ReplicaSet of `before` still exists with the same uid (nothing deleted and recreated)."""
    kept = {key: value[0] for key, value in before.items() if not key.startswith("status/")}
    assert {key: (after.get(key) or (None,))[0] for key in kept} == kept


def assert_quiet(kube: client.ApiClient, namespace: str, seconds: float = 2.2 * TICK_S) -> None:
    """Nothing the operator owns changes over a few resync and autoscaler ticks (no write loop, no churn)."""
    before = fingerprint(kube, namespace)
    time.sleep(seconds)  # absence of change: there is nothing to wait for
    after = fingerprint(kube, namespace)
    changed = {
        key: (before.get(key), after.get(key))
        for key in before.keys() | after.keys()
        if before.get(key) != after.get(key)
    }
    assert not changed, f"changed while nothing happened (before, after): {changed}"


def tolerant(probe: Callable[[], Any]) -> Callable[[], Any]:
    """A probe that answers None while the API server cannot answer."""

    def run() -> Any:
        try:
            return probe()
        except (ApiException, HTTPError, OSError):
            return None

    return run


def acted(proc: OperatorProcess) -> dict[str, float]:
    """What one operator process did, from its own /metrics: reconcile passes and scale decisions by direction."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"http://127.0.0.1:{proc.metrics_port}/metrics", timeout=5) as response:
        text = response.read().decode()
    counts = {"reconciles": 0.0, "up": 0.0, "down": 0.0, "hold": 0.0}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "llmop_reconcile_duration_seconds_count":
                counts["reconciles"] += sample.value
            elif sample.name == "llmop_scale_decisions_total":
                counts[sample.labels["direction"]] += sample.value
    return counts


def applied_lines(proc: OperatorProcess) -> list[str]:
    return [line for line in proc.log().splitlines() if "llmop.reconcile" in line and ": applied " in line]


def crashed(proc: OperatorProcess) -> list[str]:
    """Handler failures kopf retried, and anything that killed the process."""
    bad = ("failed with an exception", "Traceback (most recent call last)")
    return [line for line in proc.log().splitlines() if any(b in line for b in bad)]


# ---- faults ------------------------------------------------------------------------------------------------------


def _leading_as(proc: OperatorProcess) -> str | None:
    found = re.search(r"leading as (\S+) \(lease", proc.log())
    return found.group(1) if found else None


def _lease(kube: client.ApiClient, namespace: str) -> client.V1LeaseSpec:
    spec = client.CoordinationV1Api(kube).read_namespaced_lease("llmop-operator", namespace).spec
    assert spec is not None
    return spec


def _elect(
    plane: ControlPlane,
    kube: client.ApiClient,
    namespace: str,
    tmp_path: Path,
    started: list[OperatorProcess],
    **kwargs: Any,
) -> tuple[OperatorProcess, OperatorProcess, Callable[[], str | None]]:
    """Two leader-electing operators on one Lease; returns (leader, follower, lease holder probe)."""
    for _ in range(2):
        _operator(plane, namespace, tmp_path, started, leader_elect=True, lease_namespace=namespace, **kwargs)
    holder = tolerant(lambda: _lease(kube, namespace).holder_identity)
    first = wait_for(holder, 30, what="a lease holder")
    wait_for(lambda: first in {_leading_as(p) for p in started}, 30, what="the leader's log line")
    leader, follower = started if _leading_as(started[0]) == first else reversed(started)
    wait_for(lambda: "waiting for lease" in follower.log(), 30, what="the follower to wait")
    assert _leading_as(follower) is None
    return leader, follower, holder


def test_api_server_restart(
    plane: ControlPlane, kube: client.ApiClient, namespace: str, tmp_path: Path, operators: list[OperatorProcess]
) -> None:
    """Two leader-electing replicas through an API server restart: neither crashes, one leads afterwards, its
    watches are live again, and nothing that existed is recreated or rolled."""
    leader, follower, holder = _elect(plane, kube, namespace, tmp_path, operators)
    for name in ("a", "b"):
        _create(kube, namespace, _llmd(name))
    settle(kube, namespace, {"a", "b"}, 60)
    before = fingerprint(kube, namespace)
    began = time.monotonic()
    plane.restart("kube-apiserver", grace=2)  # it stops listening at SIGTERM at once, then lingers
    outage = time.monotonic() - began
    print(f"API server down and back in {outage:.1f} s")
    settle(kube, namespace, {"a", "b"}, 60, what="still converged after the restart")
    assert_same_objects(before, fingerprint(kube, namespace))
    assert follower.alive(), "the waiting replica crashed while the API server was away"
    if not leader.alive():  # allowed only if it could not renew for a whole lease: it must then step down cleanly
        assert outage >= RENEW_DEADLINE_SECONDS - RENEW_SECONDS and leader.process and leader.process.returncode == 3
        assert "lost the leader Lease" in leader.log()
        wait_for(lambda: holder() == _leading_as(follower), LEASE_SECONDS + RENEW_SECONDS + 10, what="takeover")
    else:
        assert holder() == _leading_as(leader) and _leading_as(follower) is None
    # the acting replica's watches came back: a new resource, a spec change and a hand edit are all handled
    _create(kube, namespace, _llmd("c"))
    _patch_spec(kube, namespace, "a", {"maxModelLen": 4096})
    client.AppsV1Api(kube).patch_namespaced_deployment_scale("b", namespace, {"spec": {"replicas": 3}})
    settle(kube, namespace, {"a", "b", "c"}, 60, {"a": 2}, what="converged on changes made after the restart")
    args = _deployment(kube, namespace, "a")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--max-model-len") + 1] == "4096"
    assert_quiet(kube, namespace)
    assert not crashed(follower), crashed(follower)


def test_etcd_stalls_briefly(
    plane: ControlPlane, kube: client.ApiClient, namespace: str, tmp_path: Path, operators: list[OperatorProcess]
) -> None:
    """etcd frozen (SIGSTOP) for 6 s under a leader-electing operator, a create hanging meanwhile: the operator
    stays up and leading (a stall longer than its renew deadline makes it step down, as in the API server
    restart test), nothing is recreated or rolled, and what lands after the stall is handled."""
    op = _operator(plane, namespace, tmp_path, operators, leader_elect=True, lease_namespace=namespace)
    for name in ("a", "b"):
        _create(kube, namespace, _llmd(name))
    settle(kube, namespace, {"a", "b"}, 60)
    before = fingerprint(kube, namespace)
    # a client writes during the stall: its request hangs in the API server and lands when etcd is back
    writer = ThreadPoolExecutor(1)
    plane.pause("etcd")
    try:
        pending = writer.submit(_create, kube, namespace, _llmd("c"))
        time.sleep(ETCD_STALL_SECONDS)  # the fault itself: etcd frozen
        assert not pending.done() or pending.exception() is not None
    finally:
        plane.resume("etcd")
    try:
        pending.result(timeout=60)
    except ApiException as error:  # the API server gave up on etcd: the client retries, as kubectl's user would
        print(f"create during the stall failed ({error.status}); retrying")
        wait_for(tolerant(lambda: _create(kube, namespace, _llmd("c"))), 60, what="create after the stall")
    writer.shutdown()
    settle(kube, namespace, {"a", "b", "c"}, 90, what="converged after the etcd stall")
    assert_same_objects(before, fingerprint(kube, namespace))
    client.AppsV1Api(kube).patch_namespaced_deployment_scale("a", namespace, {"spec": {"replicas": 0}})
    settle(kube, namespace, {"a", "b", "c"}, 60, what="hand scale after the stall undone")
    assert op.alive(), f"the operator exited during a {ETCD_STALL_SECONDS:g} s etcd stall"
    assert_quiet(kube, namespace)


def test_conflicting_writers_with_resource_version_preconditions(
    plane: ControlPlane, kube: client.ApiClient, namespace: str, tmp_path: Path, operators: list[OperatorProcess]
) -> None:
    """Two clients read-modify-write (PUT with the resourceVersion they read) the Deployment (replicas 3, an
    annotation) and the LLMDeployment's status (a stale phase) in a loop; a spec change lands meanwhile."""
    op = _operator(plane, namespace, tmp_path, operators)
    _create(kube, namespace, _llmd("chat"))
    settle(kube, namespace, {"chat"}, 60)
    apps, custom = client.AppsV1Api(kube), llmd_api(kube)
    stop = threading.Event()
    counts = {"deployment": 0, "status": 0, "conflicts": 0}

    def fight_deployment() -> None:
        i = 0
        while not stop.wait(0.05):
            i += 1
            dep = _deployment(kube, namespace, "chat")  # carries the resourceVersion it was read at
            dep["spec"]["replicas"] = 3
            dep["metadata"].setdefault("annotations", {})["faults.test/touch"] = str(i)
            try:
                apps.replace_namespaced_deployment("chat", namespace, cast(Any, dep))
                counts["deployment"] += 1
            except ApiException as error:
                if error.status != 409:
                    raise
                counts["conflicts"] += 1

    def fight_status() -> None:
        while not stop.wait(0.05):
            body = _body(kube, namespace, "chat")
            body["status"] = {**(body.get("status") or {}), "phase": "Deploying", "readyReplicas": 7}
            try:
                custom.replace_namespaced_custom_object_status(GROUP, VERSION, namespace, PLURAL, "chat", body)
                counts["status"] += 1
            except ApiException as error:
                if error.status != 409:
                    raise
                counts["conflicts"] += 1

    with ThreadPoolExecutor(2) as pool:
        fights = [pool.submit(fight_deployment), pool.submit(fight_status)]
        time.sleep(3)  # the fight goes on while the spec changes
        _patch_spec(kube, namespace, "chat", {"maxModelLen": 4096})
        time.sleep(5)
        stop.set()
        for fight in fights:
            fight.result()
    print(f"writers: {counts}")
    assert counts["conflicts"] > 0 and counts["deployment"] > 0 and counts["status"] > 0, counts
    took = settle(kube, namespace, {"chat"}, 60, {"chat": 2}, what="converged after the fight")
    print(f"converged {took:.1f} s after the writers stopped")
    dep = _deployment(kube, namespace, "chat")
    args = dep["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--max-model-len") + 1] == "4096"
    assert dep["metadata"]["annotations"]["faults.test/touch"]  # a foreign field survives the operator's applies
    assert _status(kube, namespace, "chat")["desiredReplicas"] == 1, (
        "the autoscaler adopted the other writer's replicas"
    )
    assert not [e for e in events_for(kube, namespace, "chat") if e["reason"] == "Scaled"]
    assert op.alive() and not crashed(op), crashed(op)
    assert_quiet(kube, namespace)


def test_hand_scaling_is_reverted_to_the_autoscalers_decision(
    plane: ControlPlane, kube: client.ApiClient, namespace: str, tmp_path: Path, operators: list[OperatorProcess]
) -> None:
    """Hand edits of spec.replicas (up, to 0), then a foreign autoscaler setting it every 0.1 s over several
    ticks: the Deployment returns to the autoscaler's decision, which never adopts the foreign count."""
    op = _operator(plane, namespace, tmp_path, operators)
    _create(kube, namespace, _llmd("chat", minimum=2, maximum=4))
    settle(kube, namespace, {"chat"}, 60)
    apps = client.AppsV1Api(kube)
    for replicas in (4, 0):
        apps.patch_namespaced_deployment_scale("chat", namespace, {"spec": {"replicas": replicas}})
        settle(kube, namespace, {"chat"}, 30, what=f"hand scale to {replicas} reverted")
    desired: set[int] = set()
    until = time.monotonic() + 3 * TICK_S
    while time.monotonic() < until:
        apps.patch_namespaced_deployment_scale("chat", namespace, {"spec": {"replicas": 3}})
        desired.add(_status(kube, namespace, "chat")["desiredReplicas"])
        time.sleep(0.1)
    took = settle(kube, namespace, {"chat"}, 30, what="the foreign scaling undone")
    print(f"reverted {took:.1f} s after the foreign scaler stopped; desiredReplicas seen during the fight: {desired}")
    assert desired == {2}, "the autoscaler adopted a count it did not decide"
    assert _status(kube, namespace, "chat")["desiredReplicas"] == 2
    assert not [e for e in events_for(kube, namespace, "chat") if e["reason"] == "Scaled"]
    assert op.alive() and not crashed(op), crashed(op)


def test_operator_killed_mid_reconcile_resumes_without_duplicates_or_orphans(
    plane: ControlPlane, kube: client.ApiClient, namespace: str, tmp_path: Path, operators: list[OperatorProcess]
) -> None:
    """SIGKILL right after 10 LLMDeployments are created at once, edits while it is down, SIGKILL again while it
    resumes: one Deployment/Service/PDB each, none for the deleted ones, the hand edit undone, statuses true."""
    op = _operator(plane, namespace, tmp_path, operators)
    _create(kube, namespace, _llmd("warm"))
    settle(kube, namespace, {"warm"}, 60, what="warm-up deployment converged (operator is watching)")
    names = {f"m{i}" for i in range(10)}
    with ThreadPoolExecutor(10) as pool:
        list(pool.map(lambda n: _create(kube, namespace, _llmd(n)), sorted(names)))
    apps = client.AppsV1Api(kube)
    wait_for(lambda: len(apps.list_namespaced_deployment(namespace).items) > 1, 30, 0.02, "a first new Deployment")
    op.stop(kill=True)
    at_kill = _items(kube, namespace)
    with_status = {o["metadata"]["name"] for o in at_kill["LLMDeployment"] if (o.get("status") or {}).get("phase")}
    with_deployment = {o["metadata"]["name"] for o in at_kill["Deployment"]}
    print(f"at SIGKILL: {len(with_deployment & names)}/10 Deployments, {len(with_status & names)}/10 statuses")
    assert not names <= with_status, "the kill came after every status was written: not mid-reconcile"

    # While the operator is down: delete one LLMDeployment that has children and one that may not, and scale one
    # Deployment by hand. Garbage collection needs no operator; the hand edit must be undone on restart.
    done = sorted(with_deployment & names)
    gone = {done[0], sorted(names - {done[0]})[-1]}
    for name in gone:
        llmd_api(kube).delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    tampered = done[-1] if done[-1] not in gone else "warm"
    apps.patch_namespaced_deployment_scale(tampered, namespace, {"spec": {"replicas": 3}})
    held = {n: b["metadata"].get("finalizers") for n in gone if (b := get_llmd(kube, namespace, n))}
    print(f"deleted while the operator is down, still there: {held}")  # kopf's finalizer (its timer needs one)
    op.start()
    # ... and killed again while it resumes: the second pass must be as idempotent as the first. It has resumed
    # once it created a missing Deployment or undid the hand edit (a count of Deployments cannot tell: the ones
    # deleted while it was down may balance the ones it creates).
    missing = names - gone - with_deployment

    def resumed() -> bool:
        present = {d.metadata.name for d in apps.list_namespaced_deployment(namespace).items}
        return bool(present & missing) or apps.read_namespaced_deployment_scale(tampered, namespace).spec.replicas == 1

    wait_for(resumed, 60, 0.05, "resuming")
    op.stop(kill=True)
    op.start()
    remaining = (names - gone) | {"warm"}
    took = settle(kube, namespace, remaining, 120, what="converged after the restart")
    print(f"converged {took:.1f} s after the restart")
    assert _status(kube, namespace, tampered)["desiredReplicas"] == 1
    assert_quiet(kube, namespace)
    assert op.alive() and not crashed(op), crashed(op)


def _scaled(kube: client.ApiClient, namespace: str, name: str) -> list[str]:
    return [e["message"] for e in events_for(kube, namespace, name) if e["reason"] == "Scaled"]


def test_two_replicas_only_the_leader_acts_and_the_other_takes_over(
    plane: ControlPlane, kube: client.ApiClient, namespace: str, tmp_path: Path, operators: list[OperatorProcess]
) -> None:
    """Two replicas on one Lease with a (fake) Prometheus: only the leader reconciles and scales, one scale-out
    on a breach is one decision; SIGKILL of the leader hands over within the lease, with no replica jump."""
    with FakePrometheus() as prometheus:
        leader, follower, holder = _elect(plane, kube, namespace, tmp_path, operators, prometheus_url=prometheus.url)
        first = holder()
        for name in ("a", "b"):
            _create(kube, namespace, _llmd(name, up="4s"))
        settle(kube, namespace, {"a", "b"}, 60, metrics=True)
        prometheus.set_p95("a", 0.1)  # p95 TPOT ~99 ms > the 50 ms SLO, for longer than the 4 s up window
        wait_for(lambda: _status(kube, namespace, "a")["desiredReplicas"] > 1, 60, what="a scale-out")
        prometheus.set_p95("a", 0.05)  # back under the SLO (with no headroom for fewer replicas)
        settle(kube, namespace, {"a", "b"}, 60, metrics=True, what="converged after the scale-out")
        scaled = _status(kube, namespace, "a")["lastScale"]
        assert (scaled["from"], scaled["to"]) == (1, 3), scaled
        assert len(_scaled(kube, namespace, "a")) == 1 and not _scaled(kube, namespace, "b")
        did, waited = acted(leader), acted(follower)
        print(f"leader did {did}; follower did {waited}")
        assert did["reconciles"] > 0 and did["up"] == 1 and did["hold"] > 0
        assert waited == {"reconciles": 0, "up": 0, "down": 0, "hold": 0}, "the follower acted"
        assert applied_lines(leader) and not applied_lines(follower), "the follower applied"
        before = fingerprint(kube, namespace)
        transitions = _lease(kube, namespace).lease_transitions or 0

        leader.stop(kill=True)  # no release: the follower must wait out the lease
        killed = time.monotonic()
        wait_for(lambda: holder() not in (None, first), LEASE_SECONDS + RENEW_SECONDS + 10, 0.2, "a takeover")
        takeover = time.monotonic() - killed
        print(
            f"takeover {takeover:.1f} s after SIGKILL of the leader (lease {LEASE_SECONDS} s, retry {RENEW_SECONDS} s)"
        )
        assert holder() == wait_for(lambda: _leading_as(follower), 10, what="the new leader's log line")
        assert takeover <= LEASE_SECONDS + RENEW_SECONDS + 2
        assert _lease(kube, namespace).lease_transitions == transitions + 1
        # the new leader resumes without writing, rolling or scaling anything
        wait_for(lambda: acted(follower)["reconciles"] >= 2 and acted(follower)["hold"] >= 2, 30, what="resumed")
        assert_quiet(kube, namespace)
        assert acted(follower)["up"] == 0 and acted(follower)["down"] == 0
        after = fingerprint(kube, namespace)
        assert after == before, sorted(key for key in before.keys() | after.keys() if before.get(key) != after.get(key))
        client.AppsV1Api(kube).patch_namespaced_deployment_scale("b", namespace, {"spec": {"replicas": 4}})
        _create(kube, namespace, _llmd("c"))
        settle(kube, namespace, {"a", "b", "c"}, 60, metrics=True, what="the new leader handles new work")
        assert len(_scaled(kube, namespace, "a")) == 1 and not _scaled(kube, namespace, "b")
        assert follower.alive() and not crashed(follower), crashed(follower)


def test_gpu_nodes_disappear_and_return(
    plane: ControlPlane, kube: client.ApiClient, namespace: str, tmp_path: Path, operators: list[OperatorProcess]
) -> None:
    """Both A100 nodes carry one 4-GPU pod each; the nodes are deleted (as a cloud provider does), the pods are
    garbage-collected and recreated Pending; status says Unschedulable; the nodes return and so does the service."""
    op = _operator(plane, namespace, tmp_path, operators)
    _create(kube, namespace, _llmd("big", gpu="A100-80GB", count=4, minimum=2, maximum=2))
    settle(kube, namespace, {"big"}, 60)
    core = client.CoreV1Api(kube)
    pods = _items(kube, namespace)["Pod"]
    nodes = sorted({p["spec"]["nodeName"] for p in pods})
    assert nodes == [A100.node_name(0), A100.node_name(1)], nodes
    lost = time.monotonic()
    for node in nodes:
        core.delete_node(node)

    def pending_and_said_so() -> dict[str, Any] | None:
        body = _body(kube, namespace, "big")
        status, degraded = body.get("status") or {}, condition(body, "Degraded") or {}
        said = (status.get("phase"), status.get("readyReplicas"), degraded.get("status"), degraded.get("reason"))
        return body if said == ("Pending", 0, "True", "Unschedulable") else None

    body = wait_for(pending_and_said_so, 120, 1.0, "status Pending, 0 ready, Degraded=True/Unschedulable")
    print(f"status Pending/Unschedulable {time.monotonic() - lost:.1f} s after the nodes were deleted")
    message = _condition(body, "Degraded")["message"]
    print(f"Degraded: {message}")
    assert "nodes are available" in message, message  # the scheduler's own reason, quoted
    assert _condition(body, "Available")["status"] == "False"
    assert body["status"]["desiredReplicas"] == 2, "the autoscaler changed its mind without data"
    live = _items(kube, namespace)["Pod"]
    assert len(live) == 2 and all(p["status"]["phase"] == "Pending" for p in live), "want 2 replacement pods Pending"
    assert {p["metadata"]["uid"] for p in live}.isdisjoint({p["metadata"]["uid"] for p in pods}), "lost pods linger"
    assert any(e["reason"] == "Unschedulable" for e in events_for(kube, namespace, "big"))
    create_nodes(core, [node_manifest(A100, i) for i in range(A100.nodes)])
    wait_nodes_ready(core, nodes, 60)
    took = settle(kube, namespace, {"big"}, 90, what="back after the nodes returned")
    print(f"Ready again {took:.1f} s after the nodes returned")
    assert op.alive() and not crashed(op), crashed(op)
