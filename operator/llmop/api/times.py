"""RFC 3339 timestamps as the Kubernetes API writes them (Time: seconds, MicroTime: microseconds) and read back."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def rfc3339(moment: float | datetime | None = None, digits: int = 0) -> str:
    """`2026-12-02T07:31:07Z`, with `digits` (3 or 6) of the second's fraction, truncated; default now, UTC."""
    if moment is None:
        moment = datetime.now(UTC)
    elif not isinstance(moment, datetime):
        moment = datetime.fromtimestamp(moment, UTC)
    text = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if digits:
        text += "." + f"{moment.microsecond:06d}"[:digits]
    return text + "Z"


def parse_rfc3339(value: Any) -> float | None:
    """Seconds since the epoch of an RFC 3339 string or a datetime; None for anything else or a malformed string."""
    if isinstance(value, datetime):
        return value.timestamp()
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
