"""Health tied to the event loop on the real control plane: a leader whose kopf loop is wedged fails /healthz, stops
renewing its Lease, exits, and the standby takes over and acts."""

from __future__ import annotations

import os
import signal
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from llmop.api.spec import GROUP, PLURAL, VERSION
from llmop_dev.localcluster.samples import h100_llmdeployment
from llmop_dev.processes import free_port
from support.operator import OperatorProcess, condition, get_llmd, wait_for

LEASE = "llmop-health"
STALL_SECONDS = 3
LEASE_SECONDS = 15  # LeaderElector's default


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except OSError as error:
        return 0, str(error)


def _lease(kube: client.ApiClient, namespace: str) -> client.V1LeaseSpec | None:
    try:
        return client.CoordinationV1Api(kube).read_namespaced_lease(LEASE, namespace).spec
    except ApiException as error:
        if error.status == 404:
            return None
        raise


def _leading_as(proc: OperatorProcess) -> str | None:
    for line in proc.log().splitlines():
        if "leading as " in line:
            return line.split("leading as ", 1)[1].split()[0]
    return None


@pytest.fixture
def replicas(control_plane: Any, namespace: str, tmp_path: Path) -> Iterator[list[OperatorProcess]]:
    """Two leader-electing operators on one Lease, with /healthz on 127.0.0.1; SIGUSR1 wedges either's loop."""
    started: list[OperatorProcess] = []
    env = {"LLMOP_LOOP_STALL_SECONDS": str(STALL_SECONDS), "LLMOP_TEST_WEDGE_SECONDS": "3600"}
    for index in range(2):
        proc = OperatorProcess(
            control_plane.kubeconfig, tmp_path / f"operator-{index}.log", namespaces=(namespace,), leader_elect=True,
            lease_namespace=namespace, lease_name=LEASE, health_port=free_port(), entry="support.wedgeable",
            extra_env=env,
        )  # fmt: skip
        started.append(proc.start())
        if index == 0:  # the first one leads
            wait_for(lambda p=proc: _leading_as(p), 60, what="the first replica to lead")
    try:
        yield started
    finally:
        for proc in started:
            proc.stop(kill=True)
            print(f"--- {proc.log_path}\n" + "\n".join(proc.log().splitlines()[-40:]))


def test_a_wedged_leader_fails_liveness_steps_down_and_the_standby_takes_over(
    crd: str, namespace: str, kube: client.ApiClient, replicas: list[OperatorProcess]
) -> None:
    leader, standby = replicas
    assert leader.process is not None
    wait_for(lambda: "waiting for lease" in standby.log(), 30, what="the standby to wait")
    for proc in replicas:  # both live and ready: the standby too, or a rollout would never finish
        wait_for(lambda p=proc: _get(p.health_port, "/readyz") == (200, "ok\n"), 30, what="/readyz ok")
        assert _get(proc.health_port, "/healthz") == (200, "ok\n")
    spec = wait_for(lambda: _lease(kube, namespace), 10, what="the Lease")
    assert spec.holder_identity == _leading_as(leader)

    os.kill(leader.process.pid, signal.SIGUSR1)  # the loop's thread now sleeps for an hour
    _, body = wait_for(lambda: (r := _get(leader.health_port, "/healthz"))[0] == 503 and r, STALL_SECONDS + 10,
                       what="/healthz to fail")  # fmt: skip
    assert body.startswith("the event loop made no progress for ") and body.endswith(f"(limit {STALL_SECONDS} s)\n")
    assert _get(leader.health_port, "/readyz")[0] == 503
    assert _get(standby.health_port, "/healthz") == (200, "ok\n")

    # it stops renewing (the Lease runs out, it is not handed over while a worker might still write) and exits
    wait_for(lambda: "stepped down: the event loop made no progress" in leader.log(), 10, what="the step-down")
    stepped_down = _lease(kube, namespace)
    assert stepped_down is not None and stepped_down.holder_identity == _leading_as(leader)
    assert leader.process.wait(timeout=15) == 3
    assert "did not stop within 5 s: exiting" in leader.log()

    # meanwhile a new object waits for the standby, which takes the expired Lease and reconciles it
    client.CustomObjectsApi(kube).create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, h100_llmdeployment("after-wedge")
    )
    wait_for(lambda: _leading_as(standby), LEASE_SECONDS + 15, what="the standby to lead")
    took = _lease(kube, namespace)
    assert took is not None and took.holder_identity == _leading_as(standby)
    assert took.lease_transitions == stepped_down.lease_transitions + 1
    planned = wait_for(lambda: condition(get_llmd(kube, namespace, "after-wedge"), "Planned"), 60, what="Planned")
    assert planned["status"] == "True"
    assert _get(standby.health_port, "/healthz") == (200, "ok\n") and standby.alive()
