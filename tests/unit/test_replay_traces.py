"""The replay's traces: the three CSV formats, seeded Poisson arrivals, scaling, errors, shipped files, generators."""

from __future__ import annotations

import itertools
import statistics
from pathlib import Path

import pytest

from llmop_dev.replay import trace_shapes
from llmop_dev.replay.traces import (
    HEADERS,
    RateWorkload,
    RequestWorkload,
    TraceError,
    load_workload,
    parse_workload,
)
from llmop_dev.replay.types import Request

TRACES = Path(__file__).resolve().parents[2] / "bench" / "traces"
RATE = "seconds,requests_per_second,mean_output_tokens\n0,10,100\n60,20,200\n120,0,1\n"
# 60 requests, 5 s apart (0..295), listed backwards; prompt 100+t, output 1 + t % 7
REQUESTS = "timestamp_s,prompt_tokens,output_tokens\n" + "".join(
    f"{t},{100 + t},{1 + t % 7}\n" for t in range(295, -1, -5)
)
AZURE = (
    "TIMESTAMP,ContextTokens,GeneratedTokens\r\n"
    "2023-11-16 23:59:58.5000000,374,44\r\n"
    "2023-11-16 23:59:59.7500000,396,109\r\n"
    "2023-11-17 00:00:01.2500000,879,7"
)


def _write(tmp_path: Path, text: str, name: str = "t.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_rate_trace_parses_with_exact_intensity_and_pinned_poisson_count(tmp_path: Path) -> None:
    w = load_workload(_write(tmp_path, RATE, "rates.csv"))
    assert isinstance(w, RateWorkload)
    assert (w.name, w.duration_s) == ("rates", 120.0)
    assert [w.intensity(t) for t in (-1, 0, 59.9, 60, 119.9, 120, 500)] == [0, 10, 10, 20, 20, 0, 0]
    assert [w.mean_output_tokens(t) for t in (0, 59.9, 60, 119.9)] == [100, 100, 200, 200]
    assert w.mean_prompt_tokens(30) == 1024.0
    assert len(w.requests) == 1815  # seed 0; expected 10 x 60 + 20 x 60 = 1800, sd 42
    assert sum(r.arrival_s < 60 for r in w.requests) == 611
    arrivals = [r.arrival_s for r in w.requests]
    assert arrivals == sorted(arrivals) and arrivals[0] >= 0 and arrivals[-1] < 120
    assert all(r.prompt_tokens >= 1 and r.output_tokens >= 1 for r in w.requests)
    assert len(load_workload(_write(tmp_path, RATE), seed=1).requests) == 1882
    assert load_workload(_write(tmp_path, RATE)).requests == w.requests  # same seed, same requests


def test_rate_trace_lengths_match_the_rows_means() -> None:
    w = parse_workload("seconds,requests_per_second,mean_output_tokens\n0,100,256\n600,100,256\n", "big.csv")
    assert len(w.requests) == 59370  # expected 60,000, sd 245
    outputs = [r.output_tokens for r in w.requests]
    prompts = [r.prompt_tokens for r in w.requests]
    assert statistics.mean(outputs) == pytest.approx(256, rel=0.01)
    assert statistics.mean(prompts) == pytest.approx(1024, rel=0.015)
    assert statistics.median(outputs) == pytest.approx(256 * 0.693, rel=0.03)  # geometric: median = mean x ln 2
    assert max(prompts) == 8192  # clipped at 8 x the mean
    two_rows = parse_workload(RATE, "r.csv", seed=3)
    late = [r.output_tokens for r in two_rows.requests if r.arrival_s >= 60]
    assert statistics.mean(late) == pytest.approx(200, rel=0.1)


def test_time_scale_stretches_a_rate_trace_exactly() -> None:
    base = parse_workload(RATE, "r.csv")
    slow = parse_workload(RATE, "r.csv", time_scale=2.0)
    assert slow.duration_s == 240.0
    assert [slow.intensity(t) for t in (0, 119.9, 120, 239.9, 240)] == [5, 5, 10, 10, 0]
    assert len(slow.requests) == len(base.requests) == 1815
    assert [(r.prompt_tokens, r.output_tokens) for r in slow.requests] == [
        (r.prompt_tokens, r.output_tokens) for r in base.requests
    ]
    assert [r.arrival_s for r in slow.requests] == pytest.approx([2 * r.arrival_s for r in base.requests])


def test_rate_scale_multiplies_a_rate_traces_intensity() -> None:
    double = parse_workload(RATE, "r.csv", rate_scale=2.0)
    half = parse_workload(RATE, "r.csv", rate_scale=0.5)
    assert [double.intensity(t) for t in (0, 60)] == [20, 40]
    assert [half.intensity(t) for t in (0, 60)] == [5, 10]
    assert double.duration_s == half.duration_s == 120.0
    assert (len(double.requests), len(half.requests)) == (3555, 899)  # expected 3600 and 900


def test_request_trace_parses_sorted_with_exact_counts_and_windows(tmp_path: Path) -> None:
    w = load_workload(_write(tmp_path, REQUESTS, "req.csv"), seed=5)
    assert isinstance(w, RequestWorkload)
    assert (w.name, len(w.requests), w.duration_s) == ("req", 60, 295.0)
    assert [r.arrival_s for r in w.requests] == [float(t) for t in range(0, 300, 5)]
    assert w.requests[3] == Request(15.0, 115, 2)
    # centred 60 s window per second of it inside [0, 295]: 12/60 mid-trace, 6/30 at 0, 7/30 at the end
    assert [w.intensity(t) for t in (100, 0, 295)] == [0.2, 0.2, 7 / 30]
    assert [w.intensity(t) for t in (-0.1, 295.1)] == [0, 0]
    assert w.mean_prompt_tokens(100) == statistics.mean(100 + t for t in range(70, 130, 5))
    assert w.mean_output_tokens(100) == statistics.mean(1 + t % 7 for t in range(70, 130, 5))


def test_request_trace_rate_and_time_scale() -> None:
    base = parse_workload(REQUESTS, "q.csv")
    double = parse_workload(REQUESTS, "q.csv", rate_scale=2.0)
    assert (len(double.requests), double.duration_s) == (120, 295.0)
    assert set(base.requests) <= set(double.requests)  # the first copy stays where it was
    assert all(0 <= r.arrival_s <= 295 for r in double.requests)
    assert double.intensity(100) == 0.4
    half = parse_workload(REQUESTS, "q.csv", rate_scale=0.5)
    assert (len(half.requests), half.duration_s) == (36, 295.0)  # seeded thinning, expected 30
    assert set(half.requests) <= set(base.requests)
    assert len(parse_workload(REQUESTS, "q.csv", rate_scale=1.5).requests) == 93  # expected 90
    assert parse_workload(REQUESTS, "q.csv", rate_scale=1.5, seed=2).requests != double.requests
    slow = parse_workload(REQUESTS, "q.csv", time_scale=2.0)
    assert (len(slow.requests), slow.duration_s) == (60, 590.0)
    assert [r.arrival_s for r in slow.requests] == [2.0 * r.arrival_s for r in base.requests]
    assert slow.intensity(200) == 0.1


def test_azure_format_is_relative_to_the_first_row_across_midnight(tmp_path: Path) -> None:
    w = load_workload(_write(tmp_path, AZURE, "az.csv"))
    assert isinstance(w, RequestWorkload)
    assert [r.arrival_s for r in w.requests] == pytest.approx([0.0, 1.25, 2.75], abs=1e-9)
    assert [(r.prompt_tokens, r.output_tokens) for r in w.requests] == [(374, 44), (396, 109), (879, 7)]
    assert w.duration_s == pytest.approx(2.75, abs=1e-9)


@pytest.mark.parametrize(
    ("text", "line", "expected"),
    [
        ("time,rps\n0,1\n", 1, "unknown header"),
        ("# a comment\n\nseconds,rps,tokens\n", 3, "unknown header"),
        ("seconds,requests_per_second,mean_output_tokens\n0,10,256\n60,abc,256\n", 3, "expected numbers"),
        ("seconds,requests_per_second,mean_output_tokens\n0,-1,256\n60,1,256\n", 2, ">= 0"),
        ("seconds,requests_per_second,mean_output_tokens\n0,1,256\n60,1,256\n60,1,256\n", 4, "increase"),
        ("seconds,requests_per_second,mean_output_tokens\n0,1,256\n60,1,256\n30,1,256\n", 4, "increase"),
        ("seconds,requests_per_second,mean_output_tokens\n10,1,256\n60,1,256\n", 2, "first row at 0"),
        ("seconds,requests_per_second,mean_output_tokens\n0,1,256\n", 2, "at least two rows"),
        ("seconds,requests_per_second,mean_output_tokens\n0,1,0\n60,1,1\n", 2, "mean_output_tokens > 0"),
        ("seconds,requests_per_second,mean_output_tokens\n0,1\n", 2, "expected 3 columns"),
        ("", 1, "empty file"),
        ("\n# nothing\n", 1, "empty file"),
        ("timestamp_s,prompt_tokens,output_tokens\n", 2, "rows after the header"),
        ("timestamp_s,prompt_tokens,output_tokens\n0,10,5\n1,0,5\n", 3, "whole token counts >= 1"),
        ("timestamp_s,prompt_tokens,output_tokens\n0,10,5\n1,2.5,5\n", 3, "whole token counts >= 1"),
        ("timestamp_s,prompt_tokens,output_tokens\n-1,10,5\n", 2, ">= 0"),
        ("timestamp_s,prompt_tokens,output_tokens\n0,10,5\nnan,10,5\n", 3, "finite"),
        ("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.68,1,1\n16/11/2023 18:15,1,1\n", 3, "TIMESTAMP"),
        ("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-02-30 18:15:46.68,1,1\n", 2, "TIMESTAMP"),
    ],
)
def test_bad_files_name_the_file_and_line(tmp_path: Path, text: str, line: int, expected: str) -> None:
    path = _write(tmp_path, text, "bad.csv")
    with pytest.raises(TraceError) as error:
        load_workload(path)
    assert str(error.value).startswith(f"{path}:{line}: ")
    assert expected in str(error.value)


def test_unknown_header_lists_the_accepted_ones(tmp_path: Path) -> None:
    with pytest.raises(TraceError) as error:
        load_workload(_write(tmp_path, "a,b,c\n1,2,3\n"))
    assert all(header in str(error.value) for header in HEADERS)
    with pytest.raises(TraceError, match="cannot read"):
        load_workload(tmp_path / "missing.csv")
    with pytest.raises(ValueError, match="rate_scale"):
        load_workload(_write(tmp_path, RATE), rate_scale=0.0)


@pytest.mark.parametrize(
    ("name", "requests", "duration", "first", "last"),
    [
        ("azure-conv-2023", 19366, 3501.721937, (0.0, 374, 44), (197, 183)),
        ("azure-code-2023", 8819, 3435.948056, (0.0, 4808, 10), (549, 173)),
    ],
)
def test_shipped_azure_traces(
    name: str, requests: int, duration: float, first: tuple[float, int, int], last: tuple[int, int]
) -> None:
    w = load_workload(TRACES / f"{name}.csv")
    assert (w.name, len(w.requests)) == (name, requests)
    assert w.duration_s == pytest.approx(duration, abs=1e-6)
    r0, rn = w.requests[0], w.requests[-1]
    assert (r0.arrival_s, r0.prompt_tokens, r0.output_tokens) == first
    assert (rn.arrival_s, rn.prompt_tokens, rn.output_tokens) == pytest.approx((duration, *last), abs=1e-6)
    assert (TRACES / f"{name}.csv").read_bytes().startswith(b"TIMESTAMP,ContextTokens,GeneratedTokens\r\n")


def test_generators_are_deterministic_and_the_shipped_files_are_theirs(tmp_path: Path) -> None:
    for name, make in trace_shapes.GENERATORS.items():
        assert make().to_csv() == make().to_csv(), name
    written = trace_shapes.write_traces(tmp_path)
    assert [p.name for p in written] == [f"{name}.csv" for name in trace_shapes.BENCH_TRACES]
    for path in written:
        assert path.read_bytes() == (TRACES / path.name).read_bytes(), path.name
        trace = trace_shapes.bench_trace(path.stem)
        assert 3600 <= trace.duration <= 10800, path.name
        assert all(5 <= p.rps <= 120 for p in trace.points), path.name
        w = load_workload(path, rate_scale=0.001)  # few requests: the file loads, its rows are the trace's
        assert isinstance(w, RateWorkload) and w.duration_s == trace.duration
        assert [p.seconds for p in w.points] == pytest.approx([p.seconds for p in trace.points], rel=1e-5)
    doubling = trace_shapes.bench_trace("doubling")
    assert [(p.seconds, p.rps) for p in doubling.points] == [(600.0 * i, 5.0 * 2**i) for i in range(5)] + [(3000, 120)]
    spikes = trace_shapes.bench_trace("spikes").points
    lengths = [b.seconds - a.seconds for a, b in itertools.pairwise(spikes) if a.rps == 100]
    assert len(lengths) == 8 and all(30 <= d <= 90 for d in lengths)
