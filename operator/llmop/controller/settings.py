"""Operator configuration from flags and LLMOP_* environment variables (the Helm chart sets them)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from llmop.autoscale.outbound import OutboundPolicy, is_base_url
from llmop.autoscale.prom_http import PrometheusClientSettings
from llmop.catalog.engines import DEFAULT_IMAGE_REGISTRY

_TRUE, _FALSE = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")


class SettingError(ValueError):
    """An operator setting has a value that cannot be used; the message names the variable."""


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


def env_bool(name: str, default: bool = False) -> bool:
    """A boolean variable: 1/true/yes/on or 0/false/no/off (any case); unset keeps the default."""
    value = os.environ.get(name)
    if value is None:
        return default
    if value.strip().lower() in _TRUE:
        return True
    if value.strip().lower() in _FALSE:
        return False
    raise SettingError(f"{name}={value!r}: expected true or false")


def url_list(text: str) -> tuple[str, ...]:
    """URLs separated by commas, spaces or newlines (as a chart value list joins them)."""
    return tuple(item for item in re.split(r"[\s,]+", text) if item)


@dataclass(frozen=True)
class OperatorConfig:
    """Settings that apply to every LLMDeployment the operator manages."""

    prometheus_url: str | None = None
    image_registry: str = DEFAULT_IMAGE_REGISTRY
    resync_seconds: float = 300.0  # full reconcile of each object at least this often (drift of unwatched children)
    autoscale_interval_seconds: float = 15.0
    metrics_port: int = 8080
    metrics_address: str = "0.0.0.0"
    health_port: int = 8081
    health_address: str = "0.0.0.0"
    loop_stall_seconds: float = 30.0  # /healthz fails and the leader steps down when the event loop stalls this long
    prometheus_timeout_seconds: float = 5.0
    # What a spec may point the operator at (autoscale/outbound.py); the operator's own URL is always allowed.
    allowed_prometheus_url_prefixes: tuple[str, ...] = ()
    allow_custom_probe_endpoints: bool = False
    # TLS and credentials for Prometheus (autoscale/prom_http.py).
    prometheus_ca_file: str | None = None
    prometheus_insecure_skip_verify: bool = False
    prometheus_bearer_token_file: str | None = None
    prometheus_basic_auth_username_file: str | None = None
    prometheus_basic_auth_password_file: str | None = None

    @classmethod
    def from_env(cls) -> OperatorConfig:
        return cls(
            prometheus_url=os.environ.get("LLMOP_PROMETHEUS_URL") or None,
            image_registry=os.environ.get("LLMOP_IMAGE_REGISTRY") or DEFAULT_IMAGE_REGISTRY,
            resync_seconds=_env_float("LLMOP_RESYNC_SECONDS", 300.0),
            autoscale_interval_seconds=_env_float("LLMOP_AUTOSCALE_INTERVAL_SECONDS", 15.0),
            metrics_port=int(os.environ.get("LLMOP_METRICS_PORT") or 8080),
            metrics_address=os.environ.get("LLMOP_METRICS_ADDRESS") or "0.0.0.0",
            health_port=int(os.environ.get("LLMOP_HEALTH_PORT") or 8081),
            health_address=os.environ.get("LLMOP_HEALTH_ADDRESS") or "0.0.0.0",
            loop_stall_seconds=_env_float("LLMOP_LOOP_STALL_SECONDS", 30.0),
            prometheus_timeout_seconds=_env_float("LLMOP_PROMETHEUS_TIMEOUT_SECONDS", 5.0),
            allowed_prometheus_url_prefixes=url_list(os.environ.get("LLMOP_ALLOWED_PROMETHEUS_URL_PREFIXES", "")),
            allow_custom_probe_endpoints=env_bool("LLMOP_ALLOW_CUSTOM_PROBE_ENDPOINTS"),
            prometheus_ca_file=os.environ.get("LLMOP_PROMETHEUS_CA_FILE") or None,
            prometheus_insecure_skip_verify=env_bool("LLMOP_PROMETHEUS_INSECURE_SKIP_VERIFY"),
            prometheus_bearer_token_file=os.environ.get("LLMOP_PROMETHEUS_BEARER_TOKEN_FILE") or None,
            prometheus_basic_auth_username_file=os.environ.get("LLMOP_PROMETHEUS_BASIC_AUTH_USERNAME_FILE") or None,
            prometheus_basic_auth_password_file=os.environ.get("LLMOP_PROMETHEUS_BASIC_AUTH_PASSWORD_FILE") or None,
        )

    def validate(self) -> None:
        """Refuse settings that cannot work, before the operator starts acting."""
        for prefix in self.allowed_prometheus_url_prefixes:
            if not is_base_url(prefix):
                raise SettingError(f"allowed Prometheus URL prefix {prefix!r}: not a plain http(s) URL")
        if self.prometheus_url and not is_base_url(self.prometheus_url):
            raise SettingError(f"Prometheus URL {self.prometheus_url!r}: not a plain http(s) URL")
        if self.prometheus_bearer_token_file and self.prometheus_basic_auth_password_file:
            raise SettingError("set either a Prometheus bearer token file or basic auth, not both")
        if self.prometheus_basic_auth_username_file and not self.prometheus_basic_auth_password_file:
            raise SettingError("a Prometheus basic auth username file needs the password file too")
        if self.loop_stall_seconds <= 0:
            raise SettingError(f"loop stall seconds {self.loop_stall_seconds}: must be positive")

    def outbound_policy(self) -> OutboundPolicy:
        """Which spec URLs the operator may send requests to."""
        return OutboundPolicy(
            self.prometheus_url, self.allowed_prometheus_url_prefixes, self.allow_custom_probe_endpoints
        )

    def prometheus_client(self) -> PrometheusClientSettings:
        """TLS and credentials for every Prometheus query; credentials only to the operator's own URL's origin."""
        return PrometheusClientSettings(
            ca_file=self.prometheus_ca_file,
            insecure_skip_verify=self.prometheus_insecure_skip_verify,
            bearer_token_file=self.prometheus_bearer_token_file,
            basic_auth_username_file=self.prometheus_basic_auth_username_file,
            basic_auth_password_file=self.prometheus_basic_auth_password_file,
            credentials_origin=self.prometheus_url,
        )
