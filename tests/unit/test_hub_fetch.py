"""config.json read from a fake hub on 127.0.0.1 (HF_ENDPOINT): found, gated, missing, offline, cached; the
controller's token Secret and retry; the CLI."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from kubernetes.client.exceptions import ApiException

from llmop.catalog.hf_config import CheckpointInfo, HubFailure
from llmop.controller.checkpoints import HubResolver
from llmop.controller.plans import PlanCache
from llmop.hub.cache import CheckpointCache
from llmop.hub.fetch import fetch_checkpoint
from llmop.plan.parse import parse_spec
from llmop.plan.types import Plan, PlanErrors
from support import hub_configs as cfg
from support.fake_hub import FakeHub, HubRepo, serve_hub

ROOT = Path(__file__).resolve().parents[2]
REPOS = {
    "acme/open-8b": HubRepo(cfg.LLAMA_31_8B),
    "acme/gated-8b": HubRepo(cfg.LLAMA_31_8B, gated_token="hf_good"),
    "acme/qwen-seven": HubRepo(cfg.QWEN25_7B_AWQ),
    "acme/no-config": HubRepo(None),
    "acme/slow": HubRepo(cfg.LLAMA_31_8B, delay_s=2.0),
    "acme/broken": HubRepo(cfg.LLAMA_31_8B, status=500),
}


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeHub]:
    monkeypatch.setenv("LLMOP_HUB_CACHE", str(tmp_path / "hub-cache"))
    with serve_hub(REPOS) as fake:
        monkeypatch.setenv("HF_ENDPOINT", fake.url)
        yield fake


def test_open_model_is_read_through_hf_endpoint(hub: FakeHub) -> None:
    info = fetch_checkpoint("acme/open-8b", None, False)
    assert isinstance(info, CheckpointInfo) and info.architecture.parameters == 8_030_261_248
    assert [(m, p) for m, p, _ in hub.requests] == [("GET", "/acme/open-8b/resolve/main/config.json")]


def test_gated_model_needs_the_token(hub: FakeHub) -> None:
    refused = fetch_checkpoint("acme/gated-8b", None, False)
    assert isinstance(refused, HubFailure) and refused.reason == "ModelGated"
    assert refused.message == (
        f"'acme/gated-8b' is gated on {hub.url}: accept its licence on the hub and set spec.model.tokenSecretRef to "
        "a Secret holding a token with access, or set spec.model.architecture to a catalog key or the model's numbers"
    )
    wrong = fetch_checkpoint("acme/gated-8b", None, "hf_bad", token_named="Secret ml/hf-token (key token)")
    assert isinstance(wrong, HubFailure) and "check that the token in Secret ml/hf-token (key token)" in wrong.message
    assert isinstance(fetch_checkpoint("acme/gated-8b", None, "hf_good"), CheckpointInfo)
    assert hub.requests[-1][2] == "Bearer hf_good"


@pytest.mark.parametrize(
    ("model", "revision", "reason", "text"),
    [
        ("acme/missing", None, "ModelNotFound", "has no model 'acme/missing', or it is private or gated"),
        ("acme/open-8b", "v9", "ModelNotFound", "has no revision 'v9' of 'acme/open-8b'; fix spec.model.revision"),
        ("acme/no-config", None, "ModelConfigNotFound", "'acme/no-config' has no config.json on"),
        ("acme/broken", None, "ModelConfigUnavailable", "(HTTP 500); llmop retries"),
        ("acme/slow", None, "ModelConfigUnavailable", "(timed out); llmop retries"),
    ],
)
def test_each_failure_has_its_reason(hub: FakeHub, model: str, revision: str | None, reason: str, text: str) -> None:
    result = fetch_checkpoint(model, revision, False, timeout_s=0.5)
    assert isinstance(result, HubFailure) and (result.reason, result.model) == (reason, model)
    assert text in result.message


def test_offline_uses_the_copy_read_before(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LLMOP_HUB_CACHE", str(tmp_path))
    with serve_hub(REPOS) as fake:
        first = fetch_checkpoint("acme/open-8b", None, False, endpoint=fake.url)
    again = fetch_checkpoint("acme/open-8b", None, False, endpoint=fake.url)  # the server is gone
    assert isinstance(first, CheckpointInfo) and again == first
    never = fetch_checkpoint("acme/qwen-seven", None, False, endpoint=fake.url)
    assert isinstance(never, HubFailure) and never.reason == "ModelConfigUnavailable"
    assert "(connection refused)" in never.message and "set HF_ENDPOINT to a mirror" in never.message


def test_cache_remembers_reads_for_an_hour_and_failures_for_a_minute(hub: FakeHub) -> None:
    now = [0.0]
    cache = CheckpointCache(clock=lambda: now[0])
    assert isinstance(cache.lookup("acme/open-8b", None, False), CheckpointInfo)
    assert isinstance(cache.lookup("acme/gated-8b", None, False), HubFailure)
    now[0] = 59.0
    cache.lookup("acme/open-8b", None, False)
    cache.lookup("acme/gated-8b", None, False)
    assert cache.fetches == 2
    now[0] = 61.0
    cache.lookup("acme/open-8b", None, False)
    cache.lookup("acme/gated-8b", None, False)
    assert cache.fetches == 3  # the failure was asked again, the read was not
    assert isinstance(cache.lookup("acme/gated-8b", None, "hf_good"), CheckpointInfo)  # another token: its own entry
    assert cache.fetches == 4


class _Secrets:
    """CoreV1Api's read_namespaced_secret over a dict; other names answer like the API server."""

    def __init__(self, secrets: dict[tuple[str, str], dict[str, str]], forbidden: bool = False) -> None:
        self.secrets = secrets
        self.forbidden = forbidden

    def read_namespaced_secret(self, name: str, namespace: str) -> Any:
        if self.forbidden:
            raise ApiException(status=403, reason="Forbidden")
        data = self.secrets.get((namespace, name))
        if data is None:
            raise ApiException(status=404, reason="Not Found")
        return SimpleNamespace(data={k: base64.b64encode(v.encode()).decode() for k, v in data.items()})


def _spec(model: str, token: bool = True, quantization: str = "none") -> Any:
    raw: dict[str, Any] = {"model": {"name": model}, "gpu": {"type": "H100-80GB"}, "quantization": quantization}
    if token:
        raw["model"]["tokenSecretRef"] = {"name": "hf-token"}
    spec = parse_spec(raw)
    assert not isinstance(spec, PlanErrors)
    return spec


def test_resolver_reads_the_token_secret(hub: FakeHub) -> None:
    resolver = HubResolver(_Secrets({("ml", "hf-token"): {"token": "hf_good"}}))
    assert isinstance(resolver("ml", _spec("acme/gated-8b")), CheckpointInfo)
    missing = resolver("other", _spec("acme/gated-8b"))
    assert missing == HubFailure(
        "acme/gated-8b",
        "TokenSecretUnavailable",
        "cannot read the hub token for 'acme/gated-8b': Secret other/hf-token (key token) does not exist; create it "
        "(kubectl create secret generic ... --from-literal=token=hf_...)",
    )
    forbidden = HubResolver(_Secrets({}, forbidden=True))("ml", _spec("acme/gated-8b"))
    assert isinstance(forbidden, HubFailure) and "hub.readTokenSecrets=true" in forbidden.message
    assert isinstance(resolver("ml", _spec("acme/open-8b", token=False)), CheckpointInfo)


def _body(model: str, generation: int = 1) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "ml", "name": "fancy", "uid": "u1", "generation": generation},
        "spec": {"model": {"name": model, "tokenSecretRef": {"name": "hf-token"}}, "gpu": {"type": "H100-80GB"}},
    }


def test_plan_cache_plans_from_the_hub_and_retries_a_refusal(hub: FakeHub) -> None:
    secrets = _Secrets({})
    plans = PlanCache(checkpoints=HubResolver(secrets), hub_retry_s=0.0)
    refused = plans.get(_body("acme/gated-8b")).result
    assert isinstance(refused, PlanErrors)
    assert refused.errors[0].field == "spec.model.name" and "Secret ml/hf-token" in refused.errors[0].message
    secrets.secrets[("ml", "hf-token")] = {"token": "hf_good"}  # the user creates the Secret
    planned = plans.get(_body("acme/gated-8b"))  # same generation: planned again because the hub refused
    assert isinstance(planned.result, Plan) and planned.result.tensor_parallel == 1
    assert plans.get(_body("acme/gated-8b")) is planned and plans.computed == 2
    catalog = PlanCache(checkpoints=HubResolver(secrets)).get(_body("meta-llama/Llama-3.1-8B-Instruct"))
    assert catalog.checkpoint is None  # catalog models never ask the hub


def _run_cli(args: list[str], env: dict[str, str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "llmop.cli", *args], input=stdin, capture_output=True, text=True, timeout=60,
        cwd=ROOT, env={**os.environ, **env},
    )  # fmt: skip


def test_cli_plans_from_config_json_and_names_gated_models(hub: FakeHub, tmp_path: Path) -> None:
    doc = {"apiVersion": "llmop.io/v1alpha1", "kind": "LLMDeployment", "metadata": {"name": "qwen"},
           "spec": {"model": {"name": "acme/qwen-seven"}, "quantization": "awq", "gpu": {"type": "L4"}}}  # fmt: skip
    env = {"HF_ENDPOINT": hub.url, "LLMOP_HUB_CACHE": str(tmp_path / "c"), "HF_TOKEN": ""}
    out = _run_cli(["plan", "-f", "-"], env, yaml.safe_dump(doc))
    assert out.returncode == 0, out.stderr
    assert "  model         config.json (qwen2, 7.62B parameters, awq checkpoint)" in out.stdout.splitlines()
    doc["spec"]["model"]["name"] = "acme/gated-8b"
    doc["spec"]["quantization"] = "none"
    gated = _run_cli(["plan", "-f", "-", "--json"], env, yaml.safe_dump(doc))
    assert gated.returncode == 1 and "Traceback" not in gated.stderr
    assert json.loads(gated.stdout)["errors"][0]["message"].startswith(f"'acme/gated-8b' is gated on {hub.url}")
    with_token = _run_cli(["plan", "-f", "-"], {**env, "HF_TOKEN": "hf_good"}, yaml.safe_dump(doc))
    assert with_token.returncode == 0 and "config.json (llama, 8.03B parameters)" in with_token.stdout
    offline = _run_cli(["plan", "-f", "-", "--offline"], env, yaml.safe_dump(doc))
    assert offline.returncode == 1 and "is not in llmop's catalog" in offline.stdout
