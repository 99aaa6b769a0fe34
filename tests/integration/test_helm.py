"""The Helm chart with the real helm binary: lint, template, install, upgrade and uninstall on the control plane."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from llmop.render.labels import SELECTOR_LABEL
from llmop_dev.localcluster.binaries import bin_dir
from llmop_dev.localcluster.controlplane import ControlPlane
from llmop_dev.observability.files import RULES_PATH
from llmop_dev.observability.queries import DEPLOYMENT, OPERATOR_JOB
from support.rbac import Rule, can_i, list_rules, service_account_kubeconfig

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "llmop"
# What `llmop run` calls (its RBAC spec), as `kubectl auth can-i --list` shows it, cluster scope, Lease mode.
OPERATOR_PERMISSIONS = {
    "llmdeployments.llmop.io": {"get", "list", "watch", "patch"},
    "llmdeployments.llmop.io/status": {"get", "patch", "update"},
    "llmdeployments.llmop.io/finalizers": {"update"},  # blockOwnerDeletion under OwnerReferencesPermissionEnforcement
    "deployments.apps": {"get", "list", "watch", "create", "patch", "update", "delete"},
    "services": {"get", "list", "watch", "create", "patch", "delete"},
    "poddisruptionbudgets.policy": {"get", "list", "watch", "create", "patch", "delete"},
    "pods": {"get", "list", "watch"},
    "events": {"create", "patch"},
    "events.events.k8s.io": {"create", "patch"},
    "customresourcedefinitions.apiextensions.k8s.io": {"get", "list", "watch"},
    "namespaces": {"get", "list", "watch"},
    "nodes": {"get", "list"},  # gpu.type auto: which GPU types the nodes can schedule
}
MONITORING_KINDS = {"ServiceMonitor", "PodMonitor", "PrometheusRule"}
LLMD_CRD = "llmdeployments.llmop.io"
PEERING_CRDS = ("clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev")
VALUE_SETS = {
    "default": [],
    "namespace-peering": ["--set", "rbac.scope=namespace", "--set", "leaderElection.mode=peering"],
    "single-replica": ["--set", "replicaCount=1", "--set", "monitoring.force=true"],
}


# An HTTP 403 as the clients print it ("(403)", "code': 403", "HTTP 403"), never the
# milliseconds of a log timestamp (",403") or a run of digits inside a name.
STATUS_403 = re.compile(r"(?<![\w,.:-])403(?!\w)")


def refused_by_rbac(log: str) -> bool:
    """Whether an operator log shows the API server refusing a request."""
    return "Forbidden" in log or STATUS_403.search(log) is not None


@dataclass(frozen=True)
class Helm:
    """The helm binary with its config, cache and data kept under a temporary directory."""

    binary: Path
    home: Path

    def run(self, *args: str, kubeconfig: Path | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "HELM_CACHE_HOME": str(self.home / "cache"),
            "HELM_CONFIG_HOME": str(self.home / "config"),
            "HELM_DATA_HOME": str(self.home / "data"),
        }
        argv = [str(self.binary), *args, *([f"--kubeconfig={kubeconfig}"] if kubeconfig else [])]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def template(self, *args: str) -> list[dict[str, Any]]:
        out = self.run("template", "rel", str(CHART), "--namespace", "llmop-system", *args).stdout
        return [doc for doc in yaml.safe_load_all(out) if doc]


def _required_or_skip(message: str) -> None:
    if os.environ.get("REQUIRE_K8S") == "1":
        pytest.fail(f"REQUIRE_K8S=1 but {message}", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="module")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    for candidate in (bin_dir() / "helm", *sorted(bin_dir().parent.glob("*/helm"))):
        if os.access(candidate, os.X_OK):
            return Helm(candidate, tmp_path_factory.mktemp("helm"))
    found = shutil.which("helm")
    if found:
        return Helm(Path(found), tmp_path_factory.mktemp("helm"))
    _required_or_skip(f"helm is not built ({bin_dir() / 'helm'}; scripts/k8s-bins.sh)")
    raise AssertionError("unreachable")


def _kinds(docs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for doc in docs:
        found.setdefault(doc["kind"], []).append(doc)
    return found


@pytest.mark.parametrize("values", list(VALUE_SETS), ids=list(VALUE_SETS))
def test_helm_lint_strict(helm: Helm, values: str) -> None:
    result = helm.run("lint", str(CHART), "--strict", *VALUE_SETS[values])
    assert "0 chart(s) failed" in result.stdout


def test_template_without_monitoring_api_skips_prometheus_operator_objects(helm: Helm) -> None:
    kinds = _kinds(helm.template())
    assert not MONITORING_KINDS & set(kinds)
    assert {"Deployment", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Service"} <= set(kinds)
    assert {"PodDisruptionBudget", "ConfigMap", "Lease", "Role", "RoleBinding"} <= set(kinds)


def test_template_with_monitoring_api(helm: Helm) -> None:
    for args in (["--api-versions", "monitoring.coreos.com/v1"], ["--set", "monitoring.force=true"]):
        kinds = _kinds(helm.template(*args))
        assert set(kinds) >= MONITORING_KINDS, args
    [rule] = kinds["PrometheusRule"]
    assert rule["spec"] == yaml.safe_load((ROOT / RULES_PATH).read_text())
    [monitor] = kinds["ServiceMonitor"]
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["honorLabels"] is True
    assert {"action": "replace", "targetLabel": "job", "replacement": OPERATOR_JOB} in endpoint["relabelings"]
    [pods] = kinds["PodMonitor"]
    relabelings = pods["spec"]["podMetricsEndpoints"][0]["relabelings"]
    meta_label = "__meta_kubernetes_pod_label_" + "".join(c if c.isalnum() else "_" for c in SELECTOR_LABEL)
    assert {"action": "replace", "sourceLabels": [meta_label], "targetLabel": DEPLOYMENT} in relabelings
    assert {r["targetLabel"] for r in relabelings} >= {"namespace", "pod", DEPLOYMENT}
    # vLLM's names keep their colons: text 0.0.4 asked for first, and a rename where OpenMetrics escaped them
    assert pods["spec"]["scrapeProtocols"] == ["PrometheusText0.0.4", "OpenMetricsText1.0.0"]
    [rename] = pods["spec"]["podMetricsEndpoints"][0]["metricRelabelings"]
    assert (rename["action"], rename["sourceLabels"], rename["targetLabel"]) == ("replace", ["__name__"], "__name__")
    renamed = {
        name: re.sub(f"^(?:{rename['regex']})$", rename["replacement"].replace("$1", r"\1"), name)
        for name in ("vllm_inter_token_latency_seconds_bucket", "vllm:num_requests_running", "tgi_queue_size")
    }
    assert renamed == {
        "vllm_inter_token_latency_seconds_bucket": "vllm:inter_token_latency_seconds_bucket",
        "vllm:num_requests_running": "vllm:num_requests_running",
        "tgi_queue_size": "tgi_queue_size",
    }
    [configmap] = kinds["ConfigMap"]
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"


def test_podmonitor_selects_the_engine_pods_llmop_renders(helm: Helm) -> None:
    rendered = subprocess.run(
        [sys.executable, "-m", "llmop.cli", "render", "-f", str(ROOT / "examples" / "llama31-8b-h100-fp8-vllm.yaml")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=True,
    ).stdout
    [engine] = [d for d in yaml.safe_load_all(rendered) if d and d["kind"] == "Deployment"]
    template = engine["spec"]["template"]
    labels = template["metadata"]["labels"]
    ports = {p["name"] for c in template["spec"]["containers"] for p in c.get("ports", [])}
    [monitor] = _kinds(helm.template("--set", "monitoring.force=true"))["PodMonitor"]
    selector = monitor["spec"]["selector"]
    assert selector["matchLabels"].items() <= labels.items()
    for expression in selector["matchExpressions"]:
        assert expression["operator"] == "Exists" and expression["key"] in labels
    assert monitor["spec"]["podMetricsEndpoints"][0]["port"] in ports


def test_operator_pod_is_restricted_and_probed(helm: Helm) -> None:
    for args in ([], VALUE_SETS["namespace-peering"]):
        [deployment] = _kinds(helm.template(*args))["Deployment"]
        spec = deployment["spec"]["template"]["spec"]
        [container] = spec["containers"]
        assert deployment["spec"]["replicas"] == 2
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        security = container["securityContext"]
        assert security["allowPrivilegeEscalation"] is False and security["readOnlyRootFilesystem"] is True
        assert security["capabilities"] == {"drop": ["ALL"]} and security["runAsNonRoot"] is True
        assert container["resources"]["requests"] and container["resources"]["limits"]
        ports = {p["name"] for p in container["ports"]}
        for probe in ("livenessProbe", "readinessProbe"):
            assert container[probe]["httpGet"]["port"] in ports
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert {"LLMOP_PROMETHEUS_URL", "LLMOP_IMAGE_REGISTRY", "LLMOP_NAMESPACE", "LLMOP_METRICS_PORT"} <= set(env)
        assert "LLMOP_HEALTH_PORT" in env
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
        assert env["LLMOP_ALLOWED_PROMETHEUS_URL_PREFIXES"] == ""  # only operator.prometheusUrl
        assert env["LLMOP_ALLOW_CUSTOM_PROBE_ENDPOINTS"] == "false"
        assert env["LLMOP_PROMETHEUS_INSECURE_SKIP_VERIFY"] == "false" and "LLMOP_PROMETHEUS_CA_FILE" not in env
        if args:
            assert env["LLMOP_PEERING"] == "rel-llmop" and env["LLMOP_NAMESPACE"] == "llmop-system"
        else:
            assert env["LLMOP_NAMESPACE"] == ""


def test_rbac_is_the_same_rule_set_in_both_scopes(helm: Helm) -> None:
    def rules(kinds: dict[str, list[dict[str, Any]]], kind: str) -> list[dict[str, Any]]:
        return [rule for doc in kinds.get(kind, []) for rule in doc["rules"]]

    cluster = _kinds(helm.template())
    namespaced = _kinds(helm.template("--set", "rbac.scope=namespace"))
    namespaced_all = [r for r in rules(namespaced, "Role") if "leases" not in r["resources"]]
    namespaced_all += rules(namespaced, "ClusterRole")
    cluster_all = rules(cluster, "ClusterRole")
    assert sorted(map(str, cluster_all)) == sorted(map(str, namespaced_all))
    assert "RoleBinding" in namespaced and "ClusterRoleBinding" in namespaced


def test_values_schema_rejects_bad_values(helm: Helm) -> None:
    for bad in (
        "rbac.scope=everywhere",
        "leaderElection.mode=zookeeper",
        "replicaCount=0",
        "nosuchkey=1",
        "operator.outbound.allowedPrometheusUrlPrefixes={thanos:9090}",
        "operator.loopStallSeconds=0",
    ):
        result = helm.run("template", "rel", str(CHART), "--set", bad, check=False)
        assert result.returncode != 0 and "schema" in result.stderr.lower(), (bad, result.stderr)


# ---- on the local control plane -------------------------------------------------------------------------------


def _wait(probe: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.5)


@dataclass(frozen=True)
class Cluster:
    """kubectl against the control plane as admin."""

    kubeconfig: Path
    kubectl: Path

    def run(self, *args: str, check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        argv = [str(self.kubectl), f"--kubeconfig={self.kubeconfig}", *args]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=120, input=stdin)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def existing(self, manifest: str) -> list[str]:
        """The objects of a multi-document manifest that exist now (kind/name)."""
        out = self.run("get", "-f", "-", "--ignore-not-found", "-o", "name", stdin=manifest).stdout
        return out.split()


@pytest.fixture
def cluster(control_plane: ControlPlane) -> Cluster:
    binaries = control_plane.binaries
    kubectl = binaries.kubectl if binaries is not None else bin_dir() / "kubectl"
    return Cluster(Path(control_plane.kubeconfig), Path(kubectl))


def _expected_rows(docs: list[dict[str, Any]]) -> dict[tuple[str, tuple[str, ...]], frozenset[str]]:
    """What `kubectl auth can-i --list` should show for the rules of these Roles/ClusterRoles."""
    rows: dict[tuple[str, tuple[str, ...]], set[str]] = {}
    for doc in docs:
        for rule in doc["rules"]:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    base, _, sub = resource.partition("/")  # kubectl shows plural.group/subresource
                    shown = (f"{base}.{group}" if group else base) + (f"/{sub}" if sub else "")
                    key = (shown, tuple(rule.get("resourceNames", [])))
                    rows.setdefault(key, set()).update(rule["verbs"])
    return {key: frozenset(verbs) for key, verbs in rows.items()}


def _actual_rows(rules: list[Rule]) -> dict[tuple[str, tuple[str, ...]], frozenset[str]]:
    rows: dict[tuple[str, tuple[str, ...]], set[str]] = {}
    for rule in rules:
        if rule.resource.startswith("selfsubject"):  # granted to every authenticated user
            continue
        rows.setdefault((rule.resource, rule.resource_names), set()).update(rule.verbs)
    return {key: frozenset(verbs) for key, verbs in rows.items()}


def _release_docs(helm: Helm, release: str, namespace: str, kubeconfig: Path) -> tuple[str, list[dict[str, Any]]]:
    manifest = helm.run("get", "manifest", release, "-n", namespace, kubeconfig=kubeconfig).stdout
    return manifest, [doc for doc in yaml.safe_load_all(manifest) if doc]


def test_install_upgrade_uninstall(
    helm: Helm, cluster: Cluster, control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    kubeconfig = cluster.kubeconfig
    release = f"llmop-{namespace}"  # fullname == release; unique cluster-scoped names per test
    cluster.run("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted")

    # install: cluster scope, Lease leader election; the pods pass the restricted Pod Security admission
    # and kwok makes them Ready on the fleet's CPU node
    started = time.monotonic()
    helm.run("install", release, str(CHART), "-n", namespace, "--wait", "--timeout", "180s", kubeconfig=kubeconfig)
    install_seconds = time.monotonic() - started
    first_manifest, first = _release_docs(helm, release, namespace, kubeconfig)
    assert len(cluster.existing(first_manifest)) == len(first)
    cluster.run("get", "crd", LLMD_CRD)
    assert not [d for d in first if d["kind"] == "CustomResourceDefinition"]  # Lease mode: no kopf CRDs
    ready = cluster.run("get", "deploy", release, "-n", namespace, "-o", "jsonpath={.status.readyReplicas}").stdout
    assert ready == "2"

    # the ServiceAccount's own token can do exactly what the chart grants, and no more
    sa_config = service_account_kubeconfig(kubeconfig, namespace, release, tmp_path / "sa.kubeconfig", cluster.kubectl)
    roles = [d for d in first if d["kind"] in ("ClusterRole", "Role")]
    granted = _actual_rows(list_rules(sa_config, namespace, cluster.kubectl))
    assert granted == _expected_rows(roles)
    expected = {(resource, ()): frozenset(verbs) for resource, verbs in OPERATOR_PERMISSIONS.items()}
    expected[("leases.coordination.k8s.io", (release,))] = frozenset({"get", "update"})
    assert granted == expected
    assert can_i(sa_config, "patch", "llmdeployments.llmop.io", "default", cluster.kubectl, subresource="status")
    assert can_i(sa_config, "watch", "deployments.apps", "default", cluster.kubectl)
    assert can_i(sa_config, "list", "nodes", None, cluster.kubectl)
    assert can_i(sa_config, "update", f"leases.coordination.k8s.io/{release}", namespace, cluster.kubectl)
    for verb, resource, where in (
        ("get", "secrets", namespace),
        ("create", "llmdeployments.llmop.io", "default"),
        ("delete", "llmdeployments.llmop.io", "default"),
        ("delete", "pods", "default"),
        ("deletecollection", "deployments.apps", "default"),
        ("list", "configmaps", "default"),
        ("patch", "nodes", None),  # nodes are read (gpu.type auto), never written
        ("update", "leases.coordination.k8s.io/other", namespace),
        ("create", "leases.coordination.k8s.io", namespace),
    ):
        assert not can_i(sa_config, verb, resource, where, cluster.kubectl), (verb, resource, where)

    # upgrade: namespace scope, kopf peering, 3 replicas; objects the new revision drops are deleted
    helm.run(
        "upgrade", release, str(CHART), "-n", namespace, "--wait", "--timeout", "180s",
        "--set", "rbac.scope=namespace", "--set", "leaderElection.mode=peering", "--set", "replicaCount=3",
        kubeconfig=kubeconfig,
    )  # fmt: skip
    second_manifest, second = _release_docs(helm, release, namespace, kubeconfig)
    assert len(cluster.existing(second_manifest)) == len(second)
    dropped = {(d["kind"], d["metadata"]["name"]) for d in first} - {(d["kind"], d["metadata"]["name"]) for d in second}
    assert ("Lease", release) in dropped and ("ClusterRole", release) in dropped
    assert not set(cluster.existing(first_manifest)) - set(cluster.existing(second_manifest))
    assert cluster.run("get", "kopfpeering", release, "-n", namespace, "-o", "name").stdout.strip()
    for crd in PEERING_CRDS:  # installed by the upgrade to peering mode (or already there, then left alone)
        cluster.run("get", "crd", crd)
    assert can_i(sa_config, "list", "llmdeployments.llmop.io", namespace, cluster.kubectl)
    assert not can_i(sa_config, "list", "llmdeployments.llmop.io", "default", cluster.kubectl)

    # uninstall: nothing of either revision is left, pods and the peering object (a pre-delete hook) included;
    # the CRDs stay
    helm.run("uninstall", release, "-n", namespace, "--wait", "--timeout", "120s", kubeconfig=kubeconfig)
    kept = sorted(f"customresourcedefinition.apiextensions.k8s.io/{crd}" for crd in PEERING_CRDS)
    assert cluster.existing(first_manifest) == [] and sorted(cluster.existing(second_manifest)) == kept
    selector = f"app.kubernetes.io/instance={release}"
    namespaced = "all,configmaps,serviceaccounts,roles,rolebindings,leases,poddisruptionbudgets,kopfpeerings"

    def nothing_left() -> bool:
        left = cluster.run("get", namespaced, "-n", namespace, "-l", selector, "-o", "name").stdout.split()
        left += cluster.run(
            "get", "clusterroles,clusterrolebindings,clusterkopfpeerings", "-l", selector, "-o", "name"
        ).stdout.split()
        return not left

    _wait(nothing_left, 90, f"the objects of {release} to be garbage-collected")
    for crd in (LLMD_CRD, *PEERING_CRDS):  # kept: crds/ as Helm does, the peering CRDs by resource-policy
        cluster.run("get", "crd", crd)
    print(f"helm install --wait took {install_seconds:.1f} s")


MONITORING_CRDS = {
    "ServiceMonitor": "servicemonitors",
    "PodMonitor": "podmonitors",
    "PrometheusRule": "prometheusrules",
}


def _stub_crd(kind: str, plural: str) -> dict[str, Any]:
    """A schemaless stand-in for a Prometheus Operator CRD: enough for the API to serve monitoring.coreos.com/v1."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.monitoring.coreos.com"},
        "spec": {
            "group": "monitoring.coreos.com",
            "scope": "Namespaced",
            "names": {"kind": kind, "plural": plural, "singular": kind.lower(), "listKind": f"{kind}List"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
                }
            ],
        },
    }


def test_install_creates_monitoring_objects_when_the_api_exists(helm: Helm, cluster: Cluster, namespace: str) -> None:
    stubs = yaml.safe_dump_all([_stub_crd(kind, plural) for kind, plural in MONITORING_CRDS.items()])
    if cluster.run("get", "crd", "servicemonitors.monitoring.coreos.com", check=False).returncode == 0:
        pytest.skip("a real Prometheus Operator is installed; not replacing its CRDs")
    cluster.run("apply", "-f", "-", stdin=stubs)
    try:
        for plural in MONITORING_CRDS.values():
            cluster.run("wait", "--for=condition=Established", f"crd/{plural}.monitoring.coreos.com", "--timeout=60s")
        release = f"llmop-{namespace}"
        helm.run("install", release, str(CHART), "-n", namespace, kubeconfig=cluster.kubeconfig)
        manifest, docs = _release_docs(helm, release, namespace, cluster.kubeconfig)
        assert {d["kind"] for d in docs} >= MONITORING_KINDS
        assert len(cluster.existing(manifest)) == len(docs)
        helm.run("uninstall", release, "-n", namespace, "--wait", kubeconfig=cluster.kubeconfig)
        assert cluster.existing(manifest) == []
    finally:
        _remove_stub_crds(cluster, stubs)


def _remove_stub_crds(cluster: Cluster, stubs: str) -> None:
    """Delete the stub CRDs and wait until discovery no longer serves monitoring.coreos.com/v1.

    Without the wait a later `helm install` sees the group in discovery (Capabilities) while its CRDs are being
    deleted, renders the monitoring objects, and fails to map them.
    """
    cluster.run("delete", "-f", "-", "--ignore-not-found", "--wait=true", "--timeout=60s", stdin=stubs, check=False)
    deadline = time.monotonic() + 60
    while "monitoring.coreos.com/v1" in cluster.run("api-versions").stdout.split():
        assert time.monotonic() < deadline, "monitoring.coreos.com/v1 is still served 60 s after its CRDs were deleted"
        time.sleep(0.5)


def test_operator_reconciles_with_only_the_charts_service_account(
    helm: Helm, cluster: Cluster, control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    """`llmop run` with the chart's ServiceAccount token (not admin) holds the chart's Lease and deploys an example."""
    from support.operator import OperatorProcess, condition, get_llmd, wait_for

    release = f"llmop-{namespace}"  # contains the chart name: fullname == release
    helm.run("install", release, str(CHART), "-n", namespace, "--wait", "--timeout", "180s",
             kubeconfig=cluster.kubeconfig)  # fmt: skip
    try:
        sa_config = service_account_kubeconfig(
            cluster.kubeconfig, namespace, release, tmp_path / "sa.kubeconfig", cluster.kubectl
        )
        cluster.run("apply", "-n", namespace, "-f", str(ROOT / "examples/llama31-8b-h100-fp8-vllm.yaml"))
        operator = OperatorProcess(sa_config, tmp_path / "operator.log", leader_elect=True,
                                   lease_namespace=namespace, lease_name=release).start()  # fmt: skip
        try:
            from kubernetes import config as kube_config

            admin = kube_config.new_client_from_config(config_file=str(cluster.kubeconfig))
            body = wait_for(
                lambda: (b := get_llmd(admin, namespace, "llama31-8b-fp8"))
                and (c := condition(b, "Available"))
                and c["status"] == "True"
                and b,
                120, what="Available=True under the chart's RBAC")  # fmt: skip
            assert body["status"]["phase"] == "Ready"
            holder = cluster.run("get", "lease", release, "-n", namespace, "-o",
                                 "jsonpath={.spec.holderIdentity}").stdout  # fmt: skip
            assert holder, "the operator did not take the chart's Lease"
            log = operator.log()
            assert not refused_by_rbac(log), log[-3000:]
        finally:
            operator.stop()
    finally:
        helm.run("uninstall", release, "-n", namespace, "--wait", kubeconfig=cluster.kubeconfig, check=False)
