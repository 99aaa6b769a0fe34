"""Outbound requests from spec URLs: the allowlist, safe failure text, TLS, credentials from files, no redirects.
Every server here is a canary on 127.0.0.1."""

from __future__ import annotations

import base64
import os
import time
from pathlib import Path

import pytest
import requests

from llmop.autoscale.fallback import probe_target, refused, with_probe
from llmop.autoscale.http_errors import (
    CertificateRejected,
    HttpStatus,
    OutboundFailure,
    TimedOut,
    Unreachable,
    describe,
    safe_text,
)
from llmop.autoscale.metrics import Observation, PrometheusMetrics
from llmop.autoscale.outbound import OutboundPolicy, origin, within
from llmop.autoscale.probe import probe
from llmop.autoscale.prom_http import CachedFile, FileAuth, PrometheusClientSettings, build_session
from llmop_dev.processes import free_port
from support.canary import SECRET_BODY, Answer, canary, prometheus_answer, self_signed

OWN = "http://prometheus-operated.monitoring.svc:9090"
SERVICE = "http://m.ml.svc:8000"


@pytest.mark.parametrize(
    ("url", "prefix", "inside"),
    [
        ("https://a.example/b", "https://a.example/b", True),
        ("https://a.example/b/c", "https://a.example/b/", True),
        ("https://A.example:443/b", "https://a.example/b", True),
        ("https://a.example/bc", "https://a.example/b", False),
        ("https://a.example.evil.io/b", "https://a.example", False),
        ("https://a.example@evil.io/b", "https://a.example", False),
        ("http://a.example/b", "https://a.example/b", False),
        ("https://a.example:8443/b", "https://a.example/b", False),
        ("https://a.example/b?x=1", "https://a.example/b", False),
        ("https://a.example/b#f", "https://a.example/b", False),
        ("file:///etc/passwd", "https://a.example", False),
    ],
)
def test_within_compares_origin_and_path_segments(url: str, prefix: str, inside: bool) -> None:
    assert within(url, prefix) is inside


def test_origin_fills_in_the_default_port_and_refuses_what_is_not_a_plain_url() -> None:
    assert origin("HTTPS://Prom.Example/x") == ("https", "prom.example", 443)
    assert origin("http://u:p@prom:9090") is None
    assert origin("http://prom:99999") is None
    assert origin("gopher://prom") is None


def test_by_default_only_the_operators_own_prometheus_url_is_queried() -> None:
    policy = OutboundPolicy(OWN)
    assert policy.prometheus_refusal(OWN) is None
    assert policy.prometheus_refusal(OWN + "/") is None
    refusal = policy.prometheus_refusal("http://169.254.169.254/latest/meta-data")
    assert refusal == (
        "spec.autoscaling.prometheusUrl http://169.254.169.254/latest/meta-data is not allowed by the operator: it "
        "is neither the operator's Prometheus URL nor under an allowed prefix (--allow-prometheus-url-prefix (env "
        "LLMOP_ALLOWED_PROMETHEUS_URL_PREFIXES): none); no request was sent"
    )
    assert OutboundPolicy(None).prometheus_refusal(OWN) is not None  # no own URL: nothing is allowed


def test_allowed_prefixes_open_exactly_their_subtrees() -> None:
    policy = OutboundPolicy(OWN, ("https://thanos.example/tenant-a",))
    assert policy.prometheus_refusal("https://thanos.example/tenant-a") is None
    assert policy.prometheus_refusal("https://thanos.example/tenant-a/api") is None
    refusal = policy.prometheus_refusal("https://thanos.example/tenant-b")
    assert refusal is not None and refusal.endswith("https://thanos.example/tenant-a); no request was sent")
    assert policy.prometheus_refusal("http://u:p@thanos.example/tenant-a") == (
        "Prometheus URL 'http://u:p@thanos.example/tenant-a' refused: only plain http(s) base URLs (no user info, "
        "query or fragment)"
    )


def test_probe_endpoints_are_the_own_service_unless_custom_ones_are_allowed() -> None:
    policy = OutboundPolicy(OWN)
    assert probe_target(None, SERVICE, policy) == (SERVICE, None)
    assert probe_target(SERVICE + "/", SERVICE, policy) == (SERVICE, None)
    endpoint, why = probe_target("http://10.0.0.1:8080", SERVICE, policy)
    assert endpoint == "http://10.0.0.1:8080"
    assert why == (
        "spec.autoscaling.probe.endpoint http://10.0.0.1:8080 is not allowed by the operator: only the deployment's "
        "own Service (http://m.ml.svc:8000) is probed unless --allow-custom-probe-endpoints (env "
        "LLMOP_ALLOW_CUSTOM_PROBE_ENDPOINTS) is set; no request was sent"
    )
    assert probe_target("http://10.0.0.1:8080", SERVICE, OutboundPolicy(OWN, (), True)) == (
        "http://10.0.0.1:8080",
        None,
    )


def test_a_refused_probe_holds_and_names_the_setting() -> None:
    obs = Observation(None, 0.0, 0.0, 0.0, None, 0.0)
    result = refused("http://10.0.0.1:8080", "vllm", "not allowed (--allow-custom-probe-endpoints)")
    held = with_probe(obs, result, 200)
    assert held.error == (
        "0 tokens in the window < 200 and the active probe of http://10.0.0.1:8080 failed: "
        "not allowed (--allow-custom-probe-endpoints)"
    )
    assert (result.tokens, result.total_ms) == (0, 0.0)


# ---- safe failure text --------------------------------------------------------------------------------------------


def test_prometheus_error_answers_report_the_status_never_the_body() -> None:
    with canary(lambda path: Answer(500, SECRET_BODY)) as server:
        obs = PrometheusMetrics(server.url, timeout_s=2).observe("ml", "m", "vllm")
    assert obs.error == f"prometheus {server.url}: HttpStatus: HTTP 500"
    assert server.hits() >= 1


def test_a_redirect_is_not_followed() -> None:
    with canary(lambda path: Answer(302, SECRET_BODY, {"Location": "http://127.0.0.1:1/elsewhere"})) as server:
        obs = PrometheusMetrics(server.url, timeout_s=2).observe("ml", "m", "vllm")
        assert obs.error == f"prometheus {server.url}: HttpStatus: HTTP 302 (redirects are not followed)"
        assert {seen.path.split("?")[0] for seen in server.requests} == {"/api/v1/query"}


def test_a_body_that_is_not_json_is_reported_without_its_text() -> None:
    with canary(lambda path: Answer(200, SECRET_BODY)) as server:
        obs = PrometheusMetrics(server.url, timeout_s=2).observe("ml", "m", "vllm")
    assert obs.error == f"prometheus {server.url}: BadAnswer: the answer is not JSON"


def test_connection_failures_are_named_by_kind() -> None:
    port = free_port()
    obs = PrometheusMetrics(f"http://127.0.0.1:{port}", timeout_s=2).observe("ml", "m", "vllm")
    assert obs.error == f"prometheus http://127.0.0.1:{port}: Unreachable: connection refused"
    assert describe(TimeoutError("slow")).args == ("timed out",) and isinstance(describe(TimeoutError()), TimedOut)
    assert isinstance(describe(ConnectionResetError()), Unreachable)
    assert safe_text(RuntimeError(SECRET_BODY)) == "OutboundFailure: RuntimeError"
    assert safe_text(KeyError(SECRET_BODY)) == "BadAnswer: unexpected answer (KeyError)"


def test_the_probe_reports_an_engine_error_without_its_body() -> None:
    with canary(lambda path: Answer(400, '{"error": "' + SECRET_BODY + '"}')) as server:
        vllm = probe(server.url, "vllm", max_tokens=2, model="m", timeout_s=2)
        tgi = probe(server.url, "tgi", max_tokens=2, timeout_s=2)
    assert vllm.error == "HttpStatus: HTTP 400"
    assert tgi.error == "HttpStatus: HTTP 400"
    assert server.hits() == 2


@pytest.mark.parametrize("engine", ["vllm", "tgi"])
def test_the_probe_does_not_follow_a_redirect(engine: str) -> None:
    """A probe endpoint that answers 307 cannot send the operator's request on to another address."""
    with canary(lambda path: Answer(200, "{}")) as elsewhere:
        moved = {"Location": f"{elsewhere.url}/generate_stream"}
        with canary(lambda path: Answer(307, SECRET_BODY, moved)) as server:
            result = probe(server.url, engine, max_tokens=2, model="m", timeout_s=2)
            assert server.hits() == 1
        assert elsewhere.hits() == 0
    assert result.error == "HttpStatus: HTTP 307 (redirects are not followed)" and result.tokens == 0


# ---- TLS -----------------------------------------------------------------------------------------------------------


def test_tls_is_verified_by_default_and_an_unknown_certificate_is_named(tmp_path: Path) -> None:
    cert = self_signed(tmp_path)
    with canary(prometheus_answer, cert) as server:
        obs = PrometheusMetrics(server.url, timeout_s=2).observe("ml", "m", "vllm")
        assert obs.error == (
            f"prometheus {server.url}: CertificateRejected: TLS certificate verification failed: self-signed "
            "certificate; give the operator the CA bundle (--prometheus-ca-file, env LLMOP_PROMETHEUS_CA_FILE)"
        )
        assert server.hits() == 0  # the handshake failed: no request reached the handler
        trusted = PrometheusMetrics(server.url, timeout_s=2, client=PrometheusClientSettings(ca_file=str(cert.cert)))
        answered = trusted.observe("ml", "m", "vllm")
        assert answered.error == "no running/waiting series for ml/m in Prometheus (no vllm pod scraped?)"
        other = self_signed(tmp_path, "other")
        wrong = PrometheusMetrics(server.url, timeout_s=2, client=PrometheusClientSettings(ca_file=str(other.cert)))
        assert "CertificateRejected" in str(wrong.observe("ml", "m", "vllm").error)
        skip = PrometheusMetrics(server.url, timeout_s=2, client=PrometheusClientSettings(insecure_skip_verify=True))
        assert skip.observe("ml", "m", "vllm").error == answered.error


def test_a_missing_ca_file_is_named(tmp_path: Path) -> None:
    settings = PrometheusClientSettings(ca_file=str(tmp_path / "nope.pem"))
    obs = PrometheusMetrics("https://127.0.0.1:1", client=settings).observe("ml", "m", "vllm")
    assert (
        obs.error
        == f"prometheus https://127.0.0.1:1: CredentialsUnreadable: CA file {tmp_path / 'nope.pem'}: not found"
    )


def test_https_to_a_plain_http_server_is_a_tls_failure() -> None:
    with canary(prometheus_answer) as server:
        url = server.url.replace("http://", "https://")
        failure = describe(_error_of(lambda: build_session(PrometheusClientSettings(), url).get(url, timeout=2)))
    assert type(failure).__name__ == "TlsFailed" and str(failure).startswith("TLS handshake failed: ")


def _error_of(call: object) -> BaseException:
    try:
        call()  # type: ignore[operator]
    except BaseException as error:
        return error
    raise AssertionError("no error")


def test_certificate_problems_are_certificate_rejected(tmp_path: Path) -> None:
    with canary(prometheus_answer, self_signed(tmp_path)) as server:
        error = _error_of(lambda: requests.get(server.url, timeout=2))
    failure = describe(error)
    assert isinstance(failure, CertificateRejected) and isinstance(failure, OutboundFailure)
    assert isinstance(describe(requests.HTTPError(response=_response(404))), HttpStatus)


def _response(code: int) -> requests.Response:
    response = requests.Response()
    response.status_code = code
    return response


# ---- credentials ---------------------------------------------------------------------------------------------------


def test_the_bearer_token_is_re_read_when_the_file_rotates(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("first\n")
    with canary(prometheus_answer) as server:
        settings = PrometheusClientSettings(bearer_token_file=str(token), credentials_origin=server.url)
        metrics = PrometheusMetrics(server.url, timeout_s=2, client=settings)
        metrics.observe("ml", "m", "vllm")
        time.sleep(0.01)
        token.write_text("second-longer\n")
        os.utime(token, ns=(time.time_ns(), time.time_ns() + 1_000_000))
        metrics.observe("ml", "m", "vllm")
        tokens = [seen.headers.get("Authorization") for seen in server.requests]
    assert tokens[0] == "Bearer first" and tokens[-1] == "Bearer second-longer"
    assert set(tokens) == {"Bearer first", "Bearer second-longer"}


def test_basic_auth_from_files_goes_only_to_the_operators_own_origin(tmp_path: Path) -> None:
    (tmp_path / "user").write_text("llmop")
    (tmp_path / "password").write_text("s3cret\n")
    with canary(prometheus_answer) as own, canary(prometheus_answer) as other:
        settings = PrometheusClientSettings(
            basic_auth_username_file=str(tmp_path / "user"),
            basic_auth_password_file=str(tmp_path / "password"),
            credentials_origin=own.url,
        )
        PrometheusMetrics(own.url, timeout_s=2, client=settings).observe("ml", "m", "vllm")
        PrometheusMetrics(other.url + "/tenant", timeout_s=2, client=settings).observe("ml", "m", "vllm")
    expected = "Basic " + base64.b64encode(b"llmop:s3cret").decode()
    assert {seen.headers.get("Authorization") for seen in own.requests} == {expected}
    assert {seen.headers.get("Authorization") for seen in other.requests} == {None}


def test_an_unreadable_token_file_is_named_not_sent(tmp_path: Path) -> None:
    missing = tmp_path / "gone"
    auth = FileAuth(PrometheusClientSettings(bearer_token_file=str(missing), credentials_origin=OWN))
    assert auth.header("http://elsewhere:9090/api") is None
    with pytest.raises(OutboundFailure, match=f"credential file {missing}: No such file or directory"):
        auth.header(OWN + "/api/v1/query")
    cached = CachedFile(str(tmp_path / "t"))
    (tmp_path / "t").write_text("abc")
    assert cached.read() == "abc"
