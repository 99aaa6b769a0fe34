"""The scaling policy: scenarios with numbers, and properties that hold for any input."""

from __future__ import annotations

import json
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from llmop.autoscale.capacity import CapacityModel
from llmop.autoscale.metrics import Observation
from llmop.autoscale.policy import Decision, PolicyConfig, PolicyState, decide

CONFIG = PolicyConfig(
    target_ms=40.0,
    percentile=95,
    min_replicas=1,
    max_replicas=8,
    scale_up_stabilization_s=30.0,
    scale_down_stabilization_s=300.0,
    capacity_per_replica=100,
    decode_floor_ms=5.0,
)


def obs(latency: float | None, running: float = 50, waiting: float = 0, samples: float = 10_000, at: float = 0.0,
        error: str | None = None, below: bool = False) -> Observation:  # fmt: skip
    return Observation(latency, samples, running, waiting, 0.5, at, error=error, below_resolution=below)


def run(config: PolicyConfig, observations: list[tuple[float, Observation]], current: int) -> list[Decision]:
    state, decisions = PolicyState(), []
    for now, observation in observations:
        decision = decide(config, state, observation, current, current, now)
        decisions.append(decision)
        state, current = decision.state, decision.desired
    return decisions


def test_breach_scales_up_only_after_the_up_window_with_numbers_in_the_reason() -> None:
    ticks = [(t, obs(61.0, running=150, at=t)) for t in (0, 15, 30)]
    first, second, third = run(CONFIG, ticks, current=2)
    assert first.direction == second.direction == "hold" and first.slo_met is False
    assert third.direction == "up" and third.desired == 4  # ceil(2 x (61 - 5) / (40 - 5) x 1.1)
    assert third.reason == "scaled 2 -> 4: p95 TPOT 61 ms > SLO 40 ms for 30 s (latency above the 5.0 ms floor x1.60)"


def test_capacity_model_scales_up_before_latency_breaches_and_may_jump() -> None:
    ticks = [(t, obs(30.0, running=450, waiting=50, at=t)) for t in (0, 30)]
    decision = run(CONFIG, ticks, current=2)[-1]
    assert decision.direction == "up" and decision.desired == 5  # 500 requests / 100 per replica
    assert decision.slo_met is True


def test_scale_down_one_step_after_the_down_window_and_never_below_min() -> None:
    ticks = [(float(t), obs(8.0, running=20, at=t)) for t in range(0, 1800, 15)]
    decisions = run(CONFIG, ticks, current=3)
    downs = [d for d in decisions if d.direction == "down"]
    assert downs and all(d.direction != "up" for d in decisions)
    first = next(i for i, d in enumerate(decisions) if d.direction == "down")
    assert ticks[first][0] >= 300
    assert [d.desired for d in downs] == [2, 1]
    assert decisions[-1].desired == 1


def test_tolerance_band_holds() -> None:
    ticks = [(float(t), obs(38.0, running=60, at=t)) for t in range(0, 900, 15)]
    assert {d.desired for d in run(CONFIG, ticks, current=2)} == {2}


def test_missing_data_holds_and_says_why() -> None:
    decision = decide(CONFIG, PolicyState(), Observation.failed("connection refused", 0.0), 4, 4, 0.0)
    assert decision.desired == 4 and not decision.metrics_available and "connection refused" in decision.metrics_reason


def test_too_few_samples_do_not_drive_latency_decisions() -> None:
    ticks = [(t, obs(500.0, running=3, samples=20, at=t)) for t in (0, 30, 60)]
    decisions = run(CONFIG, ticks, current=2)
    assert all(d.direction == "hold" for d in decisions) and decisions[-1].slo_met is None


def test_slo_below_floor_is_not_chased() -> None:
    config = PolicyConfig(target_ms=4.0, percentile=95, min_replicas=1, max_replicas=8, decode_floor_ms=5.0)
    ticks = [(t, obs(12.0, at=t)) for t in (0, 60, 120)]
    decisions = run(config, ticks, current=2)
    assert all(d.desired == 2 for d in decisions) and "below the decode floor" in decisions[-1].reason


def test_starting_replicas_are_waited_for_unless_too_few() -> None:
    state = PolicyState(breach_since=0.0)
    waiting = decide(CONFIG, state, obs(45.0, running=250, at=60), 3, 2, 60.0)
    assert waiting.direction == "hold" and "starting" in waiting.reason
    more = decide(CONFIG, state, obs(61.0, running=550, at=60), 3, 2, 60.0)
    assert more.direction == "up" and more.desired == 6


def test_scale_from_zero_needs_waiting_requests() -> None:
    config = PolicyConfig(target_ms=40.0, percentile=95, min_replicas=0, max_replicas=4)
    idle = decide(config, PolicyState(), obs(None, running=0, waiting=0, samples=0), 0, 0, 0.0)
    assert idle.desired == 0
    wake = decide(config, PolicyState(), obs(None, running=0, waiting=3, samples=0), 0, 0, 0.0)
    assert wake.desired == 1 and wake.direction == "up"


def test_below_resolution_latency_counts_as_met() -> None:
    decision = decide(CONFIG, PolicyState(), obs(10.0, below=True), 2, 2, 0.0)
    assert decision.slo_met is True and decision.metrics_reason == "ok"


def test_below_resolution_latency_above_a_sub_edge_target_is_not_judged() -> None:
    # "<= 10 ms" against an 8 ms SLO: the histogram cannot say whether the SLO is met, so no latency-driven step
    decision = decide(replace(CONFIG, target_ms=8.0), PolicyState(), obs(10.0, below=True), 2, 2, 0.0)
    assert (decision.desired, decision.direction, decision.slo_met) == (2, "hold", None)
    assert decision.metrics_reason == "p95 TPOT <= 10 ms is below the histogram's resolution and the 8.0 ms SLO"


def test_state_round_trips_through_json_and_resumes_without_a_jump() -> None:
    state = PolicyState(breach_since=1_700_000_000.5, headroom_since=None, last_scale_at=1_699_999_000.0,
                        last_scale_direction="up", last_ready=3)  # fmt: skip
    data = json.loads(json.dumps(state.to_dict()))
    assert set(data) >= {"breachSince", "lastScaleAt", "lastScaleDirection", "lastReady"}
    restored = PolicyState.from_dict(data)
    assert abs((restored.breach_since or 0) - 1_700_000_000.5) < 1e-3 and restored.last_ready == 3
    assert PolicyState.from_dict({"breachSince": "garbage", "lastReady": -1}) == PolicyState()
    resumed = decide(CONFIG, restored, obs(20.0, running=120, at=1_700_000_010.0), 3, 3, 1_700_000_010.0)
    assert resumed.desired == 3


def test_a_window_spans_a_readiness_change_until_it_has_passed_whole() -> None:
    changed = PolicyState(ready_changed_at=1000.0)
    assert changed.window_spans_readiness_change(1119.9, 120.0)
    assert not changed.window_spans_readiness_change(1120.0, 120.0)  # a whole window since: only the new count
    assert not PolicyState().window_spans_readiness_change(1000.0, 120.0)  # no change on record


def test_a_restored_breach_window_is_honoured_where_a_fresh_one_would_wait() -> None:
    now = 1_700_000_030.0
    breach = obs(61.0, running=150, at=now)
    restored = PolicyState.from_dict(json.loads(json.dumps(PolicyState(breach_since=now - 30).to_dict())))
    assert decide(CONFIG, restored, breach, 2, 2, now).desired == 4  # the window ran before the restart
    assert decide(CONFIG, PolicyState(), breach, 2, 2, now).desired == 2  # a fresh window starts now


observations = st.builds(
    Observation,
    latency_ms=st.one_of(st.none(), st.floats(0, 5000)),
    samples=st.floats(0, 1e6),
    running=st.one_of(st.none(), st.floats(0, 5000)),
    waiting=st.one_of(st.none(), st.floats(0, 5000)),
    kv_usage=st.none(),
    observed_at=st.floats(0, 10_000),
    error=st.one_of(st.none(), st.just("down")),
    below_resolution=st.booleans(),
    request_rate=st.one_of(st.none(), st.floats(0, 500)),
    mean_prompt_tokens=st.one_of(st.none(), st.floats(1, 8000)),
    mean_output_tokens=st.one_of(st.none(), st.floats(1, 2000)),
)


@settings(max_examples=150, deadline=None)
@given(
    steps=st.lists(st.tuples(observations, st.integers(0, 12), st.floats(0, 60)), min_size=1, max_size=12),
    low=st.integers(0, 4),
    span=st.integers(0, 6),
)
def test_properties(steps: list[tuple[Observation, int, float]], low: int, span: int) -> None:
    config = PolicyConfig(target_ms=40.0, percentile=95, min_replicas=low, max_replicas=max(low + span, 1),
                          capacity_per_replica=50, decode_floor_ms=5.0, scale_up_stabilization_s=0.0,
                          scale_down_stabilization_s=0.0)  # fmt: skip
    state, now, current = PolicyState(), 10_000.0, low
    for observation, ready_drop, dt in steps:
        now += dt
        ready = max(current - ready_drop, 0)
        decision = decide(config, state, observation, current, ready, now)
        assert config.min_replicas <= decision.desired <= config.max_replicas
        in_bounds = config.min_replicas <= current <= config.max_replicas
        if in_bounds and (observation.error is not None or observation.running is None or observation.waiting is None):
            assert decision.desired == current and not decision.metrics_available
        if in_bounds and decision.desired < current:
            assert decision.desired == current - 1
        json.dumps(decision.state.to_dict())
        state, current = decision.state, decision.desired


# -- the capacity model path: trend, fast scale-down, drained backlogs, stale latency -----------------------------

MODEL = CapacityModel(base_ms=3.9, per_seq_ms=0.0081, per_context_ms=4.16e-5, prefill_ms_per_token=0.0325,
                      kv_cache_tokens=518_704, max_num_seqs=256)  # fmt: skip  # Llama-3.1-8B fp8 on an H100
# The plan's model as it stands (no learning, the mean ITL): the rules below are about the model's path; the
# learning and the percentile model have their own tests (test_calibration.py, test_capacity_percentile).
MODELLED = PolicyConfig(target_ms=50.0, percentile=95, min_replicas=1, max_replicas=8, capacity_per_replica=126,
                        decode_floor_ms=3.9, capacity_model=MODEL, startup_s=80.0, calibration=None,
                        percentile_model=False)  # fmt: skip


def load(rps: float, at: float, latency: float = 20.0, waiting: float = 0.0, growth: float = 0.0) -> Observation:
    return Observation(latency, 50_000, 100, waiting, None, at, request_rate=rps, waiting_growth_rps=growth,
                       mean_prompt_tokens=1024, mean_output_tokens=256)  # fmt: skip


def test_a_sustained_rise_scales_up_a_start_up_ahead_of_the_capacity_cliff() -> None:
    # 3 replicas carry ~57 req/s inside the SLO; the load climbs 0.04 req/s per second towards it.
    ticks = [(float(t), load(45.0 + 0.04 * t, t)) for t in range(0, 300, 15)]
    decisions = run(MODELLED, ticks, current=3)
    up = next(d for d in decisions if d.direction == "up")
    at = ticks[decisions.index(up)][0]
    assert up.desired == 4 and "by trend" in up.reason
    assert 45.0 + 0.04 * at < 57.0  # before the present load needed it
    without = run(replace(MODELLED, startup_s=0.0), ticks, current=3)
    assert all(d.direction == "hold" for d in without)  # no trend: nothing is needed yet


def test_a_step_is_not_taken_for_a_trend() -> None:
    ticks = [(float(t), load(20.0 if t < 120 else 40.0, t)) for t in range(0, 600, 15)]
    states = [d.state for d in run(MODELLED, ticks, current=3)]
    assert all((s.trend_growth or 0.0) == 0.0 for s in states)


def test_large_headroom_steps_down_every_tick_after_the_window_one_step_at_a_time() -> None:
    ticks = [(float(t), load(20.0, t, latency=5.0)) for t in range(0, 600, 15)]
    decisions = run(MODELLED, ticks, current=6)
    downs = [(ticks[i][0], d.desired) for i, d in enumerate(decisions) if d.direction == "down"]
    assert [n for _, n in downs] == [5, 4, 3, 2]  # 20 req/s needs 2 replicas; one step per decision
    assert downs[0][0] >= MODELLED.scale_down_stabilization_s
    assert downs[-1][0] - downs[0][0] <= 3 * MODELLED.fast_down_step_s
    small = [(float(t), load(85.0, t, latency=20.0)) for t in range(0, 900, 15)]  # 6 -> 5 only just fits
    moves = [(small[i][0], d.desired) for i, d in enumerate(run(MODELLED, small, current=7)) if d.direction != "hold"]
    assert [n for _, n in moves] == [6, 5] and moves[1][0] - moves[0][0] >= MODELLED.scale_down_step_s


def test_replicas_added_for_a_backlog_go_once_it_is_drained() -> None:
    # 90 req/s fits 5; 8 run while a backlog drains for 6 minutes, then nothing waits.
    draining = [(float(t), load(90.0, t, latency=20.0, waiting=3000.0 - 8 * t, growth=-8.0)) for t in range(0, 360, 15)]
    drained = [(float(t), load(90.0, t, latency=20.0)) for t in range(360, 480, 15)]
    decisions = run(MODELLED, draining + drained, current=8)
    assert all(d.direction == "hold" for d in decisions[: len(draining)])  # never while requests wait
    first = next(i for i, d in enumerate(decisions) if d.direction == "down")
    assert first == len(draining) and decisions[first].desired == 7


def test_a_latency_breach_the_model_contradicts_waits_a_whole_window() -> None:
    ticks = [(float(t), load(25.0, t, latency=80.0)) for t in range(0, 300, 15)]
    decisions = run(MODELLED, ticks, current=4)
    first = next(i for i, d in enumerate(decisions) if d.direction == "up")
    assert ticks[first][0] >= MODELLED.window_s and "fits" in decisions[first].reason


def test_trend_state_round_trips() -> None:
    state = PolicyState(trend_at=1_700_000_000.0, trend_rps=41.5, trend_slope=0.05, trend_growth=0.04)
    assert PolicyState.from_dict(json.loads(json.dumps(state.to_dict()))) == state
    assert PolicyState.from_dict({"trendRps": "x", "trendSlope": True}) == PolicyState()


@settings(max_examples=150, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.one_of(st.none(), st.floats(0, 500)),  # latency
            st.one_of(st.none(), st.floats(0, 300)),  # request rate
            st.floats(-50, 50),  # waiting growth
            st.one_of(st.none(), st.floats(0, 5000)),  # waiting
            st.booleans(),  # error
            st.integers(0, 12),
            st.floats(0, 120),
        ),
        min_size=1,
        max_size=20,
    ),
    low=st.integers(0, 4),
    span=st.integers(0, 6),
)
def test_properties_with_the_capacity_model(steps: list, low: int, span: int) -> None:
    config = replace(MODELLED, min_replicas=low, max_replicas=max(low + span, 1), scale_up_stabilization_s=0.0,
                     scale_down_stabilization_s=0.0)  # fmt: skip
    state, now, current = PolicyState(), 10_000.0, low
    for latency, rate, growth, waiting, error, ready_drop, dt in steps:
        now += dt
        observation = Observation(latency, 10_000, 50, waiting, None, now, error="down" if error else None,
                                  request_rate=rate, waiting_growth_rps=growth, mean_prompt_tokens=1024,
                                  mean_output_tokens=256)  # fmt: skip
        decision = decide(config, state, observation, current, max(current - ready_drop, 0), now)
        assert config.min_replicas <= decision.desired <= config.max_replicas
        in_bounds = config.min_replicas <= current <= config.max_replicas
        if in_bounds and (error or waiting is None):
            assert decision.desired == current and not decision.metrics_available
        if in_bounds and decision.desired < current:
            assert decision.desired == current - 1
        json.dumps(decision.state.to_dict())
        state, current = decision.state, decision.desired
