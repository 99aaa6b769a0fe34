"""RFC 3339 timestamps: the three precisions the operator writes (Time, the autoscaler's state, a Lease's
MicroTime) and reading them back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from llmop.api.times import parse_rfc3339, rfc3339

MOMENT = datetime(2026, 12, 2, 7, 31, 7, 987654, tzinfo=UTC)


def test_each_precision_truncates_the_fraction() -> None:
    assert rfc3339(MOMENT) == "2026-12-02T07:31:07Z"
    assert rfc3339(MOMENT, digits=3) == "2026-12-02T07:31:07.987Z"
    assert rfc3339(MOMENT, digits=6) == "2026-12-02T07:31:07.987654Z"
    assert rfc3339(MOMENT.timestamp(), digits=3) == "2026-12-02T07:31:07.987Z"


def test_another_zone_is_written_in_utc() -> None:
    assert rfc3339(MOMENT.astimezone(timezone(timedelta(hours=2)))) == "2026-12-02T07:31:07Z"


def test_read_back() -> None:
    assert parse_rfc3339("2026-12-02T07:31:07.987Z") == datetime(2026, 12, 2, 7, 31, 7, 987000, tzinfo=UTC).timestamp()
    assert parse_rfc3339(MOMENT) == MOMENT.timestamp()
    assert parse_rfc3339("yesterday") is None and parse_rfc3339(12.5) is None and parse_rfc3339(None) is None
