"""Where each alert's runbook section lives: docs/runbook.md in the repository, one `## AlertName` per alert."""

from __future__ import annotations

from pathlib import Path
from typing import Any

RUNBOOK_PATH = Path("docs/runbook.md")
RUNBOOK_URL = "https://github.com/llmop/llmop/blob/main/docs/runbook.md"


def runbook_url(alert: str) -> str:
    """The URL of the alert's section (GitHub's anchor of a `## AlertName` heading: the name lower-cased)."""
    return f"{RUNBOOK_URL}#{alert.lower()}"


def with_runbooks(rules: dict[str, Any]) -> dict[str, Any]:
    """The rule file with runbook_url added to every alert's annotations (recording rules untouched)."""
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                rule.setdefault("annotations", {})["runbook_url"] = runbook_url(rule["alert"])
    return rules
