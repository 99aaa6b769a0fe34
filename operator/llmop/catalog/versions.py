"""Engine version strings: parsing and ordering ("0.33.0" < "0.100.0")."""

from __future__ import annotations

import re

_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?$")

Version = tuple[int, int, int]


def parse_version(text: str) -> Version:
    """Parse 'X.Y' or 'X.Y.Z' (optional leading 'v'); raise ValueError otherwise."""
    match = _VERSION.match(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a version of the form X.Y.Z")
    major, minor, patch = match.groups()
    return int(major), int(minor), int(patch or 0)


def in_range(version: Version, since: str | None, until: str | None) -> bool:
    """True when since <= version < until (either bound may be open)."""
    if since is not None and version < parse_version(since):
        return False
    return not (until is not None and version >= parse_version(until))
