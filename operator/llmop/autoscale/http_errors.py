"""What an outbound request's failure may say in status and Events: its kind, never the answer's body."""

from __future__ import annotations

import json
import re
import socket
import ssl
from collections.abc import Iterator

CA_HINT = "give the operator the CA bundle (--prometheus-ca-file, env LLMOP_PROMETHEUS_CA_FILE)"
_STATUS = re.compile(r"^HTTP Status Code (\d{3})\b")  # prometheus-api-client's message; the body follows it


class OutboundFailure(Exception):
    """A request failed; the message is safe to show to whoever wrote the URL (no response body, no headers)."""


class CertificateRejected(OutboundFailure):
    """The server's TLS certificate did not verify."""


class TlsFailed(OutboundFailure):
    """The TLS handshake failed for another reason (plain HTTP on an https URL, protocol mismatch)."""


class Unreachable(OutboundFailure):
    """No connection: refused, reset, unresolvable or unroutable."""


class TimedOut(OutboundFailure):
    """No answer in time."""


class HttpStatus(OutboundFailure):
    """An HTTP status other than success (redirects are not followed)."""


class BadAnswer(OutboundFailure):
    """An answer that is not what the API returns."""


class CredentialsUnreadable(OutboundFailure):
    """A configured credential file could not be read."""


def _chain(error: BaseException) -> Iterator[BaseException]:
    """The error and everything it wraps: causes, contexts, urllib3's `reason` and exceptions in `args`."""
    seen: set[int] = set()
    todo: list[BaseException] = [error]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        wrapped = [current.__cause__, current.__context__, getattr(current, "reason", None), *current.args]
        todo.extend(item for item in wrapped if isinstance(item, BaseException))


def _status(error: BaseException) -> int | None:
    response = getattr(error, "response", None)
    code = getattr(response, "status_code", None)
    if isinstance(code, int):
        return code
    if type(error).__name__ == "PrometheusApiClientException":
        match = _STATUS.match(str(error))
        return int(match.group(1)) if match else None
    return None


def _classify(error: BaseException) -> OutboundFailure | None:
    if isinstance(error, OutboundFailure):
        return error
    if isinstance(error, ssl.SSLCertVerificationError):
        why = error.verify_message or error.reason or "unknown reason"
        return CertificateRejected(f"TLS certificate verification failed: {why}; {CA_HINT}")
    if isinstance(error, ssl.SSLError):
        return TlsFailed(f"TLS handshake failed: {error.reason or type(error).__name__}")
    if isinstance(error, ConnectionRefusedError):
        return Unreachable("connection refused")
    if isinstance(error, ConnectionResetError):
        return Unreachable("connection reset")
    if isinstance(error, socket.gaierror):
        return Unreachable("host name not resolved")
    if isinstance(error, TimeoutError) or type(error).__name__ in ("ReadTimeoutError", "ConnectTimeoutError"):
        return TimedOut("timed out")
    code = _status(error)
    if code is not None:
        return HttpStatus(f"HTTP {code}" + (" (redirects are not followed)" if 300 <= code < 400 else ""))
    if isinstance(error, json.JSONDecodeError):
        return BadAnswer("the answer is not JSON")
    return None


def describe(error: BaseException) -> OutboundFailure:
    """The failure as a safe OutboundFailure: the first recognised error in the chain, else only the type's name."""
    for item in _chain(error):
        found = _classify(item)
        if found is not None:
            return found
    if isinstance(error, OSError) and error.strerror:
        return Unreachable(error.strerror)  # the OS's own words (network unreachable, ...)
    if isinstance(error, KeyError | IndexError | TypeError | ValueError):
        return BadAnswer(f"unexpected answer ({type(error).__name__})")
    return OutboundFailure(type(error).__name__)


def safe_text(error: BaseException) -> str:
    """`Kind: message` of `describe(error)`, for status messages."""
    failure = describe(error)
    return f"{type(failure).__name__}: {failure}"
