"""autoscale/surge.py pinned: the time in the engine learned by Little's law, its spread, and a rise read from the
requests in the engine before the request rate shows it; then the policy acting on it at once."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from llmop.autoscale.capacity import CapacityModel
from llmop.autoscale.metrics import Observation
from llmop.autoscale.policy import PolicyConfig, PolicyState, decide
from llmop.autoscale.surge import HALF_LIFE_S, MEMORY_S, track_surge

MODEL = CapacityModel(base_ms=3.9, per_seq_ms=0.0081, per_context_ms=4.16e-5, prefill_ms_per_token=0.0325,
                      kv_cache_tokens=518_704, max_num_seqs=256)  # fmt: skip
ON = PolicyConfig(target_ms=50.0, percentile=95, min_replicas=1, max_replicas=16, capacity_per_replica=126,
                  decode_floor_ms=3.9, capacity_model=MODEL, startup_s=80.0, calibration=None,
                  surge_z=3.0)  # fmt: skip
T0 = 1_000.0
WEIGHT = 1.0 - 0.5 ** (15.0 / HALF_LIFE_S)  # one 15 s tick of the decaying averages
LEARNED = PolicyState(time_in_system_s=4.0, time_in_system_at=T0 - 15, time_in_system_since=T0 - 600,
                      in_system_variance=25.0)  # fmt: skip


def seen(rate: float | None, running: float | None, waiting: float | None = 0.0, at: float = T0) -> Observation:
    return Observation(20.0, 10_000, running, waiting, 0.5, at, request_rate=rate, mean_prompt_tokens=1024,
                       mean_output_tokens=256)  # fmt: skip


def test_off_by_default_and_without_a_rate() -> None:
    state = PolicyState(trend_rps=3.0)
    assert track_surge(replace(ON, surge_z=None), state, seen(4.0, 80), T0) == (state, None)
    for rate, running in ((None, 80.0), (0.0, 80.0), (4.0, None)):
        assert track_surge(ON, state, seen(rate, running), T0) == (state, None)


def test_the_first_reading_learns_the_time_in_the_engine() -> None:
    state, rise = track_surge(ON, PolicyState(), seen(5.0, 18.0, waiting=2.0), T0)
    assert rise is None
    assert state == PolicyState(time_in_system_s=4.0, time_in_system_at=T0, time_in_system_since=T0)  # 20 / 5 req/s


def test_a_steady_reading_moves_the_averages_by_one_ticks_weight() -> None:
    state, rise = track_surge(ON, LEARNED, seen(5.0, 22.0), T0)
    assert rise is None  # 22 against 5 x 4 = 20 expected: 0.4 deviations of sqrt(25)
    assert state.time_in_system_s == pytest.approx(4.0 + (22.0 / 5.0 - 4.0) * WEIGHT, abs=1e-12)
    assert state.in_system_variance == pytest.approx(25.0 + (4.0 - 25.0) * WEIGHT, abs=1e-12)
    assert state.time_in_system_at == T0


def test_a_rise_reads_the_arrivals_from_the_requests_in_the_engine() -> None:
    # 20 expected at 5 req/s x 4 s; 36 is 3.2 deviations of sqrt(25) above: 36 / 4 s = 9 req/s arrive.
    state, rise = track_surge(ON, LEARNED, seen(5.0, 36.0), T0)
    assert rise == pytest.approx(9.0, abs=1e-12)
    assert state.in_system_variance == pytest.approx(25.0 + (256.0 - 25.0) * WEIGHT, abs=1e-12)
    # Three deviations exactly is a rise (35 = 20 + 3 x 5), just under is none.
    assert track_surge(ON, LEARNED, seen(5.0, 35.0), T0)[1] == pytest.approx(8.75, abs=1e-12)
    assert track_surge(ON, LEARNED, seen(5.0, 34.9), T0)[1] is None
    # The estimate is capped at surge_cap x the rate: 60 / 4 s = 15 req/s, read as 2 x 5 = 10.
    assert track_surge(ON, LEARNED, seen(5.0, 60.0), T0)[1] == pytest.approx(10.0, abs=1e-12)
    assert track_surge(replace(ON, surge_cap=1.5), LEARNED, seen(5.0, 60.0), T0)[1] == pytest.approx(7.5, abs=1e-12)


def test_the_spread_is_at_least_poissons() -> None:
    quiet = replace(LEARNED, in_system_variance=0.5)
    # expected 20: the spread is 20 (not 0.5), so 33 is 2.9 deviations: no rise; 34 is 3.13: a rise.
    assert track_surge(ON, quiet, seen(5.0, 33.0), T0)[1] is None
    assert track_surge(ON, quiet, seen(5.0, 34.0), T0)[1] == pytest.approx(8.5, abs=1e-12)
    tiny = replace(LEARNED, time_in_system_s=0.1, in_system_variance=None)  # expected 0.05: the floor of 1 counts
    assert track_surge(ON, tiny, seen(0.5, 3.1), T0)[1] == pytest.approx(1.0, abs=1e-12)  # 31 req/s capped: 2 x 0.5
    assert track_surge(ON, tiny, seen(0.5, 3.0), T0)[1] is None  # 2.95 deviations of 1


def test_waiting_requests_count_and_old_memory_is_learned_again() -> None:
    assert track_surge(ON, LEARNED, seen(5.0, 20.0, waiting=16.0), T0)[1] == pytest.approx(9.0, abs=1e-12)
    for at in (T0 - MEMORY_S - 1, T0 + 1):  # too old, or from the future (a clock step)
        state, rise = track_surge(ON, replace(LEARNED, time_in_system_at=at), seen(5.0, 60.0), T0)
        assert rise is None
        assert state == replace(LEARNED, time_in_system_s=12.0, time_in_system_at=T0, time_in_system_since=T0,
                                in_system_variance=None)  # fmt: skip


def test_memory_is_kept_from_the_same_instant_to_its_limit() -> None:
    for at in (T0, T0 - 0.5, T0 - MEMORY_S):  # a second reading at the same instant weighs nothing
        state, rise = track_surge(ON, replace(LEARNED, time_in_system_at=at), seen(5.0, 36.0), T0)
        assert rise == pytest.approx(9.0, abs=1e-12)
        assert state.time_in_system_since == T0 - 600
    assert track_surge(ON, replace(LEARNED, time_in_system_at=T0), seen(5.0, 36.0), T0)[0].time_in_system_s == 4.0
    # Half a memory (a time without its instant, or the reverse) is learned again.
    for half in (replace(LEARNED, time_in_system_at=None), replace(LEARNED, time_in_system_s=None)):
        state, rise = track_surge(ON, half, seen(5.0, 36.0), T0)
        assert (rise, state.time_in_system_s, state.time_in_system_at) == (None, 7.2, T0)


def test_a_young_average_judges_no_rise() -> None:
    # One half-life of learning (120 s) before a rise counts: after a start the engines are still filling up.
    assert track_surge(ON, replace(LEARNED, time_in_system_since=T0 - 119), seen(5.0, 36.0), T0)[1] is None
    assert track_surge(ON, replace(LEARNED, time_in_system_since=T0 - 120), seen(5.0, 36.0), T0)[1] == 9.0
    state, rise = track_surge(ON, replace(LEARNED, time_in_system_since=None), seen(5.0, 36.0), T0)
    assert (rise, state.time_in_system_since) == (None, T0)  # learning since now


def test_an_empty_engine_learns_zero_and_never_divides_by_it() -> None:
    empty, _ = track_surge(ON, PolicyState(), seen(2.0, 0.0), T0 - 600)
    empty = replace(empty, time_in_system_at=T0 - 15)
    assert empty.time_in_system_s == 0.0
    state, rise = track_surge(ON, empty, seen(2.0, 50.0), T0)
    assert rise is None  # 50 requests against 0 expected: a rise, but no time to read the arrivals by
    assert state.time_in_system_s == pytest.approx(25.0 * WEIGHT, abs=1e-12)


BUSY = replace(LEARNED, in_system_variance=100.0)


def _decision(running: float, config: PolicyConfig = ON, ready: int = 2) -> Any:
    return decide(config, BUSY, seen(20.0, running), ready, ready, T0)


def test_the_policy_scales_up_at_once_by_the_rise() -> None:
    # 80 expected at 20 req/s x 4 s, 160 in the engines: 8 deviations of 10, read as 40 req/s (the cap, 2 x 20).
    decision = _decision(160.0)
    assert decision.desired == 3
    assert decision.direction == "up"
    assert decision.reason == (
        "scaled 2 -> 3: 40.0 req/s needs 3 replicas by the capacity model, 2 ready (160 requests in the engines: a "
        "rise the request rate does not show yet) for 0 s (capacity model: 40.0 req/s needs 3)"
    )
    stored = decision.state.to_dict()
    assert stored["timeInSystemAt"] == "1970-01-01T00:16:40.000Z"
    assert stored["timeInSystemSince"] == "1970-01-01T00:06:40.000Z"
    assert stored["timeInSystemSeconds"] == round(4.0 + (160.0 / 20.0 - 4.0) * WEIGHT, 6)
    assert stored["inSystemVariance"] == round(100.0 + (6400.0 - 100.0) * WEIGHT, 6)
    assert PolicyState.from_dict(stored).time_in_system_s == stored["timeInSystemSeconds"]
    assert PolicyState.from_dict(stored).in_system_variance == stored["inSystemVariance"]
    assert PolicyState.from_dict(stored).time_in_system_since == T0 - 600
    # Without the rule the same reading holds: 20 req/s fits the 2 ready replicas.
    off = _decision(160.0, replace(ON, surge_z=None))
    assert (off.desired, off.direction) == (2, "hold")
    assert (off.state.time_in_system_s, off.state.time_in_system_at) == (4.0, T0 - 15)  # left as it was
    # A rise the ready replicas still serve is no pressure; under three deviations is no rise.
    assert (_decision(160.0, ready=3).desired, _decision(160.0, ready=3).direction) == (3, "hold")
    assert (_decision(109.0).desired, _decision(109.0).direction) == (2, "hold")


def _tick(rate: float, running: float, current: int, ready: int, config: PolicyConfig = ON, state: PolicyState = BUSY,
          **extra: Any) -> Any:  # fmt: skip
    observed = Observation(extra.pop("latency", 20.0), 10_000, running, extra.pop("waiting", 0.0), 0.5, T0,
                           request_rate=rate, mean_prompt_tokens=1024, mean_output_tokens=256, **extra)  # fmt: skip
    return decide(config, state, observed, current, ready, T0)


def test_a_rise_counts_only_above_the_rate_the_reading_has() -> None:
    # The queue grows by 20 req/s: the reading's rate is 40 already, the rise (capped at 2 x 20) adds nothing and
    # the model's 3 replicas wait out the up window.
    same = _tick(20.0, 160.0, 2, 2, waiting_growth_rps=20.0)
    assert (same.desired, same.direction) == (2, "hold")
    assert same.reason == "holding 2: 40.0 req/s needs 3 replicas by the capacity model, 2 ready for 0 s (< 30 s)"
    # Above it, the reading's own rate stands (70 req/s), not the lower rise.
    higher = _tick(20.0, 160.0, 2, 2, waiting_growth_rps=50.0)
    assert higher.reason == "holding 2: 70.0 req/s needs 4 replicas by the capacity model, 2 ready for 0 s (< 30 s)"


def test_a_rise_is_the_load_that_the_scale_in_clock_judges() -> None:
    # At max with one replica starting: 10 req/s fits one replica, the rise's 20 does not, so no scale-in clock.
    at_max = _tick(10.0, 80.0, 2, 1, config=replace(ON, max_replicas=2))
    assert at_max.reason.startswith("holding 2 (max): 20.0 req/s needs 2 replicas by the capacity model, 1 ready (80")
    assert at_max.state.headroom_since is None
    # No pressure (9 req/s fits the 2 ready), one replica starting: the rise fits 2, so the clock runs.
    fits = _tick(5.0, 36.0, 3, 2, state=LEARNED)
    assert fits.reason == ("holding 3: the load has fit 2 for 0 s, but replicas starting (p95 TPOT 20 ms)")
    assert fits.state.headroom_since == T0


def test_the_up_window_is_skipped_only_for_more_than_the_ready_replicas() -> None:
    # A latency breach the model says the load fits (the rise, 9 req/s, needs 1 = the ready one) waits a window.
    fits = _tick(5.0, 36.0, 1, 1, state=LEARNED, latency=60.0)
    assert (fits.desired, fits.direction) == (1, "hold")
    assert fits.reason.endswith("but the load fits 1 by the capacity model for 0 s (< 120 s)")
    # One ready replica, the rise needs two: at once.
    one = _tick(10.0, 80.0, 1, 1)
    assert (one.desired, one.direction) == (2, "up")


def test_the_reason_counts_running_and_waiting_requests() -> None:
    queued = _tick(20.0, 100.0, 2, 2, waiting=60.0)
    assert "(160 requests in the engines: a rise the request rate does not show yet)" in queued.reason
    all_waiting = _tick(20.0, 0.0, 2, 2, waiting=160.0)
    assert "(160 requests in the engines: a rise the request rate does not show yet)" in all_waiting.reason
