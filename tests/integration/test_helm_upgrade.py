"""The chart's upgrade path and optional parts with the real helm binary: `global` accepted, kopf's peering CRDs
and object only in peering mode, the hub values, and the README's CRD upgrade step on the control plane."""
# ruff: noqa: F811  (the helm and cluster fixtures are imported from test_helm and requested by name)

from __future__ import annotations

import copy
import shlex
import subprocess
from pathlib import Path
from typing import Any

import yaml
from test_helm import CHART, ROOT, Cluster, Helm, _kinds, cluster, helm  # noqa: F401

LLMD_CRD = "llmdeployments.llmop.io"
PEERING_CRDS = ("clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev")
KEEP = {"helm.sh/resource-policy": "keep"}


def test_values_schema_accepts_global_and_checks_the_new_values(helm: Helm) -> None:
    docs = helm.template("--set", "global.imageRegistry=registry.example", "--set-json", 'global.labels={"a":"b"}')
    assert "Deployment" in _kinds(docs)
    for bad in ("hub.endpoint=ftp://x", "crds.peering=maybe", "hub.nosuchkey=1"):
        result = helm.run("template", "rel", str(CHART), "--set", bad, check=False)
        assert result.returncode != 0 and "schema" in result.stderr.lower(), (bad, result.stderr)


def test_peering_crds_and_object_only_in_peering_mode(helm: Helm) -> None:
    lease = helm.template()
    assert [d for d in lease if d["kind"] == "CustomResourceDefinition" or d["apiVersion"].startswith("kopf.dev")] == []
    for scope, kind in (("cluster", "ClusterKopfPeering"), ("namespace", "KopfPeering")):
        kinds = _kinds(helm.template("--set", "leaderElection.mode=peering", "--set", f"rbac.scope={scope}"))
        crds = kinds["CustomResourceDefinition"]
        assert sorted(d["metadata"]["name"] for d in crds) == sorted(PEERING_CRDS)
        assert all(d["metadata"]["annotations"] == KEEP for d in crds)
        install, delete = kinds[kind]
        assert install["metadata"]["annotations"] == {
            "helm.sh/hook": "post-install,post-upgrade",
            "helm.sh/hook-delete-policy": "before-hook-creation",
        }
        assert delete["metadata"]["annotations"] == {
            "helm.sh/hook": "pre-delete",
            "helm.sh/hook-delete-policy": "before-hook-creation,hook-succeeded",
        }
        assert install["metadata"]["name"] == delete["metadata"]["name"] == "rel-llmop"
    unmanaged = _kinds(helm.template("--set", "leaderElection.mode=peering", "--set", "crds.peering=false"))
    assert "CustomResourceDefinition" not in unmanaged and len(unmanaged["ClusterKopfPeering"]) == 2
    # Helm installs everything in crds/ in every mode: only the LLMDeployment CRD is there
    assert [path.name for path in (CHART / "crds").glob("*.yaml")] == ["llmop.io_llmdeployments.yaml"]


def test_hub_values(helm: Helm) -> None:
    default = _kinds(helm.template())
    assert not [r for d in default["ClusterRole"] for r in d["rules"] if "secrets" in r["resources"]]
    [deployment] = default["Deployment"]
    assert "HF_ENDPOINT" not in {e["name"] for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    kinds = _kinds(helm.template("--set", "hub.readTokenSecrets=true", "--set", "hub.endpoint=http://hub-mirror:8080"))
    secrets = [r for d in kinds["ClusterRole"] for r in d["rules"] if "secrets" in r["resources"]]
    assert secrets == [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]
    [deployment] = kinds["Deployment"]
    env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["HF_ENDPOINT"] == "http://hub-mirror:8080"


# ---- on the local control plane -------------------------------------------------------------------------------


def _documented_crd_step() -> list[str]:
    """The README's CRD upgrade command, as written there."""
    section = (ROOT / "README.md").read_text().split("### Upgrade", 1)[1].split("\n## ", 1)[0]
    [line] = [line for line in section.splitlines() if line.startswith("kubectl apply --server-side")]
    return shlex.split(line)


def _spec_properties(cluster: Cluster) -> dict[str, Any]:
    live = yaml.safe_load(cluster.run("get", "crd", LLMD_CRD, "-o", "yaml").stdout)
    properties: dict[str, Any] = live["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]
    spec: dict[str, Any] = properties["spec"]["properties"]
    return spec


def _schema_of(crd: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    return spec


def test_crd_upgrade_with_the_documented_server_side_apply(
    helm: Helm, cluster: Cluster, crd: str, namespace: str
) -> None:
    """Helm never upgrades crds/: an older CRD stays through `helm upgrade` until the README's step applies it."""
    current = yaml.safe_load((CHART / "crds" / "llmop.io_llmdeployments.yaml").read_text())
    old = copy.deepcopy(current)
    del _schema_of(old)["engineArgs"]  # an older release's schema, without a field the new one has
    cluster.run(
        "apply", "--server-side", "--force-conflicts", "--field-manager=old-llmop", "-f", "-",
        stdin=yaml.safe_dump(old),
    )  # fmt: skip
    assert "engineArgs" not in _spec_properties(cluster)
    release = f"crd-{namespace}"
    kubeconfig = cluster.kubeconfig
    try:
        helm.run("install", release, str(CHART), "-n", namespace, "--set", "replicaCount=1", kubeconfig=kubeconfig)
        helm.run("upgrade", release, str(CHART), "-n", namespace, "--reuse-values", kubeconfig=kubeconfig)
        assert "engineArgs" not in _spec_properties(cluster)  # what users saw: CRDs are never upgraded by Helm

        argv = _documented_crd_step()
        assert argv[:4] == ["kubectl", "apply", "--server-side", "--force-conflicts"]
        subprocess.run(
            [str(cluster.kubectl), f"--kubeconfig={kubeconfig}", *argv[1:]],
            cwd=ROOT, check=True, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        helm.run("upgrade", release, str(CHART), "-n", namespace, "--reuse-values", kubeconfig=kubeconfig)
        assert _spec_properties(cluster) == _schema_of(current)
    finally:
        helm.run("uninstall", release, "-n", namespace, "--wait", "--timeout", "120s", kubeconfig=kubeconfig,
                 check=False)  # fmt: skip
        cluster.run("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
        assert Path(ROOT / "crds" / "llmop.io_llmdeployments.yaml").is_file()
