"""Drift detection: does a live object already carry every field llmop would apply."""

from __future__ import annotations

from typing import Any


def contains(desired: Any, live: Any) -> bool:
    """True when `live` has every field of `desired` with the same value (extra live fields are fine).

    Lists must have the same length and match item by item: the API server keeps list order for the
    fields llmop sets (containers, args, env, ports, volumes, tolerations).
    """
    if isinstance(desired, dict):
        if not isinstance(live, dict):
            return False
        return all(key in live and contains(value, live[key]) for key, value in desired.items())
    if isinstance(desired, list):
        if not isinstance(live, list) or len(desired) != len(live):
            return False
        return all(contains(d, item) for d, item in zip(desired, live, strict=True))
    if isinstance(desired, bool) or isinstance(live, bool):
        return desired is live
    if isinstance(desired, int | float) and isinstance(live, int | float):
        return desired == live
    return str(desired) == str(live) if isinstance(desired, str) and isinstance(live, str) else desired == live


def managed_fields_drift(desired: dict[str, Any], live: dict[str, Any] | None) -> bool:
    """True when the object is missing or any field llmop owns differs."""
    if live is None:
        return True
    return not (
        contains(desired.get("metadata", {}).get("labels", {}), live.get("metadata", {}).get("labels", {}))
        and contains(
            desired.get("metadata", {}).get("ownerReferences", []), live.get("metadata", {}).get("ownerReferences", [])
        )
        and contains(desired.get("spec", {}), live.get("spec", {}))
    )
