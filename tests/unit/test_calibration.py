"""Online capacity calibration: the factor a reading implies, how it is learned, kept and announced."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest

from llmop.autoscale import calibration
from llmop.autoscale.calibration import CalibrationSettings, Reading
from llmop.autoscale.capacity import CapacityModel, itl_ms, mean_itl_ms
from llmop.autoscale.learning import calibrate, ttft_sample
from llmop.autoscale.metrics import Observation
from llmop.autoscale.policy import PolicyConfig, PolicyState, decide
from llmop.autoscale.reading import PolicyReading

MODEL = CapacityModel(base_ms=3.9, per_seq_ms=0.0081, per_context_ms=4.16e-5, prefill_ms_per_token=0.0325,
                      kv_cache_tokens=500_000, max_num_seqs=256)  # fmt: skip
SETTINGS = CalibrationSettings()


def test_a_reading_above_the_floor_gives_the_load_factor_that_stretches_the_model_onto_it() -> None:
    sample = calibration.load_scale_sample(MODEL, Reading(10.0, 1000, 200, 30.0), 50.0, 3.9, SETTINGS)
    assert sample is not None
    scale, weight = sample
    assert scale == pytest.approx(2.0105, abs=1e-4)
    assert mean_itl_ms(MODEL, 10.0 * scale, 1000, 200) == pytest.approx(30.0, abs=1e-6)
    assert weight == pytest.approx((26.1 / 46.1 - 0.3) / 0.7 + 0.25, abs=1e-9)  # 0.6302


def test_readings_near_the_floor_or_saturated_teach_nothing() -> None:
    assert calibration.load_scale_sample(MODEL, Reading(10.0, 1000, 200, 5.0), 50.0, 3.9, SETTINGS) is None
    assert calibration.load_scale_sample(MODEL, Reading(10.0, 1000, 200, 120.0), 50.0, 3.9, SETTINGS) is None
    assert calibration.load_scale_sample(MODEL, Reading(0.0, 1000, 200, 30.0), 50.0, 3.9, SETTINGS) is None


def test_the_factor_is_bounded() -> None:
    # The model says 14 ms at 17 req/s, the replica reads 4.5 ms against a 5 ms target: far lighter, clamped.
    low = calibration.load_scale_sample(MODEL, Reading(17.0, 1000, 200, 4.5), 5.0, 3.9, SETTINGS)
    assert low == (calibration.MIN_LOAD_SCALE, 1.0)
    high = calibration.load_scale_sample(MODEL, Reading(0.5, 1000, 200, 90.0), 50.0, 3.9, SETTINGS)
    assert high == (calibration.MAX_LOAD_SCALE, 1.0)


def test_learning_is_a_weighted_moving_average_in_log_space() -> None:
    alpha = 1 - 0.5 ** (15 / 90)
    assert calibration.updated_scale(None, 1.5, 1.0, SETTINGS) == pytest.approx(math.exp(alpha * math.log(1.5)))
    assert calibration.updated_scale(1.2, 0.5, 0.5, SETTINGS) == pytest.approx(
        math.exp((1 - alpha / 2) * math.log(1.2) + alpha / 2 * math.log(0.5))
    )
    value = None
    for _ in range(6):  # 90 s of full-weight readings: half the way there, in log space
        value = calibration.updated_scale(value, 2.0, 1.0, SETTINGS)
    assert value == pytest.approx(math.sqrt(2.0), rel=1e-9)


def test_capacity_per_replica_shrinks_by_the_factor() -> None:
    planned = calibration.capacity_rps(MODEL, 1.0, 1000, 200, 45.0)
    assert planned == pytest.approx(21.1068, abs=1e-3)
    assert calibration.capacity_rps(MODEL, 1.5, 1000, 200, 45.0) == pytest.approx(planned / 1.5, rel=1e-9)


def test_an_event_only_when_the_factor_moved_more_than_15_percent_since_the_last() -> None:
    assert not calibration.moved(None, 1.15, SETTINGS)
    assert calibration.moved(None, 1.151, SETTINGS)
    assert calibration.moved(1.5, 1.27, SETTINGS) and not calibration.moved(1.5, 1.3, SETTINGS)


CONFIG = PolicyConfig(target_ms=50.0, percentile=95, min_replicas=1, max_replicas=8, capacity_per_replica=126,
                      decode_floor_ms=3.9, capacity_model=MODEL, window_s=120.0)  # fmt: skip


def reading(at: float, rps: float, latency: float) -> Observation:
    return Observation(latency, 50_000, rps * 0.2, 0.0, 0.3, at, request_rate=rps, mean_prompt_tokens=1000,
                       mean_output_tokens=200, waiting_growth_rps=0.0)  # fmt: skip


def test_the_policy_learns_from_a_steady_fleet_keeps_it_in_status_and_announces_it_once() -> None:
    # 4 replicas at 40 req/s (10 per replica) read a p95 of 45 ms where the plan's model says 37 ms.
    state, notes = PolicyState(), []
    for tick in range(40):
        decision = decide(CONFIG, state, reading(tick * 15.0, 40.0, 45.0), 4, 4, tick * 15.0)
        state = decision.state
        notes.append(decision.capacity_note)
    assert state.load_scale == pytest.approx(2.0617, abs=1e-4)
    announced = [(i, n) for i, n in enumerate(notes) if n]
    assert [i for i, _ in announced] == [1, 4, 8, 15]  # each time it moved > 15 % since the last announcement
    assert announced[0][1] == (
        "learned capacity: the load weighs x1.16 against the plan's capacity model (was x1.00): one replica serves "
        "17.86 req/s at the observed lengths (plan: 20.77)"
    )
    assert decision.reason == "holding 4: p95 TPOT 45 ms; 40.0 req/s needs 4 replicas by the capacity model"
    stored = state.to_dict()["capacity"]
    assert stored == {"loadScale": round(state.load_scale, 3), "announcedScale": round(state.announced_scale or 0, 3)}
    resumed = PolicyState.from_dict(state.to_dict())
    assert resumed.load_scale == pytest.approx(state.load_scale, abs=5e-4)


def test_the_percentile_model_has_the_prefill_cliff() -> None:
    # 8 req/s: prefill steps are under 5 % of steps, the p95 is an ordinary step (the mean bounds it); at 10 req/s
    # they are over 5 % and the p95 is a step carrying a 1000-token prefill (32.5 ms) on top of the decode step.
    assert itl_ms(MODEL, 8.0, 1000, 200, 95) == pytest.approx(mean_itl_ms(MODEL, 8.0, 1000, 200))
    assert itl_ms(MODEL, 8.0, 1000, 200, 95) == pytest.approx(5.9649, abs=1e-4)
    decode_step = mean_itl_ms(MODEL, 10.0, 1000, 200) * (1 - 10.0 * 1000 * 0.0325 / 1000)
    assert itl_ms(MODEL, 10.0, 1000, 200, 95) == pytest.approx(decode_step + 32.5, abs=1e-9)
    assert itl_ms(MODEL, 10.0, 1000, 200, 95) == pytest.approx(37.1406, abs=1e-4)
    assert itl_ms(MODEL, 10.0, 1000, 200, 50) == pytest.approx(mean_itl_ms(MODEL, 10.0, 1000, 200))


def test_no_learning_while_the_window_holds_another_replica_count_or_a_queue() -> None:
    after_scale_in = replace(PolicyState(), last_scale_at=0.0, last_scale_direction="down")
    assert decide(CONFIG, after_scale_in, reading(60.0, 40.0, 30.0), 4, 4, 60.0).state.load_scale is None
    newly_ready = replace(PolicyState(), ready_changed_at=0.0)
    assert decide(CONFIG, newly_ready, reading(60.0, 40.0, 30.0), 4, 4, 60.0).state.load_scale is None
    queued = Observation(30.0, 50_000, 8.0, 4.0, 0.3, 0.0, request_rate=40.0, mean_prompt_tokens=1000,
                         mean_output_tokens=200, waiting_growth_rps=0.0)  # fmt: skip
    assert decide(CONFIG, PolicyState(), queued, 4, 4, 0.0).state.load_scale is None  # a queue on every replica
    off = replace(CONFIG, calibration=None)
    assert decide(off, PolicyState(), reading(0.0, 40.0, 30.0), 4, 4, 0.0).state.load_scale is None


def test_a_scale_up_in_flight_keeps_the_window_of_the_ready_replicas() -> None:
    # 5 wanted, 4 ready: the window is the 4 ready replicas' (10 req/s each), so the breach still teaches.
    after_scale_up = replace(PolicyState(), last_scale_at=0.0, last_scale_direction="up")
    learned = decide(CONFIG, after_scale_up, reading(60.0, 40.0, 45.0), 5, 4, 60.0).state.load_scale
    assert learned == pytest.approx(calibration.updated_scale(None, 2.0765, 1.0, SETTINGS), abs=1e-4)  # x1.0419


def test_a_learned_factor_raises_the_replicas_the_capacity_model_asks_for() -> None:
    # 60 req/s on 2 replicas reading 20 ms: the plan's model says 3 replicas hold it under 45 ms (50 - 10 %);
    # with the load weighing x2 it takes 6. Both after the up window; learning off, so the factor stays put.
    fixed = replace(CONFIG, calibration=None)
    for state, wanted in ((PolicyState(), 3), (replace(PolicyState(), load_scale=2.0), 6)):
        for now in (0.0, 15.0, 30.0):
            decision = decide(fixed, state, reading(now, 60.0, 20.0), 2, 2, now)
            state = decision.state
        assert decision.desired == wanted, decision.reason


# -- queue, TTFT and the scale-in hold ------------------------------------------------------------------------------

STEADY = replace(CONFIG, calibration=None)


def queued(at: float, waiting: float, ttft_ms: float | None = None) -> Observation:
    return Observation(20.0, 50_000, 40.0, waiting, 0.3, at, request_rate=20.0, mean_prompt_tokens=1000,
                       mean_output_tokens=200, waiting_growth_rps=0.0, ttft_ms=ttft_ms)  # fmt: skip


def test_a_queue_on_every_replica_is_pressure_even_when_latency_and_model_say_fine() -> None:
    state, decisions = PolicyState(), []
    for now in (0.0, 15.0, 30.0):
        decision = decide(STEADY, state, queued(now, 4.0), 4, 4, now)
        state = decision.state
        decisions.append(decision)
    assert [d.desired for d in decisions] == [4, 4, 5]
    assert decisions[-1].reason == "scaled 4 -> 5: 4 requests waiting on 4 ready for 30 s (one more replica)"
    three_waiting = decide(STEADY, replace(PolicyState(), breach_since=0.0), queued(30.0, 3.0), 4, 4, 30.0)
    assert three_waiting.direction == "hold" and "waiting on" not in three_waiting.reason


def test_a_ttft_objective_above_target_is_pressure() -> None:
    with_ttft = replace(STEADY, ttft_target_ms=2000.0, ttft_percentile=95.0)
    state = PolicyState()
    for now in (0.0, 15.0, 30.0):
        decision = decide(with_ttft, state, queued(now, 0.0, ttft_ms=2500.0), 4, 4, now)
        state = decision.state
    assert decision.desired == 5
    assert decision.reason == "scaled 4 -> 5: p95 TTFT 2500 ms > SLO 2000 ms for 30 s (one more replica)"
    calm = decide(with_ttft, PolicyState(), queued(0.0, 0.0, ttft_ms=1500.0), 4, 4, 0.0)
    assert calm.direction == "hold" and "TTFT" not in calm.reason
    without = decide(STEADY, replace(PolicyState(), breach_since=0.0), queued(30.0, 0.0, ttft_ms=2500.0), 4, 4, 30.0)
    assert without.direction == "hold"  # no TTFT objective: TTFT alone is not pressure


def test_a_scale_in_that_had_to_be_undone_holds_the_restored_count() -> None:
    after_down = replace(PolicyState(), last_scale_at=0.0, last_scale_direction="down", breach_since=100.0)
    up = decide(STEADY, after_down, queued(200.0, 8.0), 3, 3, 200.0)
    assert up.desired == 4 and up.state.hold_floor == 4 and up.state.hold_until == 200.0 + STEADY.flap_hold_s
    assert up.reason.endswith("; no scale-in below 4 for 900 s")
    idle = Observation(5.0, 50_000, 2.0, 0.0, 0.1, 0.0, request_rate=1.0, mean_prompt_tokens=1000,
                       mean_output_tokens=200, waiting_growth_rps=0.0)  # fmt: skip
    held = replace(up.state, headroom_since=0.0, last_scale_at=0.0)
    inside = decide(STEADY, held, replace(idle, observed_at=1000.0), 4, 4, 1000.0)
    assert inside.direction == "hold"
    assert inside.reason.startswith("holding 4: a scale-in below 4 had to be undone; none below it until ")
    after = decide(STEADY, held, replace(idle, observed_at=1200.0), 4, 4, 1200.0)
    assert after.direction == "down" and after.desired == 3 and after.state.hold_floor is None
    resumed = PolicyState.from_dict(up.state.to_dict())
    assert (resumed.hold_floor, resumed.hold_until) == (4, 200.0 + STEADY.flap_hold_s)


def test_a_target_inside_a_coarse_bucket_is_judged_at_the_edge_below() -> None:
    # vLLM's default 25/50 ms buckets, a 40 ms target: 10 % of tokens above 25 ms interpolates to a p95 of 37.5 ms,
    # under the SLO; judged at the 25 ms edge it is a breach (more than 5 % are above it).
    coarse = replace(STEADY, target_ms=40.0, coarse_edge_ms=25.0)
    buckets = ((0.01, 0.0), (0.025, 90.0), (0.05, 100.0), (math.inf, 100.0))
    observation = replace(queued(0.0, 0.0), latency_ms=37.5, buckets=buckets)
    assert observation.share_above(0.025) == pytest.approx(0.1)
    decision = decide(coarse, PolicyState(), observation, 4, 4, 0.0)
    assert decision.slo_met is False
    assert decision.reason == (
        "holding 4: p95 TPOT 38 ms (10.0% of tokens above the 25 ms edge below the SLO) > SLO 40 ms but the load "
        "fits 4 by the capacity model for 0 s (< 120 s)"
    )
    fine = replace(observation, buckets=((0.01, 0.0), (0.025, 96.0), (0.05, 100.0), (math.inf, 100.0)))
    assert decide(coarse, PolicyState(), fine, 4, 4, 0.0).slo_met is True


def test_the_plan_says_which_read_applies() -> None:
    from llmop.autoscale.policy import coarse_edge_ms
    from llmop_dev.specs import load_spec

    bench = Path(__file__).resolve().parents[2] / "bench" / "specs"
    _, tgi = load_spec(str(bench / "llama31-8b-awq-l4-tgi.yaml"))
    assert coarse_edge_ms(tgi, 60.0) == pytest.approx(43.789389038085936, rel=1e-12)  # TGI's x1.5 ladder
    _, vllm = load_spec(str(bench / "llama31-8b-fp8-l40s-vllm.yaml"))
    assert coarse_edge_ms(vllm, 45.0) is None and coarse_edge_ms(vllm, 45.3) is None
    assert coarse_edge_ms(vllm, 45.7) is None  # within 0.5 ms of the 46 ms edge


def test_no_scale_in_while_ttft_is_within_20_percent_of_its_objective() -> None:
    with_ttft = replace(STEADY, ttft_target_ms=2000.0, ttft_percentile=95.0, scale_down_stabilization_s=0.0)
    light = Observation(5.0, 50_000, 2.0, 0.0, 0.1, 0.0, request_rate=1.0, mean_prompt_tokens=1000,
                        mean_output_tokens=200, waiting_growth_rps=0.0, ttft_ms=1700.0)  # fmt: skip
    held = decide(with_ttft, PolicyState(), light, 4, 4, 0.0)
    assert held.direction == "hold"
    assert (
        held.reason
        == "holding 4: the load has fit 3 for 0 s, but TTFT 1700 ms > 1600 ms (20% under its SLO) (p95 TPOT 5.0 ms)"
    )
    assert decide(with_ttft, PolicyState(), replace(light, ttft_ms=1500.0), 4, 4, 0.0).desired == 3


TTFT_CONFIG = replace(CONFIG, ttft_target_ms=2000.0)  # scale-in limit 1600 ms (twice the 10 % tolerance)
BUSY = PolicyReading(30.0, "p95 TPOT 30 ms", 8.0, 0.0, rps=40.0, prompt=1000, output=200, arrivals=40.0,
                     ttft_ms=1800.0)  # fmt: skip


def test_a_ttft_above_its_scale_in_limit_brings_the_model_down_to_the_load_per_replica_and_beyond() -> None:
    # The model serves 20.77 req/s per replica inside the band (45 ms p95); 4 replicas carry 10 each and their
    # TTFT is 1800 ms against the 1600 ms limit: the load weighs 20.77 / 10 x 1800 / 1600.
    assert ttft_sample(TTFT_CONFIG, BUSY, 4) == pytest.approx((2.33611, 1.0), abs=1e-5)
    assert ttft_sample(TTFT_CONFIG, BUSY, 5) == pytest.approx((2.33611 * 5 / 4, 1.0), abs=1e-5)
    assert ttft_sample(TTFT_CONFIG, replace(BUSY, ttft_ms=1600.0), 4) is None  # at the limit: nothing learned
    assert ttft_sample(TTFT_CONFIG, replace(BUSY, ttft_ms=1600.001), 4) == pytest.approx((2.07654, 1.0), abs=1e-5)
    assert ttft_sample(CONFIG, BUSY, 4) is None  # no TTFT objective
    assert ttft_sample(TTFT_CONFIG, replace(BUSY, ttft_ms=None), 4) is None
    assert ttft_sample(TTFT_CONFIG, replace(BUSY, rps=None), 4) is None
    assert ttft_sample(TTFT_CONFIG, replace(BUSY, rps=0.0), 4) is None
    assert ttft_sample(TTFT_CONFIG, BUSY, 0) is None
    assert ttft_sample(TTFT_CONFIG, BUSY, 1) == pytest.approx((2.33611 / 4, 1.0), abs=1e-5)  # 40 req/s on one
    assert ttft_sample(replace(TTFT_CONFIG, capacity_model=None), BUSY, 4) is None
    capped = replace(BUSY, batch_cap=8.0)  # the learned batch limit is part of the model
    assert ttft_sample(TTFT_CONFIG, capped, 4) == pytest.approx((0.79916, 1.0), abs=1e-5)  # 7.10 req/s


def test_the_window_learns_from_whichever_of_ttft_and_decode_latency_says_more() -> None:
    alpha = 1 - 0.5 ** (15 / 90)
    learned = calibrate(TTFT_CONFIG, PolicyState(), BUSY, 4, 4, 1000.0).load_scale
    assert learned == pytest.approx(math.exp(alpha * math.log(2.33611)), rel=1e-5)  # 1.0970
    # The decode latency alone says the plan is right (factor 1.0, weight 0.85): nothing moves.
    assert calibrate(replace(TTFT_CONFIG, ttft_learning=False), PolicyState(), BUSY, 4, 4, 1000.0).load_scale == 1.0
    assert calibrate(TTFT_CONFIG, PolicyState(), replace(BUSY, ttft_ms=1500.0), 4, 4, 1000.0).load_scale == 1.0
    # A decode latency that says more than a TTFT just over its limit wins: 47 ms at 10 req/s per replica is a
    # factor 2.117, the TTFT's 2.078.
    slow = replace(BUSY, latency=47.0, ttft_ms=1601.0)
    by_decode = calibrate(replace(TTFT_CONFIG, ttft_learning=False), PolicyState(), slow, 4, 4, 1000.0).load_scale
    assert calibrate(TTFT_CONFIG, PolicyState(), slow, 4, 4, 1000.0).load_scale == by_decode
    assert by_decode == pytest.approx(math.exp(alpha * math.log(2.11706)), rel=1e-5)  # 1.0853


def test_a_window_that_teaches_nothing_pulls_the_factor_back_to_the_plan() -> None:
    decay = 0.5 ** (15 / 1800)  # one tick of the 30-minute half-life
    assert calibration.decayed_scale(2.0, SETTINGS) == pytest.approx(2.0**decay, rel=1e-12)
    assert calibration.decayed_scale(None, SETTINGS) is None
    assert calibration.decayed_scale(2.0, replace(SETTINGS, decay_half_life_s=None)) == 2.0
    value: float | None = 2.0
    for _ in range(120):  # 30 minutes of windows at the floor: half the way back, in log space
        value = calibration.decayed_scale(value, SETTINGS)
    assert value == pytest.approx(math.sqrt(2.0), rel=1e-9)
    # 4 replicas at 4 req/s read 5 ms: near the floor by both the reading and the model, the window says nothing
    learned = PolicyState(load_scale=2.0)
    assert decide(CONFIG, learned, reading(0.0, 4.0, 5.0), 4, 4, 0.0).state.load_scale == pytest.approx(2.0**decay)
    queued = Observation(5.0, 50_000, 0.8, 4.0, 0.3, 0.0, request_rate=4.0, mean_prompt_tokens=1000,
                         mean_output_tokens=200, waiting_growth_rps=0.0)  # fmt: skip
    assert decide(CONFIG, learned, queued, 4, 4, 0.0).state.load_scale == 2.0  # a queue: not a valid window
    newly_ready = replace(learned, ready_changed_at=0.0)
    assert decide(CONFIG, newly_ready, reading(60.0, 4.0, 5.0), 4, 4, 60.0).state.load_scale == 2.0


def test_the_edges_of_what_a_reading_teaches() -> None:
    def sample(rps: float, latency: float, target: float, settings: CalibrationSettings = SETTINGS) -> object:
        return calibration.load_scale_sample(MODEL, Reading(rps, 1000, 200, latency), target, 3.9, settings)

    assert sample(10.0, math.nan, 50.0) is None  # no latency figure
    assert sample(10.0, 5.0, 3.9) is None  # a target at the floor leaves no room to read a factor in
    # half a millisecond above the floor is room enough: 4.3 ms where the model says 4.08 ms at 1 req/s
    assert sample(1.0, 4.3, 4.4) == pytest.approx((2.149733, 0.964286), abs=1e-6)
    assert sample(10.0, 100.0, 50.0) == pytest.approx((2.158947, 1.0), abs=1e-6)  # exactly 2x the target: still read
    # 5 ms at 10 req/s: the mean model (6.9 ms) calls it the floor, the p95 model (the prefill cliff, 37 ms) does not
    assert sample(10.0, 5.0, 50.0) is None
    p95 = replace(SETTINGS, percentile=95)
    assert sample(10.0, 5.0, 50.0, p95) == pytest.approx((1.0, 0.851505), abs=1e-6)
    assert calibration.moved(1.0, 1.25, replace(SETTINGS, event_move=0.25)) is False  # exactly the move: no Event


def test_the_solver_and_the_capacity_search_at_their_bounds() -> None:
    # A reading the plan's model explains exactly: the factor is the plan's (1.0) itself, not a bisection near it;
    # one the model explains only at the largest factor: that bound exactly.
    exact = itl_ms(MODEL, 10.0, 1000, 200)
    assert calibration._solve(MODEL, Reading(10.0, 1000, 200, exact), None) == 1.0
    at_max = itl_ms(MODEL, 5.0 * math.exp(math.log(calibration.MAX_LOAD_SCALE)), 1000, 200)
    assert calibration._solve(MODEL, Reading(5.0, 1000, 200, at_max), None) == calibration.MAX_LOAD_SCALE
    # Below 1 req/s per replica (a target 0.1 ms over the floor): the search starts at 0, not at 1 req/s.
    assert calibration.capacity_rps(MODEL, 1.0, 1000, 200, 4.0) == pytest.approx(0.577741, abs=1e-6)
    # The p95's prefill cliff sizes the capacity (8.2 req/s) where the mean would allow 18.6: the bracket is
    # searched with the percentile too, not with the mean and then bisected by the percentile.
    assert calibration.capacity_rps(MODEL, 1.0, 1000, 200, 20.0) == pytest.approx(18.603254, abs=1e-6)
    assert calibration.capacity_rps(MODEL, 1.0, 1000, 200, 20.0, 95) == pytest.approx(8.245927, abs=1e-6)
    # A reading exactly at the informative share (9 ms over a 15 ms floor, 30 ms of room: 0.3) still teaches, at the
    # least weight.
    at_share = calibration.load_scale_sample(MODEL, Reading(10.0, 1000, 200, 24.0), 45.0, 15.0, SETTINGS)
    assert at_share == pytest.approx((1.935432, 0.25), abs=1e-6)


def test_a_floor_above_the_plan_teaches_the_step_time() -> None:
    # At 2 req/s the model is on its flat part (4.27 ms, 0.8 % of the room above the 3.9 ms floor).
    modelled = itl_ms(MODEL, 2.0, 1000, 200)
    assert modelled == pytest.approx(4.269500, abs=1e-6)

    def step(previous: float | None, mean: float | None, rps: float = 2.0, settings: CalibrationSettings = SETTINGS,
             p95: float = 6.0):  # fmt: skip
        evidence = Reading(rps, 1000, 200, p95, mean)
        return calibration.updated_step_scale(previous, MODEL, evidence, 50.0, 3.9, settings)

    # The window's mean is the evidence, not its percentile: a p95 at twice the model's (a prefill-chunk tail, or
    # the upper edge of a coarse first bucket) with the mean on the model's teaches nothing; without a mean, kept.
    assert step(None, modelled, p95=2 * modelled) is None and step(1.2, modelled, p95=10.0) == 1.2
    assert step(1.2, None) == 1.2
    # 25 % over the model: learned at half a full reading's weight (one tick: alpha 0.1091, half of it)
    alpha = (1 - 0.5 ** (15 / 90)) / 2
    assert step(None, modelled * 1.25) == pytest.approx(math.exp(alpha * math.log(1.25)), rel=1e-12)
    assert step(None, modelled * 1.25) == pytest.approx(1.012247, abs=1e-6)
    assert step(1.2, modelled * 1.25) == pytest.approx(1.202675, abs=1e-6)
    # within the 10 % dead band: kept (None stays None); under the model: decays toward the plan
    assert step(None, modelled * 1.1) is None and step(1.2, modelled * 1.1) == 1.2
    assert step(1.2, modelled * 1.05) == 1.2
    # under the model: learned the same way, toward the ratio, and never below the plan
    assert step(1.2, modelled * 0.9) == pytest.approx(math.exp((1 - alpha) * math.log(1.2) + alpha * math.log(0.9)))
    assert step(1.2, modelled * 0.9) == pytest.approx(1.181315, abs=1e-6)
    assert step(1.01, modelled * 0.5) == 1.0 and step(None, modelled * 0.9) is None
    # more than twice the model's mean is a burst or a draining queue, not a step time: kept; twice is still learned
    assert step(1.2, modelled * 2.01) == 1.2 and step(None, modelled * 2.01) is None
    assert step(None, modelled * 2.0) == pytest.approx(math.exp(alpha * math.log(2.0)), rel=1e-12)
    # where the model's curve rises (19 req/s: 21.9 ms, 39 % of the room) the load factor reads the window instead
    assert step(1.2, 40.0, rps=19.0) == 1.2
    assert step(1.2, modelled * 1.25, settings=replace(SETTINGS, step_dead_band=None)) == 1.2  # off
    assert step(1.2, math.nan) == 1.2 and step(1.2, 5.0, rps=0.0) == 1.2
    # a 25 % slower step costs 22 % of the capacity at 45 ms
    slowed = calibration.capacity_rps(MODEL.slowed(1.25), 1.0, 1000, 200, 45.0)
    assert slowed == pytest.approx(16.484871, abs=1e-6)


def test_the_learned_step_time_slows_the_model_the_policy_sizes_with() -> None:
    reading = PolicyReading(30.0, "p95 TPOT 30 ms", 8.0, 0.0, rps=60.0, prompt=1000, output=200, arrivals=60.0)
    config = replace(CONFIG, max_replicas=16)
    assert reading.need(config, 45.0) == 3
    # 25 % slower, a step carrying a 1000-token prefill chunk (40.6 ms plus the decode step) is itself above 45 ms:
    # the p95's cliff comes at 6.6 req/s per replica instead of 20.8
    assert replace(reading, step_scale=1.25).need(config, 45.0) == 10
    assert calibration.capacity_rps(MODEL.slowed(1.25), 1.0, 1000, 200, 45.0, 95) == pytest.approx(6.596741, abs=1e-6)
    assert replace(reading, step_scale=1.25).model(config) == config.capacity_model.slowed(1.25)
    # kept in status and read back
    assert PolicyState(step_scale=1.2345).to_dict() == {"capacity": {"stepScale": 1.234}}
    assert PolicyState.from_dict({"capacity": {"stepScale": 1.234}}).step_scale == 1.234
    assert PolicyState.from_dict({"capacity": {"stepScale": 3.5}}).step_scale is None  # out of [1, 3]


def test_the_step_time_at_the_bounds_of_its_evidence() -> None:
    alpha = (1 - 0.5 ** (15 / 90)) / 2  # one tick at half weight

    def step(model: CapacityModel, rps: float, mean_over_model: float, target: float = 50.0, floor: float = 3.9,
             settings: CalibrationSettings = SETTINGS, previous: float | None = 1.2) -> float | None:  # fmt: skip
        mean = itl_ms(model, rps, 1000, 200) * mean_over_model
        return calibration.updated_step_scale(previous, model, Reading(rps, 1000, 200, 6.0, mean), target, floor,
                                              settings)  # fmt: skip

    learned = math.exp((1 - alpha) * math.log(1.2) + alpha * math.log(1.5))
    # below 1 req/s per replica a window still speaks
    assert step(MODEL, 0.5, 1.5) == pytest.approx(learned, rel=1e-12)
    # flatness is judged at the SLO's percentile: at 10 req/s the mean is flat (6.9 ms) but the p95 has met the
    # prefill cliff (37.1 ms), so the load factor, not the step time, reads that window
    assert step(MODEL, 10.0, 1.5) == pytest.approx(learned, rel=1e-12)
    assert step(MODEL, 10.0, 1.5, settings=replace(SETTINGS, percentile=95)) == 1.2
    # the room is target - floor: at 18 req/s (17.6 ms) a 45 ms target leaves 33 % of it used, 50 ms 30 %
    assert step(MODEL, 18.0, 1.5, target=45.0) == 1.2
    assert step(MODEL, 17.0, 1.5) == pytest.approx(learned, rel=1e-12)
    # no room (target at the floor): nothing to judge; half a millisecond of room is room
    assert step(MODEL, 2.0, 1.5, target=3.9) == 1.2
    assert step(MODEL, 0.5, 1.5, target=4.4) == pytest.approx(learned, rel=1e-12)
    # a model under a millisecond per token still teaches; a model that costs nothing does not
    fast = MODEL.slowed(0.1)
    assert step(fast, 2.0, 1.5, target=5.0, floor=0.39) == pytest.approx(learned, rel=1e-12)
    assert step(MODEL.slowed(0.0), 2.0, 1.5) == 1.2
    # exactly at the informative share the curve no longer counts as flat
    flat = itl_ms(MODEL, 2.0, 1000, 200)
    assert step(MODEL, 2.0, 1.5, target=flat - 3.0 + 10.0, floor=flat - 3.0) == 1.2
    assert step(MODEL, 2.0, 1.5, target=flat - 3.0 + 10.01, floor=flat - 3.0) == pytest.approx(learned, rel=1e-12)


def test_the_load_factor_is_read_against_the_model_at_the_learned_step_time() -> None:
    def learned(step: float | None, latency: float, rps: float, mean: float | None = None) -> PolicyState:
        window = PolicyReading(latency, "p95", 8.0, 0.0, rps=rps, prompt=1000, output=200, arrivals=rps, mean_ms=mean)
        return calibrate(CONFIG, PolicyState(step_scale=step), window, 4, 4, 1000.0)

    # 10 req/s per replica at 45 ms: x1.083 against the plan's model; a step 1.5x or 2x slower explains it all
    assert learned(None, 45.0, 40.0).load_scale == pytest.approx(1.082985, abs=1e-6)
    assert learned(1.5, 45.0, 40.0).load_scale == 1.0 and learned(2.0, 45.0, 40.0).load_scale == 1.0
    # 4 req/s per replica at 20 ms: the slowed model's floor (3.9 ms x 1.02) weighs the reading
    alpha = 1 - 0.5 ** (15 / 90)
    slowed = calibration.load_scale_sample(MODEL.slowed(1.02), Reading(4.0, 1000, 200, 20.0), 50.0, 3.978,
                                           replace(SETTINGS, percentile=95))  # fmt: skip
    assert slowed == pytest.approx((2.021060, 0.318768), abs=1e-6)
    assert learned(1.02, 20.0, 16.0).load_scale == pytest.approx(math.exp(alpha * 0.318768 * math.log(2.021060)))
    assert learned(1.02, 20.0, 16.0).load_scale == pytest.approx(1.024772, abs=1e-6)
    # the step time learned before is the one a window in the dead band keeps (and without a model, none is read)
    assert learned(1.2, 5.0, 8.0, mean=itl_ms(MODEL, 2.0, 1000, 200) * 1.05).step_scale == 1.2
    assert PolicyReading(5.0, "p95", 1.0, 0.0, step_scale=1.25).model(replace(CONFIG, capacity_model=None)) is None
    assert PolicyReading(5.0, "p95", 1.0, 0.0, step_scale=2.0).model(CONFIG) == MODEL.slowed(2.0)
