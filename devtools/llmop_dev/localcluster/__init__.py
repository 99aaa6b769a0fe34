"""Local development cluster: etcd, kube-apiserver, controller-manager, scheduler and kwok GPU nodes."""

from llmop_dev.localcluster.binaries import Binaries, BinariesMissing, find_binaries
from llmop_dev.localcluster.controlplane import ControlPlane, ControlPlaneError
from llmop_dev.localcluster.nodes import DEFAULT_FLEET, NodePool, apply_fleet, node_manifest

__all__ = [
    "DEFAULT_FLEET",
    "Binaries",
    "BinariesMissing",
    "ControlPlane",
    "ControlPlaneError",
    "NodePool",
    "apply_fleet",
    "find_binaries",
    "node_manifest",
]
