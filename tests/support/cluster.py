"""Pytest fixtures for the local control plane: `control_plane`, `kube` and `namespace`."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from llmop_dev.localcluster.binaries import BinariesMissing, find_binaries
from llmop_dev.localcluster.controlplane import ControlPlane
from llmop_dev.localcluster.nodes import DEFAULT_FLEET

REQUIRE_ENV = "REQUIRE_K8S"

# One control plane per pytest process, shared by every conftest that imports these fixtures
# (tests/integration and tests/e2e each get their own session fixture instance; they share this).
_shared: ControlPlane | None = None
_users = 0


def _binaries_or_skip() -> None:
    try:
        find_binaries()
    except BinariesMissing as error:
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{REQUIRE_ENV}=1 but {error}", pytrace=False)
        pytest.skip(str(error))


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """etcd + kube-apiserver + KCM + scheduler + kwok with DEFAULT_FLEET Ready; sets KUBECONFIG."""
    global _shared, _users
    _binaries_or_skip()
    if _shared is None:
        plane = ControlPlane(tmp_path_factory.mktemp("controlplane"), fleet=DEFAULT_FLEET)
        plane.start()
        _shared = plane
    plane = _shared
    _users += 1
    previous = os.environ.get("KUBECONFIG")
    os.environ["KUBECONFIG"] = str(plane.kubeconfig)
    try:
        yield plane
    finally:
        _users -= 1
        if _users == 0:
            if previous is None:
                os.environ.pop("KUBECONFIG", None)
            else:
                os.environ["KUBECONFIG"] = previous
            plane.stop()
            _shared = None


@pytest.fixture(scope="session")
def kube(control_plane: ControlPlane) -> Iterator[client.ApiClient]:
    """A kubernetes ApiClient with the admin (system:masters) credentials of the control plane."""
    with control_plane.api_client() as api_client:
        yield api_client


@pytest.fixture
def namespace(kube: client.ApiClient) -> Iterator[str]:
    """A fresh namespace `t-<uuid8>` whose default ServiceAccount exists; deleted (no wait) afterwards."""
    api = client.CoreV1Api(kube)
    name = f"t-{uuid.uuid4().hex[:8]}"
    api.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    deadline = time.monotonic() + 60
    while True:
        try:
            api.read_namespaced_service_account("default", name)
            break
        except ApiException as error:
            if error.status != 404 or time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    try:
        yield name
    finally:
        api.delete_namespace(name, propagation_policy="Background")
