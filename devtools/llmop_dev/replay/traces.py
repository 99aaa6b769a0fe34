"""Trace files -> request-level Workloads: rate CSVs (seeded Poisson), request CSVs and the Azure LLM trace 2023."""

from __future__ import annotations

import bisect
import math
import random
import re
from datetime import date
from pathlib import Path
from statistics import NormalDist

from llmop_dev.replay.trace_shapes import GENERATORS, RATE_HEADER, RatePoint, RateTrace, write_traces
from llmop_dev.replay.types import Request

__all__ = ["GENERATORS", "RateTrace", "RateWorkload", "RequestWorkload", "TraceError", "load_workload",
           "parse_workload", "rate_workload", "write_traces"]  # fmt: skip

REQUEST_HEADER = "timestamp_s,prompt_tokens,output_tokens"
AZURE_HEADER = "TIMESTAMP,ContextTokens,GeneratedTokens"
HEADERS = (RATE_HEADER, REQUEST_HEADER, AZURE_HEADER)
PROMPT_SIGMA = 1.0  # log-sd of generated prompt lengths
PROMPT_CAP = 8.0  # generated prompts are clipped at this many times their mean (8192 for the default 1024)
REPLICA_JITTER_S = 5.0  # half-width of the uniform jitter of a replicated request (rate_scale > 1)
WINDOW_S = 60.0  # request-level traces: intensity and mean lengths over a centred window this long

_AZURE_TIME = re.compile(r"(\d{4}-\d{2}-\d{2})[ T](\d{2}):(\d{2}):(\d{2}(?:\.\d+)?)")
_NORMAL = NormalDist()


class TraceError(ValueError):
    """A trace file that cannot be read; the message names the file, the line and what was expected."""


class RateWorkload:
    """Requests drawn from a piecewise-constant rate; `intensity` is the generating rate (after scaling)."""

    def __init__(self, name: str, trace: RateTrace, prompt_tokens: float, requests: tuple[Request, ...]) -> None:
        self.name = name
        self.duration_s = trace.duration
        self.requests = requests
        self.points = trace.points  # scaled: seconds x time_scale, rps x rate_scale / time_scale
        self.prompt_tokens = prompt_tokens
        self._starts = [p.seconds for p in trace.points]

    def _point(self, t: float) -> RatePoint:
        return self.points[max(bisect.bisect_right(self._starts, t) - 1, 0)]

    def intensity(self, t: float) -> float:
        return self._point(t).rps if 0.0 <= t < self.duration_s else 0.0

    def mean_output_tokens(self, t: float) -> float:
        return max(self._point(t).output_tokens, 1.0)

    def mean_prompt_tokens(self, t: float) -> float:
        return self.prompt_tokens

    def __repr__(self) -> str:
        return f"RateWorkload({self.name!r}, {len(self.requests)} requests over {self.duration_s:g} s)"


class RequestWorkload:
    """Requests as a file listed them; `intensity`/`mean_*` count the arrivals in a centred WINDOW_S window."""

    def __init__(self, name: str, duration_s: float, requests: tuple[Request, ...]) -> None:
        self.name = name
        self.duration_s = duration_s
        self.requests = requests
        self._arrivals = [r.arrival_s for r in requests]
        self._prompt_sums, self._output_sums = [0], [0]
        for r in requests:
            self._prompt_sums.append(self._prompt_sums[-1] + r.prompt_tokens)
            self._output_sums.append(self._output_sums[-1] + r.output_tokens)

    def _window(self, t: float) -> tuple[int, int]:
        half = WINDOW_S / 2
        return bisect.bisect_left(self._arrivals, t - half), bisect.bisect_left(self._arrivals, t + half)

    def intensity(self, t: float) -> float:
        """Arrivals in [t-30, t+30) per second of that window inside [0, duration]; 0 outside the trace."""
        if not 0.0 <= t <= self.duration_s:
            return 0.0
        low, high = self._window(t)
        half = WINDOW_S / 2
        covered = min(t + half, self.duration_s) - max(t - half, 0.0)
        return (high - low) / covered if covered > 0 else 0.0

    def _mean(self, sums: list[int], t: float) -> float:
        low, high = self._window(t)
        if high == low:  # nothing arrived near t: the whole trace's mean
            low, high = 0, len(self.requests)
        return (sums[high] - sums[low]) / (high - low) if high > low else 1.0

    def mean_output_tokens(self, t: float) -> float:
        return self._mean(self._output_sums, t)

    def mean_prompt_tokens(self, t: float) -> float:
        return self._mean(self._prompt_sums, t)

    def __repr__(self) -> str:
        return f"RequestWorkload({self.name!r}, {len(self.requests)} requests over {self.duration_s:g} s)"


def load_workload(path: str | Path, *, seed: int = 0, rate_scale: float = 1.0, time_scale: float = 1.0,
                  prompt_tokens: int = 1024, name: str | None = None) -> RateWorkload | RequestWorkload:  # fmt: skip
    """Read a trace file (any of the three formats, told apart by the header) and turn it into requests.

    Three CSV headers are recognised (the first line that is not blank or a `#` comment):

    - `seconds,requests_per_second,mean_output_tokens`: a piecewise-constant rate; each row holds until the next, the
      first row is at 0 s and the last row's time is the end (its other values are ignored). Arrivals are a seeded
      non-homogeneous Poisson process, exact for piecewise-constant rates (a unit-rate process mapped through the
      inverse cumulative rate). Output lengths are geometric on {1, 2, ...} with the row's mean (a constant per-token
      stop probability 1/mean; the Azure conversation trace's median/mean is 0.61, a geometric's is ln 2 = 0.69).
      Prompt lengths are lognormal with mean `prompt_tokens` and log-sd PROMPT_SIGMA = 1.0 (the Azure conversation
      trace's context log-sd is 0.99), clipped at PROMPT_CAP x the mean (mu chosen so the clipped mean is
      `prompt_tokens`), rounded; both are clamped to >= 1.
    - `timestamp_s,prompt_tokens,output_tokens`: one row per request, seconds from the trace start (any order).
    - `TIMESTAMP,ContextTokens,GeneratedTokens`: the public Azure LLM inference trace 2023, TIMESTAMP like
      `2023-11-16 18:15:46.6805900`, made relative to the first (earliest) row.

    Request-level traces last until their last arrival. `time_scale` Y stretches time (Y=2: twice as long, half the
    rate; the requests are the same, their arrivals x Y, for every format). `rate_scale` X multiplies the arrival
    rate: a rate trace's rates are multiplied by X and the arrivals drawn from it; a request-level trace keeps each
    request floor(X) times plus once more with probability frac(X) (seeded), so X<1 thins and X>1 replicates: the
    first copy at the original time, each further copy jittered uniformly within +-REPLICA_JITTER_S (reflected into
    [0, duration]) with the original's lengths; the duration stays the source's.
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise TraceError(f"{file}: cannot read: {getattr(error, 'strerror', None) or error}") from None
    return parse_workload(text, str(file), seed=seed, rate_scale=rate_scale, time_scale=time_scale,
                          prompt_tokens=prompt_tokens, name=name or file.stem)  # fmt: skip


def parse_workload(text: str, source: str = "<trace>", *, seed: int = 0, rate_scale: float = 1.0,
                   time_scale: float = 1.0, prompt_tokens: int = 1024,
                   name: str | None = None) -> RateWorkload | RequestWorkload:  # fmt: skip
    """`load_workload` on a file's text; `source` names it in errors."""
    _check_scales(rate_scale, time_scale, prompt_tokens)
    rows = _rows(text.lstrip("\ufeff"), source)
    header_line, header = rows[0][0], rows[0][2]
    body = rows[1:]
    if not body:
        raise TraceError(f"{source}:{header_line + 1}: expected rows after the header {header}, found none")
    label = name or Path(source).stem
    if header == RATE_HEADER:
        trace = _rate_trace(body, source, label)
        return rate_workload(trace, seed=seed, rate_scale=rate_scale, time_scale=time_scale,
                             prompt_tokens=prompt_tokens, name=label)  # fmt: skip
    arrivals = _azure_times(body, source) if header == AZURE_HEADER else None
    requests: list[Request] = []
    for index, (number, parts, raw) in enumerate(body):
        arrival = _number(parts[0], number, source, raw, header) if arrivals is None else arrivals[index]
        prompt, output = (_tokens(part, number, source, raw, header) for part in parts[1:])
        requests.append(Request(arrival, prompt, output))
    requests.sort(key=lambda r: r.arrival_s)
    duration = requests[-1].arrival_s
    if duration <= 0:
        raise TraceError(f"{source}:{body[-1][0]}: expected arrivals spread over time, all are at 0 s")
    return _scale_requests(label, duration, requests, seed, rate_scale, time_scale)


def rate_workload(trace: RateTrace, *, seed: int = 0, rate_scale: float = 1.0, time_scale: float = 1.0,
                  prompt_tokens: int = 1024, name: str | None = None) -> RateWorkload:  # fmt: skip
    """Seeded Poisson arrivals and lengths from a rate trace (a generator's or a parsed file's)."""
    _check_scales(rate_scale, time_scale, prompt_tokens)
    scaled = RateTrace(
        tuple(RatePoint(p.seconds * time_scale, p.rps * rate_scale / time_scale, p.output_tokens)
              for p in trace.points),
        trace.duration * time_scale, name or trace.name,
    )  # fmt: skip
    arrivals = _poisson_arrivals(scaled, random.Random(f"{seed}:arrivals"))
    lengths = random.Random(f"{seed}:lengths")
    mu, cap = _prompt_mu(prompt_tokens), PROMPT_CAP * prompt_tokens
    requests: list[Request] = []
    for arrival, segment in arrivals:
        mean_output = scaled.points[segment].output_tokens
        output = _geometric(mean_output, lengths.random())
        z = _NORMAL.inv_cdf(min(max(lengths.random(), 1e-12), 1 - 1e-12))
        prompt = max(1, round(min(math.exp(mu + PROMPT_SIGMA * z), cap)))
        requests.append(Request(arrival, prompt, output))
    return RateWorkload(scaled.name, scaled, float(prompt_tokens), tuple(requests))


def _check_scales(rate_scale: float, time_scale: float, prompt_tokens: float) -> None:
    for label, value in (("rate_scale", rate_scale), ("time_scale", time_scale), ("prompt_tokens", prompt_tokens)):
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{label} must be a positive number, got {value!r}")
    if prompt_tokens < 1:
        raise ValueError(f"prompt_tokens must be >= 1, got {prompt_tokens!r}")


def _rows(text: str, source: str) -> list[tuple[int, list[str], str]]:
    """(line number, cells, raw line) for every non-blank, non-comment line; the first is a known header."""
    rows: list[tuple[int, list[str], str]] = []
    header = ""
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = [part.strip() for part in line.split(",")]
        if not rows:
            key = ",".join(parts).lower()
            header = next((h for h in HEADERS if h.lower() == key), "")
            if not header:
                raise TraceError(f"{source}:{number}: unknown header {raw.strip()!r}; expected one of: "
                                 + " | ".join(HEADERS))  # fmt: skip
            rows.append((number, parts, header))
            continue
        if len(parts) != 3:
            raise TraceError(f"{source}:{number}: expected 3 columns ({header}), got {raw.strip()!r}")
        rows.append((number, parts, raw.strip()))
    if not rows:
        raise TraceError(f"{source}:1: empty file; expected a header, one of: " + " | ".join(HEADERS))
    return rows


def _number(cell: str, number: int, source: str, raw: str, header: str) -> float:
    try:
        value = float(cell)
    except ValueError:
        raise TraceError(f"{source}:{number}: expected numbers ({header}), got {cell!r} in {raw!r}") from None
    if not math.isfinite(value):
        raise TraceError(f"{source}:{number}: expected finite numbers ({header}), got {cell!r} in {raw!r}")
    if value < 0:
        raise TraceError(f"{source}:{number}: expected values >= 0 ({header}), got {cell!r} in {raw!r}")
    return value


def _tokens(cell: str, number: int, source: str, raw: str, header: str) -> int:
    value = _number(cell, number, source, raw, header)
    if value < 1 or not value.is_integer():
        raise TraceError(f"{source}:{number}: expected whole token counts >= 1 ({header}), got {cell!r} in {raw!r}")
    return int(value)


def _rate_trace(body: list[tuple[int, list[str], str]], source: str, name: str) -> RateTrace:
    points: list[RatePoint] = []
    for number, parts, raw in body:
        seconds, rps, tokens = (_number(part, number, source, raw, RATE_HEADER) for part in parts)
        if tokens <= 0:
            raise TraceError(f"{source}:{number}: expected mean_output_tokens > 0, got {parts[2]!r} in {raw!r}")
        if not points and seconds != 0:
            raise TraceError(f"{source}:{number}: expected the first row at 0 seconds, got {parts[0]!r}")
        if points and seconds <= points[-1].seconds:
            raise TraceError(f"{source}:{number}: expected seconds to increase (previous row: "
                             f"{points[-1].seconds:g}), got {parts[0]!r}")  # fmt: skip
        points.append(RatePoint(seconds, rps, tokens))
    if len(points) < 2:
        raise TraceError(f"{source}:{body[-1][0]}: expected at least two rows (the last row's time is the end)")
    end = points.pop()
    return RateTrace(tuple(points), end.seconds, name)


def _azure_times(body: list[tuple[int, list[str], str]], source: str) -> list[float]:
    """TIMESTAMPs as seconds after the earliest one (day arithmetic on the date, exact decimals for the time)."""
    days: dict[str, int] = {}
    stamps: list[tuple[int, float]] = []
    for number, parts, _raw in body:
        match = _AZURE_TIME.fullmatch(parts[0])
        day = days.get(match.group(1), -1) if match else -1
        if match and day < 0:
            try:
                day = days[match.group(1)] = date.fromisoformat(match.group(1)).toordinal()
            except ValueError:
                match = None
        if not match:
            raise TraceError(f"{source}:{number}: expected a TIMESTAMP like 2023-11-16 18:15:46.6805900, "
                             f"got {parts[0]!r}")  # fmt: skip
        stamps.append((day, int(match.group(2)) * 3600.0 + int(match.group(3)) * 60.0 + float(match.group(4))))
    first_day, first_second = min(stamps)
    return [(day - first_day) * 86400.0 + (second - first_second) for day, second in stamps]


def _poisson_arrivals(trace: RateTrace, rng: random.Random) -> list[tuple[float, int]]:
    """(arrival time, point index): unit-rate Poisson points on the cumulative rate, mapped back to time."""
    ends = [p.seconds for p in trace.points[1:]] + [trace.duration]
    cumulative = [0.0]
    for point, end in zip(trace.points, ends, strict=True):
        cumulative.append(cumulative[-1] + point.rps * (end - point.seconds))
    arrivals: list[tuple[float, int]] = []
    segment, last = 0, len(trace.points)
    s = -math.log(1.0 - rng.random())
    while True:
        while segment < last and s >= cumulative[segment + 1]:
            segment += 1
        if segment == last:
            return arrivals
        point = trace.points[segment]
        arrivals.append((min(point.seconds + (s - cumulative[segment]) / point.rps, ends[segment]), segment))
        s += -math.log(1.0 - rng.random())


def _prompt_mu(mean: float) -> float:
    """The log-mean of a lognormal (log-sd PROMPT_SIGMA) whose values clipped at PROMPT_CAP x mean average `mean`."""
    sigma, cap = PROMPT_SIGMA, math.log(PROMPT_CAP * mean)
    mu = math.log(mean) - sigma**2 / 2
    for _ in range(50):
        clipped = math.exp(mu + sigma**2 / 2) * _NORMAL.cdf((cap - mu - sigma**2) / sigma)
        clipped += PROMPT_CAP * mean * (1.0 - _NORMAL.cdf((cap - mu) / sigma))
        step = math.log(mean / clipped)
        mu += step
        if abs(step) < 1e-13:
            break
    return mu


def _geometric(mean: float, u: float) -> int:
    """A geometric length on {1, 2, ...} with this mean (1 when mean <= 1), by inversion of `u` in [0, 1)."""
    if mean <= 1.0:
        return 1
    return 1 + int(math.log(1.0 - u) / math.log(1.0 - 1.0 / mean))


def _scale_requests(name: str, duration: float, requests: list[Request], seed: int, rate_scale: float,
                    time_scale: float) -> RequestWorkload:  # fmt: skip
    end = duration * time_scale
    if time_scale != 1.0:
        requests = [Request(r.arrival_s * time_scale, r.prompt_tokens, r.output_tokens) for r in requests]
    if rate_scale != 1.0:
        rng = random.Random(f"{seed}:scale")
        whole, extra = int(rate_scale), rate_scale - int(rate_scale)
        scaled: list[Request] = []
        for r in requests:
            copies = whole + (1 if extra > 0 and rng.random() < extra else 0)
            for copy in range(copies):
                t = r.arrival_s
                if copy:
                    t += REPLICA_JITTER_S * (2.0 * rng.random() - 1.0)
                    t = end - abs(end - abs(t))  # reflect into [0, end]
                scaled.append(Request(t, r.prompt_tokens, r.output_tokens))
        scaled.sort(key=lambda r: r.arrival_s)
        requests = scaled
    return RequestWorkload(name, end, tuple(requests))
