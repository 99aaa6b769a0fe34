"""Liveness and readiness tied to the event loop and the Lease; the elector steps down when the loop is wedged;
the operator settings for all of it."""

from __future__ import annotations

import asyncio
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from llmop.cli import build_parser
from llmop.controller.health import Health, heartbeat
from llmop.controller.health_server import serve
from llmop.controller.leader import LeaderElector
from llmop.controller.run_command import _config
from llmop.controller.settings import OperatorConfig, SettingError


class Clock:
    """A hand-moved monotonic clock."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_loop_counts_as_wedged_only_after_it_beat_and_then_fell_silent() -> None:
    clock = Clock()
    health = Health(stall_s=10.0, clock=clock)
    assert health.liveness() == [] and health.readiness() == ["starting"]
    health.beat()
    assert health.liveness() == [] and health.readiness() == []
    clock.now += 10.0
    assert health.stalled() is None
    clock.now += 2.5
    assert health.liveness() == ["the event loop made no progress for 12 s (limit 10 s)"]
    assert health.readiness() == health.liveness()
    health.beat()
    assert health.liveness() == []


def test_a_standby_replica_is_ready_and_a_lost_lease_is_final() -> None:
    health = Health(stall_s=5.0, clock=Clock())
    health.standby()
    assert health.readiness() == [] and health.liveness() == []
    health.lose("taken by another replica")
    health.lose("later reason")
    assert health.liveness() == ["lost the leader Lease: taken by another replica"]
    health.beat()
    assert health.readiness() == ["lost the leader Lease: taken by another replica"]


def test_heartbeat_beats_from_the_event_loop() -> None:
    health = Health(stall_s=5.0)

    async def run() -> None:
        task = asyncio.get_running_loop().create_task(heartbeat(health, interval_s=0.01))
        await asyncio.sleep(0.05)
        task.cancel()

    asyncio.run(run())
    assert health.readiness() == [] and health.stalled() is None


@pytest.fixture
def served() -> Iterator[tuple[Health, Clock, str]]:
    clock = Clock()
    health = Health(stall_s=3.0, clock=clock)
    server = serve(health, "127.0.0.1", 0)
    try:
        yield health, clock, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_the_endpoints_answer_from_their_own_thread(served: tuple[Health, Clock, str]) -> None:
    health, clock, url = served
    assert _get(url + "/healthz") == (200, "ok\n")
    assert _get(url + "/readyz") == (503, "starting\n")
    health.beat()
    assert _get(url + "/readyz") == (200, "ok\n") and _get(url + "/livez") == (200, "ok\n")
    clock.now += 4
    stalled = "the event loop made no progress for 4 s (limit 3 s)\n"
    assert _get(url + "/healthz") == (503, stalled) and _get(url + "/readyz") == (503, stalled)
    assert _get(url + "/metrics")[0] == 404


class Leases:
    """An in-memory Lease store with the CoordinationV1Api calls the elector makes."""

    def __init__(self) -> None:
        self.lease: Any = None
        self.replaced = 0

    def read_namespaced_lease(self, name: str, namespace: str, **_: Any) -> Any:
        if self.lease is None:
            raise client.ApiException(status=404)
        return self.lease

    def create_namespaced_lease(self, namespace: str, body: Any, **_: Any) -> Any:
        self.lease = body
        return body

    def replace_namespaced_lease(self, name: str, namespace: str, body: Any, **_: Any) -> Any:
        self.lease, self.replaced = body, self.replaced + 1
        return body


def test_the_elector_steps_down_when_the_loop_is_wedged_and_keeps_the_lease_until_it_runs_out() -> None:
    leases = Leases()
    elector = LeaderElector(None, "ns", "lease", "me", lease_seconds=3, renew_seconds=0.05,
                            renew_deadline_seconds=1.0, retry_seconds=0.05)  # fmt: skip
    elector.api = leases  # type: ignore[assignment]
    assert elector.acquire()
    wedged = threading.Event()
    lost = threading.Event()
    elector.keep_renewing(lost.set, lambda: "the event loop made no progress for 31 s" if wedged.is_set() else None)
    time.sleep(0.2)
    assert leases.replaced >= 2 and not lost.is_set()
    wedged.set()
    assert lost.wait(2.0)
    assert elector.lost_reason == "stepped down: the event loop made no progress for 31 s"
    renewals = leases.replaced
    time.sleep(0.2)
    assert leases.replaced == renewals  # no renewal after stepping down
    assert leases.lease.spec.holder_identity == "me"  # not handed over: the lease runs out on its own


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMOP_PROMETHEUS_URL", "https://prom.example:9091")
    monkeypatch.setenv("LLMOP_ALLOWED_PROMETHEUS_URL_PREFIXES", "https://thanos.example/a, https://thanos.example/b\n")
    monkeypatch.setenv("LLMOP_ALLOW_CUSTOM_PROBE_ENDPOINTS", "True")
    monkeypatch.setenv("LLMOP_PROMETHEUS_CA_FILE", "/etc/llmop/ca/ca.crt")
    monkeypatch.setenv("LLMOP_PROMETHEUS_BEARER_TOKEN_FILE", "/var/run/token")
    monkeypatch.setenv("LLMOP_LOOP_STALL_SECONDS", "12")
    config = OperatorConfig.from_env()
    config.validate()
    assert config.allowed_prometheus_url_prefixes == ("https://thanos.example/a", "https://thanos.example/b")
    assert config.allow_custom_probe_endpoints is True and config.loop_stall_seconds == 12.0
    policy = config.outbound_policy()
    assert policy.prometheus_refusal("https://prom.example:9091") is None
    assert policy.prometheus_refusal("https://thanos.example/b/x") is None
    client_settings = config.prometheus_client()
    assert client_settings.ca_file == "/etc/llmop/ca/ca.crt" and client_settings.bearer_token_file == "/var/run/token"
    assert client_settings.credentials_origin == "https://prom.example:9091"
    assert client_settings.insecure_skip_verify is False
    monkeypatch.setenv("LLMOP_ALLOW_CUSTOM_PROBE_ENDPOINTS", "perhaps")
    with pytest.raises(SettingError, match="LLMOP_ALLOW_CUSTOM_PROBE_ENDPOINTS='perhaps': expected true or false"):
        OperatorConfig.from_env()


def test_defaults_allow_nothing_from_the_spec_and_verify_tls(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LLMOP_ALLOWED_PROMETHEUS_URL_PREFIXES", "LLMOP_ALLOW_CUSTOM_PROBE_ENDPOINTS",
                 "LLMOP_PROMETHEUS_INSECURE_SKIP_VERIFY", "LLMOP_PROMETHEUS_CA_FILE"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    config = OperatorConfig.from_env()
    assert config.allowed_prometheus_url_prefixes == () and config.allow_custom_probe_endpoints is False
    assert config.prometheus_insecure_skip_verify is False and config.prometheus_ca_file is None
    assert config.loop_stall_seconds == 30.0


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (OperatorConfig(allowed_prometheus_url_prefixes=("thanos:9090",)), "prefix 'thanos:9090': not a plain"),
        (OperatorConfig(prometheus_url="http://prom/?q=1"), "Prometheus URL 'http://prom/?q=1': not a plain"),
        (OperatorConfig(prometheus_bearer_token_file="t", prometheus_basic_auth_password_file="p"), "either"),
        (OperatorConfig(prometheus_basic_auth_username_file="u"), "needs the password file"),
        (OperatorConfig(loop_stall_seconds=0), "must be positive"),
    ],
)
def test_settings_that_cannot_work_are_refused(config: OperatorConfig, message: str) -> None:
    with pytest.raises(SettingError, match=message.replace("?", r"\?")):
        config.validate()


def test_flags_override_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMOP_ALLOWED_PROMETHEUS_URL_PREFIXES", "https://env.example")
    monkeypatch.delenv("LLMOP_ALLOW_CUSTOM_PROBE_ENDPOINTS", raising=False)
    args = build_parser().parse_args([
        "run", "--allow-prometheus-url-prefix", "https://a.example", "--allow-prometheus-url-prefix",
        "https://b.example/x", "--allow-custom-probe-endpoints", "--prometheus-ca-file", "/ca.pem",
        "--prometheus-basic-auth-username-file", "/u", "--prometheus-basic-auth-password-file", "/p",
        "--health-address", "127.0.0.1", "--loop-stall-seconds", "4",
    ])  # fmt: skip
    config = _config(args)
    assert config.allowed_prometheus_url_prefixes == ("https://a.example", "https://b.example/x")
    assert config.allow_custom_probe_endpoints is True and config.prometheus_ca_file == "/ca.pem"
    assert (config.prometheus_basic_auth_username_file, config.prometheus_basic_auth_password_file) == ("/u", "/p")
    assert (config.health_address, config.loop_stall_seconds) == ("127.0.0.1", 4.0)
    unset = _config(build_parser().parse_args(["run"]))
    assert unset.allowed_prometheus_url_prefixes == ("https://env.example",)
    assert unset.allow_custom_probe_endpoints is False
