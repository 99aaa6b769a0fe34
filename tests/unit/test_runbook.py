"""Every alert links its own section of docs/runbook.md, and the runbook has a section for each alert only."""

from __future__ import annotations

import re
from pathlib import Path

from llmop_dev.observability.alerts import prometheus_rules
from llmop_dev.observability.runbook import RUNBOOK_PATH, RUNBOOK_URL

ROOT = Path(__file__).resolve().parents[2]


def _alerts() -> dict[str, str]:
    return {
        rule["alert"]: rule["annotations"]["runbook_url"]
        for group in prometheus_rules()["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }


def test_each_alert_has_a_runbook_section_and_each_section_an_alert() -> None:
    headings = re.findall(r"^## (\S+)$", (ROOT / RUNBOOK_PATH).read_text(), flags=re.MULTILINE)
    alerts = _alerts()
    assert sorted(headings) == sorted(alerts)
    for alert, url in alerts.items():
        assert url == f"{RUNBOOK_URL}#{alert.lower()}"
    assert RUNBOOK_URL.endswith("/blob/main/" + RUNBOOK_PATH.as_posix())
