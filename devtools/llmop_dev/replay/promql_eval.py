"""Evaluates parsed PromQL (promql_parse) at one instant with Prometheus 2.x semantics (functions.go, engine.go)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from llmop_dev.replay.promql_parse import (
    Aggregate,
    Binary,
    Call,
    Negate,
    Node,
    Number,
    PromQLError,
    RangeSelector,
    Selector,
)

Labels = dict[str, str]
NAME = "__name__"


@dataclass
class Sample:
    """One element of an instant vector."""

    labels: Labels
    value: float


@dataclass
class Series:
    """One element of a range vector: (timestamp ms, value) points, stale markers already removed."""

    labels: Labels
    points: list[tuple[int, float]]


Value = float | list[Sample] | list[Series]


class Storage(Protocol):
    def instant(self, selector: Selector, at_ms: int) -> list[Sample]: ...

    def range(self, selector: Selector, at_ms: int, range_ms: int) -> list[Series]: ...


def arithmetic(op: str, a: float, b: float) -> float:
    """IEEE arithmetic as Go does it (division by zero gives +-Inf or NaN, never an exception)."""
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        if b == 0:
            if a == 0 or math.isnan(a):
                return math.nan
            return math.copysign(math.inf, a) * math.copysign(1.0, b)
        return a / b
    if op == "%":
        try:
            return math.fmod(a, b)
        except ValueError:
            return math.nan
    raise PromQLError(f"unsupported operator {op}")


def _without_name(labels: Labels) -> Labels:
    return {key: value for key, value in labels.items() if key != NAME}


def _key(labels: Labels) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


def _unique(samples: list[Sample]) -> list[Sample]:
    seen: set[tuple[tuple[str, str], ...]] = set()
    for sample in samples:
        key = _key(sample.labels)
        if key in seen:
            raise PromQLError(f"vector cannot contain metrics with the same labelset {dict(key)}")
        seen.add(key)
    return samples


def extrapolated_rate(
    points: Sequence[tuple[int, float]], start_ms: int, end_ms: int, is_counter: bool, is_rate: bool, range_s: float
) -> float | None:
    """Prometheus' extrapolatedRate (rate, increase, delta); None when fewer than two points."""
    if len(points) < 2:
        return None
    first_t, first_v = points[0]
    last_t, last_v = points[-1]
    result = last_v - first_v
    if is_counter:
        previous = 0.0
        for _, value in points:
            if value < previous:
                result += previous
            previous = value
    to_start = (first_t - start_ms) / 1000
    to_end = (end_ms - last_t) / 1000
    sampled = (last_t - first_t) / 1000
    average = sampled / (len(points) - 1)
    if is_counter and result > 0 and first_v >= 0:
        to_zero = sampled * (first_v / result)
        if to_zero < to_start:
            to_start = to_zero
    threshold = average * 1.1
    interval = sampled
    interval += to_start if to_start < threshold else average / 2
    interval += to_end if to_end < threshold else average / 2
    factor = interval / sampled
    if is_rate:
        factor /= range_s
    return result * factor


def linear_slope(points: Sequence[tuple[int, float]]) -> float | None:
    """deriv(): least-squares slope per second (x relative to the first point, as Prometheus)."""
    if len(points) < 2:
        return None
    first_t, first_v = points[0]
    if all(value == first_v for _, value in points):
        return math.nan if math.isinf(first_v) else 0.0
    n = float(len(points))
    xs = [(t - first_t) / 1000 for t, _ in points]
    ys = [value for _, value in points]
    sum_x, sum_y = math.fsum(xs), math.fsum(ys)
    sum_xy = math.fsum(x * y for x, y in zip(xs, ys, strict=True))
    sum_x2 = math.fsum(x * x for x in xs)
    cov = sum_xy - sum_x * sum_y / n
    var = sum_x2 - sum_x * sum_x / n
    return cov / var if var != 0 else math.nan


def bucket_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """Prometheus' bucketQuantile over (upper bound, cumulative count): sort, coalesce, monotonic, interpolate."""
    if math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    ordered = sorted(buckets, key=lambda item: item[0])
    if not ordered or not math.isinf(ordered[-1][0]) or ordered[-1][0] < 0:
        return math.nan
    merged: list[list[float]] = []
    for bound, count in ordered:  # coalesceBuckets: equal upper bounds add up
        if merged and merged[-1][0] == bound:
            merged[-1][1] += count
        else:
            merged.append([bound, count])
    highest = -math.inf
    for item in merged:  # ensureMonotonic
        if item[1] > highest:
            highest = item[1]
        elif item[1] < highest:
            item[1] = highest
    if len(merged) < 2:
        return math.nan
    observations = merged[-1][1]
    if observations == 0:
        return math.nan
    rank = q * observations
    index = next((i for i in range(len(merged) - 1) if merged[i][1] >= rank), len(merged) - 1)
    if index == len(merged) - 1:
        return merged[-2][0]
    if index == 0 and merged[0][0] <= 0:
        return merged[0][0]
    start, end, count = 0.0, merged[index][0], merged[index][1]
    if index > 0:
        start = merged[index - 1][0]
        count -= merged[index - 1][1]
        rank -= merged[index - 1][1]
    if count == 0:
        return math.nan
    return start + (end - start) * (rank / count)


def _over_time(func: str, values: list[float]) -> float:
    if func == "count_over_time":
        return float(len(values))
    if func == "sum_over_time":
        return sum(values)
    if func == "avg_over_time":
        mean = 0.0
        for count, value in enumerate(values, start=1):
            mean += value / count - mean / count
        return mean
    best = values[0]
    for value in values[1:]:
        if (value > best if func == "max_over_time" else value < best) or math.isnan(best):
            best = value
    return best


class Evaluator:
    """Evaluates one expression at `at_ms` against a Storage."""

    def __init__(self, storage: Storage, at_ms: int) -> None:
        self.storage = storage
        self.at_ms = at_ms

    def eval(self, node: Node) -> Value:
        if isinstance(node, Number):
            return node.value
        if isinstance(node, Selector):
            return self.storage.instant(node, self.at_ms)
        if isinstance(node, RangeSelector):
            return self.storage.range(node.selector, self.at_ms, round(node.range_s * 1000))
        if isinstance(node, Call):
            return self.call(node)
        if isinstance(node, Aggregate):
            return self.aggregate(node)
        if isinstance(node, Negate):
            inner = self.vector_or_scalar(node.expr)
            if isinstance(inner, float):
                return -inner
            return [Sample(_without_name(sample.labels), -sample.value) for sample in inner]
        if isinstance(node, Binary):
            return self.binary(node)
        raise PromQLError(f"cannot evaluate {type(node).__name__}")

    def vector(self, node: Node) -> list[Sample]:
        value = None if isinstance(node, RangeSelector) else self.eval(node)
        if not isinstance(value, list):
            raise PromQLError(f"expected an instant vector, got a {'range vector' if value is None else 'scalar'}")
        return value  # type: ignore[return-value]

    def vector_or_scalar(self, node: Node) -> list[Sample] | float:
        if isinstance(node, RangeSelector):
            raise PromQLError("expected an instant vector or scalar, got a range vector")
        value = self.eval(node)
        return value  # type: ignore[return-value]

    def call(self, node: Call) -> list[Sample]:
        func = node.func
        if func == "histogram_quantile":
            q = self.eval(node.args[0])
            if not isinstance(q, float):
                raise PromQLError("histogram_quantile expects a scalar quantile")
            return self.histogram_quantile(q, self.vector(node.args[1]))
        if func in ("abs", "sqrt", "clamp_min", "clamp_max"):
            samples = self.vector(node.args[0])
            bound = self.eval(node.args[1]) if len(node.args) > 1 else 0.0
            if not isinstance(bound, float):
                raise PromQLError(f"{func} expects a scalar bound")
            ops: dict[str, Callable[[float], float]] = {
                "abs": abs,
                "sqrt": lambda v: math.sqrt(v) if v >= 0 else math.nan,
                "clamp_min": lambda v: math.nan if math.isnan(v) else max(v, bound),
                "clamp_max": lambda v: math.nan if math.isnan(v) else min(v, bound),
            }
            return _unique([Sample(_without_name(s.labels), ops[func](s.value)) for s in samples])
        selector = node.args[0]
        assert isinstance(selector, RangeSelector)
        range_ms = round(selector.range_s * 1000)
        start_ms = self.at_ms - range_ms
        out: list[Sample] = []
        for series in self.storage.range(selector.selector, self.at_ms, range_ms):
            points = series.points
            value: float | None
            if func in ("rate", "increase", "delta"):
                counter, is_rate = func != "delta", func == "rate"
                value = extrapolated_rate(points, start_ms, self.at_ms, counter, is_rate, selector.range_s)
            elif func == "irate":
                value = None
                if len(points) >= 2 and points[-1][0] != points[-2][0]:
                    (t0, v0), (t1, v1) = points[-2], points[-1]
                    value = (v1 if v1 < v0 else v1 - v0) / ((t1 - t0) / 1000)
            elif func == "deriv":
                value = linear_slope(points)
            else:
                value = _over_time(func, [v for _, v in points]) if points else None
            if value is not None:
                out.append(Sample(_without_name(series.labels), value))
        return _unique(out)

    def histogram_quantile(self, q: float, samples: list[Sample]) -> list[Sample]:
        groups: dict[tuple[tuple[str, str], ...], tuple[Labels, list[tuple[float, float]]]] = {}
        for sample in samples:
            try:
                bound = float(sample.labels.get("le", "x").replace("Inf", "inf"))
            except ValueError:
                continue
            labels = {k: v for k, v in sample.labels.items() if k not in (NAME, "le")}
            groups.setdefault(_key(labels), (labels, []))[1].append((bound, sample.value))
        return [Sample(labels, bucket_quantile(q, buckets)) for labels, buckets in groups.values()]

    def aggregate(self, node: Aggregate) -> list[Sample]:
        samples = self.vector(node.expr)
        grouping = set(node.grouping)
        groups: dict[tuple[tuple[str, str], ...], tuple[Labels, list[float]]] = {}
        for sample in samples:
            if node.without:
                labels = {k: v for k, v in sample.labels.items() if k != NAME and k not in grouping}
            else:
                labels = {k: v for k, v in sample.labels.items() if k in grouping}
            groups.setdefault(_key(labels), (labels, []))[1].append(sample.value)
        out: list[Sample] = []
        for labels, values in groups.values():
            if node.op == "sum":
                value = 0.0
                for item in values:
                    value += item
            elif node.op == "count":
                value = float(len(values))
            elif node.op == "avg":
                value = _over_time("avg_over_time", values)
            else:
                value = _over_time("max_over_time" if node.op == "max" else "min_over_time", values)
            out.append(Sample(labels, value))
        return out

    def binary(self, node: Binary) -> Value:
        lhs, rhs = self.vector_or_scalar(node.lhs), self.vector_or_scalar(node.rhs)
        set_op = node.op in ("or", "and", "unless")
        if isinstance(lhs, float) and isinstance(rhs, float):
            if set_op:
                raise PromQLError(f"set operator {node.op} not allowed between scalars")
            return arithmetic(node.op, lhs, rhs)
        if isinstance(lhs, float) or isinstance(rhs, float):
            if set_op:
                raise PromQLError(f"set operator {node.op} not allowed with a scalar")
            if isinstance(lhs, float):
                assert isinstance(rhs, list)
                return [Sample(_without_name(s.labels), arithmetic(node.op, lhs, s.value)) for s in rhs]
            assert isinstance(rhs, float)
            return [Sample(_without_name(s.labels), arithmetic(node.op, s.value, rhs)) for s in lhs]
        names = set(node.labels)

        def signature(labels: Labels) -> tuple[tuple[str, str], ...]:
            if node.on:
                return tuple(sorted((k, v) for k, v in labels.items() if k in names))
            return tuple(sorted((k, v) for k, v in labels.items() if k != NAME and k not in names))

        if set_op:
            right = {signature(s.labels) for s in rhs}
            if node.op == "and":
                return [s for s in lhs if signature(s.labels) in right]
            if node.op == "unless":
                return [s for s in lhs if signature(s.labels) not in right]
            left = {signature(s.labels) for s in lhs}
            return lhs + [s for s in rhs if signature(s.labels) not in left]
        right_by_sig: dict[tuple[tuple[str, str], ...], Sample] = {}
        for sample in rhs:
            sig = signature(sample.labels)
            if sig in right_by_sig:
                raise PromQLError(
                    f"found duplicate series for the match group {dict(sig)} on the right hand-side of the operation; "
                    "many-to-many matching not allowed"
                )
            right_by_sig[sig] = sample
        matched: set[tuple[tuple[str, str], ...]] = set()
        out: list[Sample] = []
        for sample in lhs:
            sig = signature(sample.labels)
            other = right_by_sig.get(sig)
            if other is None:
                continue
            if sig in matched:
                raise PromQLError(f"multiple matches for labels {dict(sig)}: many-to-one matching must be explicit")
            matched.add(sig)
            if node.on:
                labels = {k: v for k, v in sample.labels.items() if k in names}
            else:
                labels = {k: v for k, v in sample.labels.items() if k != NAME and k not in names}
            out.append(Sample(labels, arithmetic(node.op, sample.value, other.value)))
        return _unique(out)
