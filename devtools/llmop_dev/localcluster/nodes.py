"""The simulated fleet: kwok fake Nodes with GFD labels, nvidia.com/gpu capacity and the GPU taint."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from llmop.catalog.gpus import GPU_RESOURCE, GPUS, node_labels

KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"
KWOK_NODE_VALUE = "fake"  # kwok runs with --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake
KWOK_TYPE_LABEL = "type"
KWOK_TYPE_VALUE = "kwok"
POOL_LABEL = "llmop.dev/pool"  # a label prefix must be a DNS subdomain: no `_`
INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"
NOT_READY_TAINT = "node.kubernetes.io/not-ready"
# GPU node pools are commonly tainted so that only pods asking for GPUs land there (GKE adds this exact
# taint to GPU node pools; EKS/AKS users add it by convention). The operator's renderer adds the matching
# toleration {key: nvidia.com/gpu, operator: Exists, effect: NoSchedule} to every GPU pod.
GPU_TAINT: dict[str, str] = {"key": GPU_RESOURCE, "value": "present", "effect": "NoSchedule"}


@dataclass(frozen=True)
class NodePool:
    """`nodes` identical nodes, each with `gpus_per_node` GPUs of catalog type `gpu` (None: CPU only)."""

    gpu: str | None
    nodes: int
    gpus_per_node: int
    instance_type: str
    cpu: str
    memory: str
    pods: int = 110

    def __post_init__(self) -> None:
        if self.gpu is not None and self.gpu not in GPUS:
            raise ValueError(f"unknown GPU type {self.gpu!r}; known: {', '.join(GPUS)}")
        if (self.gpu is None) != (self.gpus_per_node == 0) or self.nodes < 0:
            raise ValueError(f"inconsistent node pool {self}")

    @property
    def name(self) -> str:
        """Pool name as used in node names and the llmop.dev/pool label, e.g. `h100-80gb-x8` or `cpu`."""
        return "cpu" if self.gpu is None else f"{self.gpu.lower()}-x{self.gpus_per_node}"

    def node_name(self, index: int) -> str:
        return f"kwok-{self.name}-{index}"

    @property
    def total_gpus(self) -> int:
        return self.nodes * self.gpus_per_node


# 11 nodes, 43 GPUs; instance shapes follow the cloud SKUs named in instance_type.
DEFAULT_FLEET: tuple[NodePool, ...] = (
    NodePool("H100-80GB", 2, 8, "p5.48xlarge", cpu="192", memory="2048Gi"),
    NodePool("H200", 1, 8, "p5e.48xlarge", cpu="192", memory="2048Gi"),
    NodePool("A100-80GB", 2, 4, "a2-ultragpu-4g", cpu="48", memory="680Gi"),
    NodePool("L40S", 1, 4, "g6e.24xlarge", cpu="96", memory="768Gi"),
    NodePool("L4", 2, 1, "g2-standard-16", cpu="16", memory="64Gi"),
    NodePool("A10G", 1, 1, "g5.4xlarge", cpu="16", memory="64Gi"),
    NodePool("T4", 1, 4, "g4dn.12xlarge", cpu="48", memory="192Gi"),
    NodePool(None, 1, 0, "m6i.4xlarge", cpu="16", memory="64Gi"),
)


def node_manifest(pool: NodePool, index: int) -> dict[str, Any]:
    """A kwok-managed fake Node of `pool`; kwok keeps the given capacity and adds conditions."""
    name = pool.node_name(index)
    labels = {
        KWOK_TYPE_LABEL: KWOK_TYPE_VALUE,
        POOL_LABEL: pool.name,
        INSTANCE_TYPE_LABEL: pool.instance_type,
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
    }
    resources = {"cpu": pool.cpu, "memory": pool.memory, "pods": str(pool.pods), "ephemeral-storage": "1Ti"}
    taints: list[dict[str, str]] = []
    if pool.gpu is not None:
        labels.update(node_labels(GPUS[pool.gpu], pool.gpus_per_node))
        resources[GPU_RESOURCE] = str(pool.gpus_per_node)
        taints.append(dict(GPU_TAINT))
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": labels,
            "annotations": {KWOK_NODE_ANNOTATION: KWOK_NODE_VALUE, "node.alpha.kubernetes.io/ttl": "0"},
        },
        "spec": {"taints": taints},
        "status": {"capacity": dict(resources), "allocatable": dict(resources)},
    }


def fleet_manifests(fleet: Iterable[NodePool]) -> list[dict[str, Any]]:
    return [node_manifest(pool, index) for pool in fleet for index in range(pool.nodes)]


def node_is_ready(node: Any) -> bool:
    """Ready=True and the node lifecycle controller has lifted the not-ready taint (schedulable)."""
    conditions = (node.status and node.status.conditions) or []
    ready = any(c.type == "Ready" and c.status == "True" for c in conditions)
    tainted = any(t.key == NOT_READY_TAINT for t in (node.spec.taints or []))
    return ready and not tainted


def wait_nodes_ready(api: client.CoreV1Api, names: Sequence[str], timeout: float = 120.0) -> None:
    """Poll until every named node is Ready and untainted; TimeoutError names the stragglers."""
    deadline = time.monotonic() + timeout
    pending = set(names)
    while pending:
        nodes = api.list_node(label_selector=f"{KWOK_TYPE_LABEL}={KWOK_TYPE_VALUE}").items
        pending -= {n.metadata.name for n in nodes if node_is_ready(n)}
        if not pending:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"kwok nodes not Ready after {timeout:.0f} s: {', '.join(sorted(pending))}")
        time.sleep(0.5)


def create_nodes(api: client.CoreV1Api, manifests: Iterable[dict[str, Any]]) -> list[str]:
    """Create the nodes (existing ones are left as they are) and return their names."""
    names = []
    for manifest in manifests:
        try:
            api.create_node(manifest)
        except ApiException as error:
            if error.status != 409:
                raise
        names.append(manifest["metadata"]["name"])
    return names


def apply_fleet(kubeconfig: Path, fleet: Sequence[NodePool] = DEFAULT_FLEET, timeout: float = 120.0) -> list[str]:
    """Create the fleet's kwok nodes and wait until they are all Ready; returns the node names."""
    with config.new_client_from_config(config_file=str(kubeconfig)) as api_client:
        api = client.CoreV1Api(api_client)
        names = create_nodes(api, fleet_manifests(fleet))
        wait_nodes_ready(api, names, timeout)
    return names
