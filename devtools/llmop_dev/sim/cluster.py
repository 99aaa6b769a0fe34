"""Cluster mode: mirror the Ready pods of each LLMDeployment from the API server (never contacting pod IPs)."""

from __future__ import annotations

import logging
import threading
from typing import Any

from llmop.api.spec import GROUP, PLURAL, VERSION
from llmop.api.times import parse_rfc3339
from llmop.plan.parse import parse_resource
from llmop.plan.planner import plan
from llmop.plan.types import Plan
from llmop.render.labels import SELECTOR_LABEL
from llmop_dev.sim.deployment import DeploymentSim
from llmop_dev.sim.fleet import Fleet

log = logging.getLogger("llmop_dev.sim.cluster")


def _timestamp(value: Any) -> float | None:
    return parse_rfc3339(value)


def pod_ready(pod: dict[str, Any]) -> bool:
    meta = pod.get("metadata") or {}
    if meta.get("deletionTimestamp") or meta.get("deletion_timestamp"):
        return False
    status = pod.get("status") or {}
    conditions = status.get("conditions") or []
    return status.get("phase") == "Running" and any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in conditions
    )


class ClusterSync:
    """Polls LLMDeployments and their pods; a Ready pod serves `startup_seconds` after it was created."""

    def __init__(
        self,
        fleet: Fleet,
        kubeconfig: str | None = None,
        startup_seconds: float | None = None,
        interval_s: float = 2.0,
    ) -> None:
        from kubernetes import client, config

        config.load_kube_config(config_file=kubeconfig)
        self.core = client.CoreV1Api()
        self.custom = client.CustomObjectsApi()
        self.fleet = fleet
        self.startup_seconds = startup_seconds
        self.interval_s = interval_s
        self._plans: dict[tuple[str, str], tuple[str, Plan]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sync_once(self, now: float) -> None:
        resources = self.custom.list_cluster_custom_object(GROUP, VERSION, PLURAL).get("items", [])
        pods = self.core.list_pod_for_all_namespaces(label_selector=SELECTOR_LABEL).to_dict()["items"]
        wanted: set[tuple[str, str]] = set()
        for item in resources:
            resource = parse_resource(item)
            if not hasattr(resource, "spec"):
                continue
            key = (resource.namespace, resource.name)
            fingerprint = str(item.get("metadata", {}).get("generation"))
            cached = self._plans.get(key)
            if cached is None or cached[0] != fingerprint:
                result = plan(resource.spec, resource.name)
                if not isinstance(result, Plan):
                    continue
                self._plans[key] = (fingerprint, result)
            wanted.add(key)
            self._ensure(key, self._plans[key][1], now)
        with self.fleet.lock:
            for key in [k for k in self.fleet.sims if k not in wanted]:
                del self.fleet.sims[key]
            for key in wanted:
                self._sync_pods(self.fleet.sims[key], pods, now)

    def _ensure(self, key: tuple[str, str], result: Plan, now: float) -> None:
        """A deployment new to the simulator gets the fleet's starting load; a re-plan keeps its pods and load."""
        with self.fleet.lock:
            sim = self.fleet.sims.get(key)
            if sim is not None and sim.plan == result:
                return
            source = sim.source if sim else self.fleet.new_source(key[0], key[1], now)
            fresh = DeploymentSim(key[0], key[1], result, source, self.startup_seconds, now=now)
            if sim is not None:
                fresh.pods, fresh.queue, fresh.now = sim.pods, sim.queue, sim.now
            self.fleet.sims[key] = fresh

    def _sync_pods(self, sim: DeploymentSim, pods: list[dict[str, Any]], now: float) -> None:
        ready: dict[str, float] = {}
        for pod in pods:
            meta = pod.get("metadata") or {}
            labels = meta.get("labels") or {}
            if meta.get("namespace") != sim.namespace or labels.get(SELECTOR_LABEL) != sim.name or not pod_ready(pod):
                continue
            created = _timestamp(meta.get("creation_timestamp") or meta.get("creationTimestamp")) or now
            ready[meta["name"]] = created
        for name in [n for n in sim.pods if n not in ready]:
            sim.remove_pod(name, now)
        for name, created in ready.items():
            if name not in sim.pods:
                sim.add_pod(created, name=name)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="llmop-sim-cluster", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import time

        while not self._stop.is_set():
            try:
                self.sync_once(time.time())
            except Exception as error:  # keep serving what we have; the API server may come back
                log.warning("cluster sync failed: %s", error)
            self._stop.wait(self.interval_s)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
