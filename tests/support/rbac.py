"""ServiceAccount credentials on the local control plane: a kubeconfig that carries only the SA's token."""

from __future__ import annotations

import base64
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml

LOCAL_HOSTS = ("127.0.0.1", "localhost")


@dataclass(frozen=True)
class Rule:
    """One row of `kubectl auth can-i --list`: a resource (plural.group) and the verbs granted on it."""

    resource: str
    resource_names: tuple[str, ...]
    verbs: frozenset[str]


def _current_cluster(config: dict[str, Any]) -> dict[str, Any]:
    context_name = config["current-context"]
    context = next(c["context"] for c in config["contexts"] if c["name"] == context_name)
    return next(c["cluster"] for c in config["clusters"] if c["name"] == context["cluster"])


def _ca_data(cluster: dict[str, Any], base: Path) -> str:
    if cluster.get("certificate-authority-data"):
        return str(cluster["certificate-authority-data"])
    path = Path(cluster["certificate-authority"])
    path = path if path.is_absolute() else base / path
    return base64.b64encode(path.read_bytes()).decode()


def mint_token(
    admin_kubeconfig: Path, namespace: str, service_account: str, kubectl: Path | str = "kubectl", seconds: int = 3600
) -> str:
    """A bound token for the ServiceAccount (TokenRequest API, via `kubectl create token`)."""
    result = subprocess.run(
        [
            str(kubectl),
            f"--kubeconfig={admin_kubeconfig}",
            "-n",
            namespace,
            "create",
            "token",
            service_account,
            f"--duration={seconds}s",
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result.stdout.strip()


def service_account_kubeconfig(
    admin_kubeconfig: Path,
    namespace: str,
    service_account: str,
    out: Path,
    kubectl: Path | str = "kubectl",
    seconds: int = 3600,
) -> Path:
    """Write `out`: a kubeconfig for 127.0.0.1 whose only credential is a token of `namespace/service_account`.

    Run the operator with it (KUBECONFIG=out llmop run ...) to prove it needs no more than the chart's RBAC.
    """
    admin_kubeconfig = Path(admin_kubeconfig)
    config = yaml.safe_load(admin_kubeconfig.read_text())
    cluster = _current_cluster(config)
    host = urlparse(cluster["server"]).hostname
    if host not in LOCAL_HOSTS:
        raise ValueError(f"refusing a kubeconfig for {cluster['server']}: only the local control plane (127.0.0.1)")
    server = cluster["server"].replace("//localhost", "//127.0.0.1")
    token = mint_token(admin_kubeconfig, namespace, service_account, kubectl, seconds)
    user = f"system:serviceaccount:{namespace}:{service_account}"
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "local",
                "cluster": {"server": server, "certificate-authority-data": _ca_data(cluster, admin_kubeconfig.parent)},
            }
        ],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": service_account, "context": {"cluster": "local", "user": user, "namespace": namespace}}],
        "current-context": service_account,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(kubeconfig, sort_keys=False))
    out.chmod(0o600)
    return out


def can_i(
    kubeconfig: Path,
    verb: str,
    resource: str,
    namespace: str | None,
    kubectl: Path | str = "kubectl",
    subresource: str | None = None,
) -> bool:
    """`kubectl auth can-i VERB RESOURCE[/NAME]` with these credentials (namespace None: cluster scope)."""
    scope = ["-n", namespace] if namespace else []
    extra = [f"--subresource={subresource}"] if subresource else []
    result = subprocess.run(
        [str(kubectl), f"--kubeconfig={kubeconfig}", "auth", "can-i", verb, resource, *scope, *extra],
        capture_output=True,
        text=True,
        timeout=60,
    )
    answer = result.stdout.strip()
    if answer not in ("yes", "no"):
        raise RuntimeError(f"kubectl auth can-i {verb} {resource}: {result.stdout}{result.stderr}")
    return answer == "yes"


def list_rules(kubeconfig: Path, namespace: str, kubectl: Path | str = "kubectl") -> list[Rule]:
    """`kubectl auth can-i --list -n NAMESPACE`, parsed; non-resource URL rows are left out."""
    result = subprocess.run(
        [str(kubectl), f"--kubeconfig={kubeconfig}", "auth", "can-i", "--list", "-n", namespace, "--no-headers"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    rules: list[Rule] = []
    for line in result.stdout.splitlines():
        # columns: Resources, Non-Resource URLs, Resource Names, Verbs ("[]" when empty), space-aligned
        parts = line.split("[", 1)
        resource = parts[0].strip()
        if not resource or len(parts) < 2:
            continue
        brackets = ["[" + chunk for chunk in parts[1].split("[")]
        if len(brackets) != 3:
            continue
        _urls, names, verbs = (chunk.strip().strip("[]").split() for chunk in brackets)
        rules.append(Rule(resource, tuple(names), frozenset(verbs)))
    return rules
