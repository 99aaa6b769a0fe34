"""Read a model's config.json through huggingface_hub (HF_ENDPOINT honoured) and turn every failure into words."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path

from llmop.catalog.hf_config import CheckpointLookup, HubFailure, parse_config

DEFAULT_ENDPOINT = "https://huggingface.co"
DEFAULT_TIMEOUT_S = 10.0
_ADVICE = "or set spec.model.architecture to a catalog key or the model's numbers"


def hub_endpoint(endpoint: str | None = None) -> str:
    """The hub to ask: the argument, else HF_ENDPOINT, else huggingface.co."""
    return (endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def _where(model: str, revision: str | None) -> str:
    return f"{model!r}" + (f" at revision {revision!r}" if revision else "")


def _failure(model: str, revision: str | None, endpoint: str, error: Exception, token_named: str | None) -> HubFailure:
    """Map huggingface_hub's exceptions (and what caused them) to a Planned=False reason and message."""
    from huggingface_hub import errors

    where = _where(model, revision)
    token_hint = (
        f"check that the token in {token_named} has access to it"
        if token_named
        else "set spec.model.tokenSecretRef to a Secret holding a token with access"
    )
    if isinstance(error, errors.GatedRepoError):
        return HubFailure(
            model,
            "ModelGated",
            f"{where} is gated on {endpoint}: accept its licence on the hub and {token_hint}, {_ADVICE}",
        )
    if isinstance(error, errors.RevisionNotFoundError):
        return HubFailure(model, "ModelNotFound", f"{endpoint} has no revision {revision!r} of {model!r}; fix "
                          "spec.model.revision")  # fmt: skip
    if isinstance(error, errors.RepositoryNotFoundError):
        return HubFailure(
            model,
            "ModelNotFound",
            f"{endpoint} has no model {model!r}, or it is private or gated and the request was refused "
            f"({_status(error)}): check spec.model.name and {token_hint}, {_ADVICE}",
        )
    if isinstance(error, errors.EntryNotFoundError) and not isinstance(error, errors.LocalEntryNotFoundError):
        return HubFailure(
            model, "ModelConfigNotFound", f"{where} has no config.json on {endpoint} (not a transformers model?); "
            "set spec.model.architecture to the model's numbers"
        )  # fmt: skip
    status = _status(error)
    if status in {401, 403}:
        return HubFailure(model, "ModelGated", f"{endpoint} refused config.json of {where} ({status}): {token_hint}, "
                          f"{_ADVICE}")  # fmt: skip
    cause = _root_cause(error)
    return HubFailure(
        model,
        "ModelConfigUnavailable",
        f"cannot read config.json of {where} from {endpoint} ({cause}); llmop retries. If the cluster has no "
        f"access to the hub, set HF_ENDPOINT to a mirror it can reach, {_ADVICE}",
    )


def _status(error: BaseException) -> int | None:
    seen: BaseException | None = error
    while seen is not None:
        response = getattr(seen, "response", None)
        code = getattr(response, "status_code", None)
        if isinstance(code, int):
            return code
        seen = seen.__cause__ or seen.__context__
    return None


def _root_cause(error: BaseException) -> str:
    """The innermost cause in one line: a timeout, a refused connection, an HTTP status."""
    seen: BaseException = error
    while seen.__cause__ is not None or seen.__context__ is not None:
        seen = seen.__cause__ or seen.__context__  # type: ignore[assignment]
    status = _status(error)
    text = f"HTTP {status}" if status else type(seen).__name__
    if "timed out" in str(seen).lower() or "timeout" in type(seen).__name__.lower():
        text = "timed out"
    elif "refused" in str(seen).lower():
        text = "connection refused"
    return text


def cache_root(cache_dir: str | None = None) -> Path:
    """Where read config.json files are kept: the argument, LLMOP_HUB_CACHE, else ~/.cache/llmop/hub."""
    return Path(cache_dir or os.environ.get("LLMOP_HUB_CACHE") or Path.home() / ".cache" / "llmop" / "hub")


def _cache_path(root: Path, endpoint: str, model: str, revision: str | None) -> Path:
    hub = hashlib.sha256(endpoint.encode()).hexdigest()[:12]
    return root / hub / model.replace("/", "--") / (revision or "main").replace("/", "--") / "config.json"


def _download(model: str, revision: str | None, token: str | bool | None, base: str, timeout_s: float) -> bytes:
    """One GET of config.json with huggingface_hub's URL, headers and error types (no retries: llmop retries)."""
    from huggingface_hub import constants, get_session, hf_hub_url
    from huggingface_hub.utils._headers import build_hf_headers
    from huggingface_hub.utils._http import hf_raise_for_status

    # No telemetry: from huggingface_hub 2.4 the user agent's agent detection GETs {endpoint}/api/agent-harnesses
    # first; the operator sends the hub nothing but this one request (README, threat model).
    constants.HF_HUB_DISABLE_TELEMETRY = True
    url = hf_hub_url(model, "config.json", revision=revision, endpoint=base)
    response = get_session().get(url, headers=build_hf_headers(token=token), timeout=timeout_s)
    hf_raise_for_status(response)
    return bytes(response.content)


def fetch_checkpoint(
    model: str,
    revision: str | None = None,
    token: str | bool | None = None,
    endpoint: str | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    cache_dir: str | None = None,
    token_named: str | None = None,
) -> CheckpointLookup:
    """config.json of `model` parsed, or a HubFailure. token None: the environment's (HF_TOKEN, a login);
    False: none. A copy read earlier (kept under cache_root) answers when the hub cannot be reached."""
    base = hub_endpoint(endpoint)
    cached = _cache_path(cache_root(cache_dir), base, model, revision)
    try:
        payload = _download(model, revision, token, base, timeout_s)
    except Exception as error:  # every failure of the client becomes a reason; nothing propagates
        failure = _failure(model, revision, base, error, token_named)
        if failure.reason != "ModelConfigUnavailable" or not cached.is_file():
            return failure
        payload = cached.read_bytes()
    else:
        with contextlib.suppress(OSError):
            cached.parent.mkdir(parents=True, exist_ok=True)
            cached.write_bytes(payload)
    try:
        config = json.loads(payload)
    except ValueError as error:
        return HubFailure(model, "ModelConfigUnsupported", f"config.json of {_where(model, revision)} is not JSON "
                          f"({type(error).__name__}); set spec.model.architecture to the model's numbers")  # fmt: skip
    if not isinstance(config, dict):
        return HubFailure(model, "ModelConfigUnsupported", f"config.json of {_where(model, revision)} is not a JSON "
                          "object; set spec.model.architecture to the model's numbers")  # fmt: skip
    return parse_config(model, config)
