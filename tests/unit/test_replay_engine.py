"""The replay's physics: step times against calibration.md, the engine's batching, the fleet, the true capacity."""

from __future__ import annotations

import math
import random
import time
from types import SimpleNamespace

import pytest

from llmop.catalog.calibration import SAMPLES
from llmop_dev.replay.engine import EnginePod
from llmop_dev.replay.fleet import Fleet, MinuteLedger
from llmop_dev.replay.hardware import Hardware
from llmop_dev.replay.truth import capacity_rps, default_lengths, steady_run
from llmop_dev.replay.types import Request


class Recorder:
    """A PodMetrics that keeps every call."""

    def __init__(self) -> None:
        self.itl: list[tuple[float, float]] = []
        self.ttft: list[float] = []
        self.steps: list[tuple[str, float, int, int]] = []
        self.finished: list[tuple[int, int, float, float]] = []
        self.state: tuple[int, int, float] | None = None
        self.ttft_at_finish: list[float | None] = []

    def observe_itl(self, value_s: float, count: float) -> None:
        self.itl.append((value_s, count))

    def observe_ttft(self, value_s: float) -> None:
        self.ttft.append(value_s)

    def observe_step(self, kind: str, duration_s: float, batch: int, count: int = 1) -> None:
        self.steps.append((kind, duration_s, batch, count))

    def observe_finished(
        self, prompt_tokens: int, output_tokens: int, e2e_s: float, queue_s: float, ttft_s: float | None = None
    ) -> None:
        self.finished.append((prompt_tokens, output_tokens, e2e_s, queue_s))
        self.ttft_at_finish.append(ttft_s)

    def set_state(self, running: int, waiting: int, kv_usage: float) -> None:
        self.state = (running, waiting, kv_usage)

    def samples(self) -> list[tuple[str, dict[str, str], float]]:
        return []


def h100(**limits: object) -> Hardware:
    base: dict[str, object] = {"max_num_seqs": 1024, "max_batched_tokens": 8192, "kv_cache_tokens": 400_000,
                               "max_model_len": 131_072}  # fmt: skip
    base.update(limits)
    base.setdefault("noise_sigma", 0.0)
    return Hardware.for_model("llama-3-8b", "H100-80GB", **base)  # type: ignore[arg-type]


def pod(hw: Hardware, **kwargs: object) -> tuple[EnginePod, Recorder, MinuteLedger]:
    metrics, ledger = Recorder(), MinuteLedger()
    return EnginePod(hw, metrics, ledger=ledger, **kwargs), metrics, ledger  # type: ignore[arg-type]


def itl_points(ledger: MinuteLedger) -> list[tuple[float, float]]:
    return [point for record in ledger.minutes.values() for point in record.itl_points()]


# ---- hardware ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: f"{s.gpu}-{s.weights}-b{s.batch}-c{s.context}")
def test_decode_step_reproduces_every_calibration_row(sample: object) -> None:
    quant = "none" if sample.weights == "bf16" else "fp8"  # type: ignore[attr-defined]
    hw = Hardware.for_model("llama-3-8b", sample.gpu, quantization=quant)  # type: ignore[attr-defined]
    model_ms = hw.decode_step_s(sample.batch, sample.batch * sample.context) * 1e3  # type: ignore[attr-defined]
    assert model_ms == pytest.approx(sample.step_ms, rel=0.085)  # type: ignore[attr-defined]


def test_fp8_speedup_is_not_the_byte_ratio() -> None:
    bf16 = Hardware.for_model("llama-3-8b", "H200")
    fp8 = Hardware.for_model("llama-3-8b", "H200", quantization="fp8")
    assert bf16.weight_bytes / fp8.weight_bytes == pytest.approx(1.869, abs=0.001)
    assert bf16.decode_step_s(32, 0) / fp8.decode_step_s(32, 0) == pytest.approx(
        1.495, abs=0.001
    )  # measured: 4.48 / 3.06 = 1.46


def test_gpu_speed_makes_every_cost_exactly_slower() -> None:
    fast, slow = h100(), h100(gpu_speed=0.8)
    for batch, kv in ((1, 0), (32, 32 * 4096), (256, 256 * 1024)):
        assert slow.decode_step_s(batch, kv) == pytest.approx(fast.decode_step_s(batch, kv) / 0.8, rel=1e-12)
    assert slow.mixed_step_s(8, 9000, 4096, 4096 * 2048) == pytest.approx(
        fast.mixed_step_s(8, 9000, 4096, 4096 * 2048) / 0.8, rel=1e-12
    )
    e2e = []
    for hw in (fast, slow):
        engine, metrics, _ = pod(hw)
        engine.submit(Request(0.0, 3000, 400))
        engine.advance(60.0)
        e2e.append(metrics.finished[0][2])
    assert e2e[1] == pytest.approx(e2e[0] / 0.8, rel=1e-9)


def test_from_plan_reads_engine_defaults_and_flags() -> None:
    def plan(gpu: str, engine: str = "vllm", args: tuple[str, ...] = ()) -> SimpleNamespace:
        return SimpleNamespace(
            engine=engine, gpu_type=gpu, tensor_parallel=1, args=args, quantization="none", kv_cache_tokens=300_000,
            max_model_len=8192, model_name="meta-llama/Meta-Llama-3-8B-Instruct", attention_backend="flashinfer",
            weights_gib=14.96, kv_cache_gib=36.6,
        )  # fmt: skip

    big = Hardware.from_plan(plan("H100-80GB"))
    assert (big.max_num_seqs, big.max_batched_tokens, big.kv_cache_tokens) == (1024, 8192, 300_000)
    small = Hardware.from_plan(plan("L40S"))
    assert (small.max_num_seqs, small.max_batched_tokens) == (256, 2048)
    a100 = Hardware.from_plan(plan("A100-80GB", args=("--max-num-seqs", "64", "--max-num-batched-tokens=4096")))
    assert (a100.max_num_seqs, a100.max_batched_tokens) == (64, 4096)
    tgi = Hardware.from_plan(plan("H200", "tgi", ("--max-batch-total-tokens", "200000", "--max-batch-prefill-tokens",
                                                   "2048")), gpu_speed=0.8)  # fmt: skip
    assert (tgi.engine, tgi.kv_cache_tokens, tgi.max_batched_tokens, tgi.gpu_speed) == ("tgi", 200_000, 2048, 0.8)
    assert tgi.chunked_prefill


# ---- engine ------------------------------------------------------------------------------------------------
def test_single_request_timings_are_the_cost_model() -> None:
    hw = h100()
    engine, metrics, ledger = pod(hw)
    engine.submit(Request(0.0, 1000, 5))
    engine.advance(10.0)
    prefill = hw.mixed_step_s(0, 0, 1000, 1000 * 500)
    decodes = [hw.decode_step_s(1, 1000 + k) for k in range(4)]
    assert metrics.ttft == [pytest.approx(prefill, rel=1e-12)] == metrics.ttft_at_finish
    assert metrics.finished == [(1000, 5, pytest.approx(prefill + sum(decodes), rel=1e-12), 0.0)]
    engine.publish(0.0)
    assert sum(tokens for _, tokens in itl_points(ledger)) == 4
    assert ledger.minutes[0].ttft_s == [pytest.approx(prefill)]


def test_prefill_chunks_spike_the_itl_of_running_decodes() -> None:
    hw = h100()
    engine, _, ledger = pod(hw)
    for i in range(16):
        engine.submit(Request(i * 0.001, 100, 100_000 // 20))  # long outputs: none finishes in the test
    engine.advance(2.0)
    engine.publish(0.0)
    ledger.minutes.clear()
    before = engine.prefill_steps
    engine.submit(Request(2.0, 30_000, 5000))  # 30k prompt tokens in 8192 - 16 token chunks: 4 steps
    engine.advance(6.0)
    engine.publish(2.0)
    pure = hw.decode_step_s(17, 17 * 2000)
    spikes = sum(tokens for value, tokens in itl_points(ledger) if value > 2 * pure)
    chunks = math.ceil(30_000 / (8192 - 16))
    assert chunks == 4
    assert spikes == 16 * chunks
    assert engine.prefill_steps - before == chunks
    assert engine.num_running == 17


def test_tgi_without_chunking_stalls_decodes_through_a_prefill() -> None:
    hw = h100(engine="tgi", chunked_prefill=False, max_batched_tokens=4096, max_num_seqs=4096)
    engine, _, ledger = pod(hw)
    engine.submit(Request(0.0, 100, 4000))
    engine.advance(1.0)
    engine.publish(0.0)
    ledger.minutes.clear()
    engine.submit(Request(1.0, 4000, 4000))
    engine.advance(1.5)
    engine.publish(1.0)
    prefill = hw.mixed_step_s(0, 0, 4000, 4000 * 2000)
    stalled = [(v, n) for v, n in itl_points(ledger) if v > prefill]
    assert stalled == [(pytest.approx(prefill + hw.decode_step_s(2, 0), abs=2e-3), 1.0)]


def test_max_num_seqs_and_kv_capacity_bound_the_batch() -> None:
    engine, metrics, _ = pod(h100(max_num_seqs=4))
    for _ in range(10):
        engine.submit(Request(0.0, 500, 10_000))
    engine.advance(1.0)
    engine.publish(0.0)
    assert metrics.state is not None and metrics.state[:2] == (4, 6)
    engine, metrics, _ = pod(h100(kv_cache_tokens=3500))
    for _ in range(10):
        engine.submit(Request(0.0, 1000, 10))
    engine.advance(0.05)
    assert (engine.num_running, engine.num_waiting) == (3, 7)  # 3 x 1000 prompt tokens fit in 3500, 4 do not
    engine.advance(30.0)
    assert engine.finished == 10 and engine.preemptions == 0


def test_kv_overflow_preempts_the_newest_and_it_recomputes() -> None:
    engine, metrics, ledger = pod(h100(kv_cache_tokens=3000))
    engine.submit(Request(0.0, 1000, 1500))
    engine.submit(Request(0.0, 1000, 1500))
    engine.advance(120.0)
    engine.publish(0.0)
    assert engine.preemptions == 1  # at 500 decode tokens each the two hold 3000 tokens: the newest goes
    assert engine.finished == 2
    assert [f[1] for f in metrics.finished] == [1500, 1500]
    assert sum(tokens for _, tokens in itl_points(ledger)) == 2 * 1499
    gap = max(value for value, _ in itl_points(ledger))
    assert gap > 1000 * 0.006  # the resumed request waited for the other's 1000 remaining tokens


def test_waiters_time_out() -> None:
    engine, _, ledger = pod(h100(max_num_seqs=1), timeout_s=5.0)
    engine.submit(Request(0.0, 100, 5000))
    engine.submit(Request(1.0, 100, 10))
    engine.advance(7.0)
    engine.publish(0.0)
    assert engine.timed_out == 1 and ledger.minutes[0].timed_out == 1
    assert engine.num_running == 1 and engine.num_waiting == 0


# ---- fleet -------------------------------------------------------------------------------------------------
def fleet(router: str = "least-requests", pods: int = 2, **kwargs: object) -> Fleet:
    built = Fleet(h100(), Recorder, router=router, startup_s=60.0, **kwargs)  # type: ignore[arg-type]
    for _ in range(pods):
        built.add_pod(0.0, ready_at=0.0)
    return built


@pytest.mark.parametrize(("router", "expected"), [("round-robin", [3, 0]), ("least-requests", [2, 1])])
def test_routers(router: str, expected: list[int]) -> None:
    built = fleet(router)
    arrivals = [Request(float(i), 100, 100_000 // 40 if i % 2 == 0 else 1) for i in range(6)]
    built.advance(6.0, arrivals)
    assert sorted((p.engine.in_flight for p in built.pods), reverse=True) == expected


def test_removed_pod_drains_within_grace_and_gpu_seconds_end_with_it() -> None:
    built = fleet(pods=1, grace_s=30.0)
    built.advance(1.0, [Request(0.5, 100, 500)])
    built.scale_to(0, 1.0)
    jobs = [t.labels.get("job") for t in built.targets()]
    assert built.pods_view() == () and jobs == [None, "gateway"]  # draining: out of the Service, still scraped
    built.advance(10.0, [])
    done = built.gone[0].gone_at
    assert done is not None and 1.0 < done < 10.0 and done == built.gone[0].engine.last_finish_s
    assert built.gpu_seconds(10.0) == pytest.approx(done)
    built = fleet(pods=1, grace_s=30.0)
    built.advance(1.0, [Request(0.5, 100, 50_000)])
    built.scale_to(0, 1.0)
    built.advance(60.0, [])
    assert built.gone[0].gone_at == 31.0 and built.minutes[0].timed_out == 1
    assert built.gpu_seconds(60.0) == 31.0


def test_arrivals_after_the_window_wait_for_the_next_call() -> None:
    built = fleet(pods=1)
    built.advance(1.0, [Request(0.5, 100, 2), Request(1.5, 100, 2)])
    assert built.pods[0].engine.finished == 1 and len(built.early) == 1
    built.advance(3.0, [Request(2.5, 100, 2)])
    assert sum(m.finished for m in built.minutes.values()) == 3 and built.early == []


def test_router_queue_waits_for_a_starting_pod() -> None:
    built = Fleet(h100(), Recorder, startup_s=30.0, startup_jitter=0.0)
    built.scale_to(1, 0.0)
    assert [p.ready for p in built.pods_view()] == [False]
    built.advance(40.0, [Request(1.0, 100, 10)])
    assert built.minutes[0].ttft_s[0] == pytest.approx(29.0 + h100().mixed_step_s(0, 0, 100, 5000))
    assert built.gpu_seconds(40.0) == 40.0


def test_same_seed_same_replay_other_seed_other_noise() -> None:
    rng = random.Random(3)
    arrivals = [Request(i * 0.2, rng.randint(50, 3000), rng.randint(1, 400)) for i in range(600)]

    def run(seed: int) -> list[tuple[float, float]]:
        built = Fleet(h100(noise_sigma=0.04), Recorder, seed=seed, startup_s=10.0)
        built.scale_to(3, 0.0)
        built.advance(150.0, arrivals)
        return [point for m in sorted(built.minutes) for point in built.minutes[m].itl_points()]

    assert run(1) == run(1)
    assert run(1) != run(2)


def test_one_hour_ten_pods_twenty_thousand_requests_runs() -> None:
    rng = random.Random(0)
    sample = default_lengths(1024, 200)
    arrivals, t = [], 0.0
    while len(arrivals) < 20_000:
        t += rng.expovariate(20_000 / 3600)
        arrivals.append(Request(t, *sample(rng)))
    built = Fleet(h100(noise_sigma=0.04), Recorder, startup_s=60.0)
    for _ in range(10):
        built.add_pod(0.0, ready_at=0.0)
    start = time.process_time()
    index = 0
    for step in range(1, 3600 // 15 + 2):
        end = step * 15.0
        stop = index
        while stop < len(arrivals) and arrivals[stop].arrival_s < end:
            stop += 1
        built.advance(end, arrivals[index:stop])
        index = stop
    elapsed = time.process_time() - start
    finished = sum(m.finished for m in built.minutes.values())
    rejected = sum(p.engine.rejected for p in built.pods)
    assert finished + rejected == 20_000
    assert elapsed < 60.0  # generous: a sanity bound, not a benchmark


# ---- truth -------------------------------------------------------------------------------------------------
def test_capacity_is_where_the_itl_target_is_met() -> None:
    hw = h100()
    rate = capacity_rps(hw, 1024, 256, 20.0, 95)
    assert 1.0 < rate < 50.0
    sample = default_lengths(1024, 256)
    at, stable = steady_run(hw, rate, 0.95, sample)
    above, _ = steady_run(hw, rate * 1.1, 0.95, sample)
    assert stable and at <= 0.020 < above
    assert capacity_rps(hw, 1024, 256, 20.0, 95) == rate  # cached


def test_the_gateway_counts_arrivals_per_pod_as_they_are_routed() -> None:
    built = Fleet(h100(), Recorder, router="round-robin", startup_s=0.0, seed=1)
    for _ in range(2):
        built.add_pod(0.0, ready_at=0.0)
    built.advance(10.0, [Request(0.1 * i, 100, 50) for i in range(5)])
    gateway = {t.labels["pod"]: t.metrics.samples() for t in built.targets() if t.labels.get("job") == "gateway"}
    assert gateway == {
        "bench-00000": [("gateway_requests_total", {}, 3.0)],
        "bench-00001": [("gateway_requests_total", {}, 2.0)],
    }
