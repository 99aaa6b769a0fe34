"""Which URLs from an LLMDeployment's spec the operator may send requests to (pure; no request is made here)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}
PROMETHEUS_SETTING = "--allow-prometheus-url-prefix (env LLMOP_ALLOWED_PROMETHEUS_URL_PREFIXES)"
PROBE_SETTING = "--allow-custom-probe-endpoints (env LLMOP_ALLOW_CUSTOM_PROBE_ENDPOINTS)"
PLAIN_ONLY = "only plain http(s) base URLs (no user info, query or fragment)"


def _parts(url: str) -> SplitResult | None:
    """The parts of an http(s) URL with a host and no user info; else None."""
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    return parts if parts.username is None and parts.password is None else None


def _split(url: str) -> SplitResult | None:
    """The URL's parts when it is a plain http(s) base URL: no user info, query or fragment; else None."""
    parts = _parts(url)
    return None if parts is None or parts.query or parts.fragment else parts


def is_base_url(url: str) -> bool:
    """Whether `url` is a plain http(s) base URL (host, no user info, query or fragment)."""
    return _split(url) is not None


def origin(url: str) -> tuple[str, str, int] | None:
    """(scheme, lower-case host, port) of an http(s) URL without user info, the default port filled in."""
    parts = _parts(url)
    if parts is None or parts.hostname is None:
        return None
    return parts.scheme, parts.hostname.lower(), parts.port or DEFAULT_PORTS[parts.scheme]


def within(url: str, prefix: str) -> bool:
    """Whether `url` lies under `prefix`: the same origin, and the prefix's path on a segment boundary
    (`https://a/b` covers `https://a/b` and `https://a/b/c`, never `https://a/bc` or `https://a.evil/b`)."""
    target, base = _split(url), _split(prefix)
    if target is None or base is None or origin(url) != origin(prefix):
        return False
    root, path = base.path.rstrip("/"), target.path.rstrip("/")
    return path == root or path.startswith(root + "/")


@dataclass(frozen=True)
class OutboundPolicy:
    """The operator's settings for URLs taken from a spec: Prometheus only under the allowed prefixes (the
    operator's own URL is always allowed), engine probes only at the deployment's own Service unless allowed."""

    own_prometheus_url: str | None = None
    prometheus_prefixes: tuple[str, ...] = ()
    custom_probe_endpoints: bool = False

    def prometheus_refusal(self, url: str) -> str | None:
        """None when the operator may query `url`; else why not, naming the setting that would allow it."""
        if _split(url) is None:
            return f"Prometheus URL {url!r} refused: {PLAIN_ONLY}"
        allowed = [p for p in (self.own_prometheus_url, *self.prometheus_prefixes) if p]
        if any(within(url, prefix) for prefix in allowed):
            return None
        listed = ", ".join(self.prometheus_prefixes) or "none"
        return (
            f"spec.autoscaling.prometheusUrl {url} is not allowed by the operator: it is neither the operator's "
            f"Prometheus URL nor under an allowed prefix ({PROMETHEUS_SETTING}: {listed}); no request was sent"
        )

    def probe_refusal(self, endpoint: str, own_service: str) -> str | None:
        """None when the operator may probe `endpoint`; else why not, naming the setting that would allow it."""
        if _split(endpoint) is None:
            return f"probe endpoint {endpoint!r} refused: {PLAIN_ONLY}"
        if within(endpoint, own_service) or self.custom_probe_endpoints:
            return None
        return (
            f"spec.autoscaling.probe.endpoint {endpoint} is not allowed by the operator: only the deployment's own "
            f"Service ({own_service}) is probed unless {PROBE_SETTING} is set; no request was sent"
        )
