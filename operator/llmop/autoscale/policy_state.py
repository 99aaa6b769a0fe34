"""What the policy remembers between ticks (kept in status.autoscaler) and the Decision one tick returns. Pure."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from llmop.api.times import parse_rfc3339, rfc3339
from llmop.autoscale import calibration

Direction = Literal["up", "down", "hold"]


def iso(value: float | None) -> str | None:
    if value is None:
        return None
    return rfc3339(value, digits=3)


def _parse_time(value: Any) -> float | None:
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return parse_rfc3339(value) if isinstance(value, str) else None


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


@dataclass(frozen=True)
class PolicyState:
    """What the policy remembers between ticks; stored in status.autoscaler so a restart resumes without a jump."""

    breach_since: float | None = None  # pressure to scale up has held since
    headroom_since: float | None = None  # n-1 replicas would have met the SLO since
    last_scale_at: float | None = None
    last_scale_direction: Direction | None = None
    last_ready: int | None = None
    ready_before: int | None = None  # the ready count before the last increase (the window's replicas until it passes)
    ready_changed_at: float | None = None
    trend_at: float | None = None  # when `trend_rps` was sampled
    trend_rps: float | None = None  # arrivals (req/s) at `trend_at`
    trend_slope: float | None = None  # growth of the arrivals over the last span, req/s per second
    trend_growth: float | None = None  # sustained growth: the lesser of the last two spans' slopes, >= 0
    load_scale: float | None = None  # learned: the real load weighs this much more than the capacity model says
    announced_scale: float | None = None  # the learned factor last announced in an Event (the plan: 1.0)
    step_scale: float | None = None  # learned: every decode and prefill step takes this much longer than planned
    batch_cap: float | None = None  # learned: sequences one replica runs at most (its running count while queueing)
    hold_floor: int | None = None  # scale-in stops here until `hold_until`: going below it was undone recently
    hold_until: float | None = None
    time_in_system_s: float | None = None  # learned: a request's mean time in the engine, (running + waiting) / rate
    time_in_system_at: float | None = None
    time_in_system_since: float | None = None  # learning it since (a rise is judged after one half-life of it)
    in_system_variance: float | None = None  # learned: the variance of running + waiting around rate x that time

    def window_spans_readiness_change(self, now: float, window_s: float) -> bool:
        """Whether the window of `window_s` ending `now` still holds the time before the last readiness change."""
        return self.ready_changed_at is not None and now - self.ready_changed_at < window_s

    _KEYS = (
        ("breach_since", "breachSince"),
        ("headroom_since", "headroomSince"),
        ("last_scale_at", "lastScaleAt"),
        ("ready_changed_at", "readyChangedAt"),
        ("trend_at", "trendAt"),
        ("hold_until", "holdUntil"),
        ("time_in_system_at", "timeInSystemAt"),
        ("time_in_system_since", "timeInSystemSince"),
    )
    _NUMBERS = (
        ("trend_rps", "trendRps"),
        ("trend_slope", "trendSlope"),
        ("trend_growth", "trendGrowth"),
        ("time_in_system_s", "timeInSystemSeconds"),
        ("in_system_variance", "inSystemVariance"),
    )

    def to_dict(self) -> dict[str, Any]:
        """camelCase, JSON-safe: times as RFC 3339 strings."""
        data: dict[str, Any] = {key: iso(getattr(self, attr)) for attr, key in self._KEYS}
        data["lastScaleDirection"] = self.last_scale_direction
        data["lastReady"] = self.last_ready
        data["readyBefore"] = self.ready_before
        data["holdFloor"] = self.hold_floor
        for attr, key in self._NUMBERS:
            value = getattr(self, attr)
            data[key] = None if value is None else round(value, 6)
        capacity = {"loadScale": self.load_scale, "stepScale": self.step_scale, "announcedScale": self.announced_scale,
                    "batchCap": self.batch_cap}  # fmt: skip
        data["capacity"] = {k: round(v, 3) for k, v in capacity.items() if v is not None} or None
        return {key: value for key, value in data.items() if value is not None}

    @classmethod
    def from_dict(cls, data: Any) -> PolicyState:
        """Tolerant: unknown or malformed fields are dropped (a fresh window is the safe default)."""
        if not isinstance(data, dict):
            return cls()
        times = {attr: _parse_time(data.get(key)) for attr, key in cls._KEYS}
        direction = data.get("lastScaleDirection")
        ready = data.get("lastReady")
        floor = data.get("holdFloor")
        numbers = {attr: _number(data.get(key)) for attr, key in cls._NUMBERS}
        stored = data.get("capacity")
        capacity: dict[str, Any] = stored if isinstance(stored, dict) else {}
        scales = {attr: _scale(capacity.get(key)) for attr, key in (("load_scale", "loadScale"),
                                                                    ("step_scale", "stepScale"),
                                                                    ("announced_scale", "announcedScale"))}  # fmt: skip
        cap = _number(capacity.get("batchCap"))
        scales["batch_cap"] = cap if cap is not None and cap >= 1 else None
        return cls(
            **times,
            **numbers,
            **scales,
            last_scale_direction=direction if direction in ("up", "down") else None,
            last_ready=_count(ready),
            ready_before=_count(data.get("readyBefore")),
            hold_floor=floor if isinstance(floor, int) and not isinstance(floor, bool) and floor > 0 else None,
        )


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _scale(value: Any) -> float | None:
    number = _number(value)
    if number is None or not calibration.MIN_LOAD_SCALE <= number <= calibration.MAX_LOAD_SCALE:
        return None
    return number


@dataclass(frozen=True)
class Decision:
    """The outcome of one tick: what to set, why (with numbers), and what to report."""

    desired: int
    direction: Direction
    reason: str
    slo_met: bool | None
    metrics_available: bool
    metrics_reason: str
    state: PolicyState
    capacity_note: str | None = None  # the learned capacity moved by more than the Event threshold: say so
