""" "Did you mean": the closest allowed names to a mistyped one (difflib, case-insensitive). Pure."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

_QUOTED = re.compile(r"'([^']*)'")


def closest(value: str, choices: Iterable[str], limit: int = 2, cutoff: float = 0.6) -> list[str]:
    """Up to `limit` choices that look like `value`, best first; an exact case-insensitive match wins alone."""
    by_lower: dict[str, str] = {}
    for choice in choices:
        by_lower.setdefault(choice.lower(), choice)
    wanted = value.strip().lower()
    if wanted in by_lower:
        return [by_lower[wanted]]
    starts = [choice for lower, choice in by_lower.items() if lower.startswith(wanted) and wanted]
    if starts:
        return starts[:limit]
    return [by_lower[m] for m in difflib.get_close_matches(wanted, list(by_lower), n=limit, cutoff=cutoff)]


def did_you_mean(value: str, choices: Iterable[str], template: str = "; did you mean {}?") -> str:
    """'; did you mean X?' (or 'X or Y?'), or '' when nothing is close."""
    found = closest(value, choices)
    return template.format(" or ".join(found)) if found else ""


def quoted_choices(expected: str) -> list[str]:
    """The names in pydantic's "'a', 'b' or 'c'" list."""
    return _QUOTED.findall(expected)
