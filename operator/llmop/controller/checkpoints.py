"""The controller's config.json lookups: the token from the LLMDeployment's Secret, then the shared hub cache."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from kubernetes.client.exceptions import ApiException

from llmop.api.spec import LLMDeploymentSpec
from llmop.catalog.hf_config import CheckpointLookup, HubFailure
from llmop.hub.cache import CheckpointCache


class _NoToken(Exception):
    """The Secret cannot give a token; the message says why and what to do."""


class HubResolver:
    """(namespace, spec) -> config.json of the spec's model, read with the token its tokenSecretRef names."""

    def __init__(self, core: Any, cache: CheckpointCache | None = None) -> None:
        self.core = core  # kubernetes.client.CoreV1Api
        self.cache = cache or CheckpointCache()

    def __call__(self, namespace: str, spec: LLMDeploymentSpec) -> CheckpointLookup:
        ref = spec.model.token_secret_ref
        model = spec.model.name
        if ref is None:
            return self.cache.lookup(model, spec.model.revision, False)
        named = f"Secret {namespace}/{ref.name} (key {ref.key})"
        try:
            token = self._token(namespace, ref.name, ref.key)
        except _NoToken as problem:
            return HubFailure(model, "TokenSecretUnavailable", f"cannot read the hub token for {model!r}: {named} "
                              f"{problem}")  # fmt: skip
        return self.cache.lookup(model, spec.model.revision, token, token_named=named)

    def _token(self, namespace: str, name: str, key: str) -> str:
        """The token; _NoToken says why there is none (so the message names the Secret and what to do)."""
        try:
            secret = self.core.read_namespaced_secret(name, namespace)
        except ApiException as error:
            if error.status == 404:
                raise _NoToken(
                    "does not exist; create it (kubectl create secret generic ... --from-literal=token=hf_...)"
                ) from None
            if error.status == 403:
                raise _NoToken(
                    "cannot be read by the operator (forbidden); install the chart with hub.readTokenSecrets=true "
                    "or set spec.model.architecture"
                ) from None
            raise _NoToken(f"could not be read (HTTP {error.status})") from None
        data = (secret.data or {}).get(key)
        if not data:
            raise _NoToken(f"has no key {key!r}; set spec.model.tokenSecretRef.key")
        try:
            return base64.b64decode(data).decode("utf-8").strip()
        except (binascii.Error, UnicodeDecodeError):
            raise _NoToken(f"key {key!r} is not a UTF-8 token") from None
