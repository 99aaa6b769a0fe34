"""Local development cluster: etcd, kube-apiserver, controller-manager, scheduler and kwok GPU nodes."""

from llmop.dev.binaries import Binaries, BinariesMissing, find_binaries
from llmop.dev.controlplane import ControlPlane, ControlPlaneError
from llmop.dev.nodes import DEFAULT_FLEET, NodePool, apply_fleet, node_manifest

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
