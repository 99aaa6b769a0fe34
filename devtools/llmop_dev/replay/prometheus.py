"""An emulated Prometheus: scrapes replay pods, keeps bounded history, answers the production PromQL subset."""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from llmop_dev.replay.promql_eval import NAME, Evaluator, Sample, Series, Value
from llmop_dev.replay.promql_parse import Node, PromQLError, Selector, parse
from llmop_dev.replay.types import QueryRunner, ScrapeTarget

__all__ = ["MiniPrometheus", "PromQLError", "format_value"]

Key = tuple[tuple[str, str], ...]


def format_value(value: float) -> str:
    """A sample value as the HTTP API writes it (Go strconv.FormatFloat(v, 'f', -1, 64))."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    text = repr(float(value))
    if "e" in text:
        text = format(Decimal(text), "f")
    return text[:-2] if text.endswith(".0") else text


class _Series:
    __slots__ = ("key", "labels", "ts", "vs")

    def __init__(self, key: Key, labels: dict[str, str]) -> None:
        self.key = key
        self.labels = labels
        self.ts: list[int] = []  # milliseconds, increasing
        self.vs: list[float | None] = []  # None is a staleness marker


class MiniPrometheus:
    """In-memory TSDB plus PromQL evaluator with Prometheus 2.x semantics.

    - `scrape(now, targets)` is one scrape round: every target's samples get timestamp `now` (ms precision) and
      the target labels; a scraped label that clashes with a target label is kept as `exported_<name>` and the
      target's value wins (honor_labels: false). Series that were in the previous round but not in this one
      (a pod that is gone, a family that disappeared) get a staleness marker at `now`, as Prometheus writes.
    - Instant selectors take the newest sample within `lookback_s` unless it is a staleness marker; range
      selectors take samples in [at - range, at] (Prometheus 2.x; `left_open_ranges=True` gives 3.x's
      (at - range, at]).
    - History older than `retention_s` is dropped; a range longer than that raises PromQLError.
    """

    def __init__(
        self,
        scrape_interval_s: float = 15.0,
        lookback_s: float = 300.0,
        retention_s: float = 900.0,
        left_open_ranges: bool = False,
    ) -> None:
        if retention_s < lookback_s:
            raise ValueError("retention_s must cover lookback_s")
        self.scrape_interval_s = scrape_interval_s
        self.lookback_ms = round(lookback_s * 1000)
        self.retention_ms = round(retention_s * 1000)
        self.left_open_ranges = left_open_ranges
        self.last_scrape_s: float | None = None
        self._series: dict[Key, _Series] = {}
        self._by_name: dict[str, dict[Key, _Series]] = {}
        self._live: set[Key] = set()
        self._parsed: dict[str, Node] = {}
        self._selected: dict[Selector, list[_Series]] = {}
        self._keys: dict[tuple[Key, str, Key], _Series] = {}  # (target labels, name, scraped labels) -> series

    # -- ingestion ------------------------------------------------------------------------------------------------
    def due(self, now: float) -> bool:
        """Whether a scrape round is due at `now` (every `scrape_interval_s` since the last one)."""
        return self.last_scrape_s is None or now >= self.last_scrape_s + self.scrape_interval_s - 1e-9

    def scrape(self, now: float, targets: Sequence[ScrapeTarget]) -> None:
        t = round(now * 1000)
        if self.last_scrape_s is not None and t <= round(self.last_scrape_s * 1000):
            raise ValueError(f"scrape at {now} is not after the previous one at {self.last_scrape_s}")
        current: set[Key] = set()
        cache = self._keys
        for target in targets:
            target_key = tuple(sorted(target.labels.items()))
            for name, labels, value in target.metrics.samples():
                raw = (target_key, name, tuple(labels.items()))
                series = cache.get(raw)
                if series is None or self._series.get(series.key) is not series:
                    series = cache[raw] = self._series_for(target.labels, name, labels)
                if series.key in current:
                    raise ValueError(f"duplicate sample for {series.labels} in one scrape")
                current.add(series.key)
                series.ts.append(t)
                series.vs.append(float(value))
        for key in self._live - current:
            series = self._series.get(key)
            if series is not None and series.vs and series.vs[-1] is not None:
                series.ts.append(t)
                series.vs.append(None)
        self._live = current
        self.last_scrape_s = now
        self._trim(t - self.retention_ms)

    def _series_for(self, target_labels: dict[str, str], name: str, labels: dict[str, str]) -> _Series:
        merged = {NAME: name}
        for key, item in labels.items():
            if item != "":
                merged[f"exported_{key}" if key in target_labels else key] = item
        merged.update({key: item for key, item in target_labels.items() if item != ""})
        key = tuple(sorted(merged.items()))
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = _Series(key, merged)
            self._by_name.setdefault(name, {})[key] = series
            self._selected.clear()
        return series

    def _trim(self, cutoff_ms: int) -> None:
        dead: list[Key] = []
        for key, series in self._series.items():
            if series.ts and series.ts[0] < cutoff_ms:
                index = bisect_left(series.ts, cutoff_ms)
                del series.ts[:index]
                del series.vs[:index]
                if not series.ts:
                    dead.append(key)
        for key in dead:
            series = self._series.pop(key)
            by_name = self._by_name[series.labels[NAME]]
            del by_name[key]
            if not by_name:
                del self._by_name[series.labels[NAME]]
        if dead:
            self._selected.clear()
            self._keys = {raw: series for raw, series in self._keys.items() if series.key in self._series}

    # -- selection (the evaluator's Storage) ----------------------------------------------------------------------
    def _select(self, selector: Selector) -> list[_Series]:
        found = self._selected.get(selector)
        if found is None:
            pool = self._by_name.get(selector.name, {}) if selector.name is not None else self._series
            found = [
                series
                for series in pool.values()
                if all(m.matches(series.labels.get(m.name, "")) for m in selector.matchers)
            ]
            self._selected[selector] = found
        return found

    def instant(self, selector: Selector, at_ms: int) -> list[Sample]:
        out: list[Sample] = []
        floor = at_ms - self.lookback_ms
        for series in self._select(selector):
            index = bisect_right(series.ts, at_ms) - 1
            if index < 0 or series.ts[index] < floor:
                continue
            value = series.vs[index]
            if value is not None:
                out.append(Sample(series.labels, value))
        return out

    def range(self, selector: Selector, at_ms: int, range_ms: int) -> list[Series]:
        if range_ms > self.retention_ms:
            raise PromQLError(f"range {range_ms / 1000:g}s is longer than the emulated retention")
        out: list[Series] = []
        start = at_ms - range_ms
        for series in self._select(selector):
            ts = series.ts
            lo = bisect_right(ts, start) if self.left_open_ranges else bisect_left(ts, start)
            hi = bisect_right(ts, at_ms)
            if lo >= hi:
                continue
            points = [(ts[i], v) for i in range(lo, hi) if (v := series.vs[i]) is not None]
            if points:
                out.append(Series(series.labels, points))
        return out

    # -- queries ------------------------------------------------------------------------------------------------
    def evaluate(self, expr: str, at: float) -> Value:
        """The raw result: a float (scalar), a list of Sample (instant vector) or of Series (range vector)."""
        node = self._parsed.get(expr)
        if node is None:
            node = self._parsed[expr] = parse(expr)
        return Evaluator(self, round(at * 1000)).eval(node)

    def query(self, expr: str, at: float) -> list[Any]:
        """An instant query in prometheus-api-client `custom_query` form (a scalar comes back as [at, "v"])."""
        value = self.evaluate(expr, at)
        if isinstance(value, float):
            return [at, format_value(value)]
        rows: list[dict[str, Any]] = []
        for item in value:
            if isinstance(item, Series):
                values = [[t / 1000, format_value(v)] for t, v in item.points]
                rows.append({"metric": dict(item.labels), "values": values})
            else:
                rows.append({"metric": dict(item.labels), "value": [at, format_value(item.value)]})
        return rows

    def runner(self, at: float) -> QueryRunner:
        """A QueryRunner answering at `at` (for PrometheusMetrics(runner=...) and the controllers' View)."""
        return lambda expr: self.query(expr, at)

    @property
    def series_count(self) -> int:
        return len(self._series)
