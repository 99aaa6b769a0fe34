"""autoscale/policy.py pinned: each rule of `decide` with its exact count, direction, reason, SLO state, metrics
reason and the state it stores; the state's JSON both ways; the config from a plan; the trend, the learned load
factor and batch limit. The expected values are the policy's own output at these inputs, each reviewed against the
rule its case names (e.g. 2 -> 4 replicas = ceil(2 x (61 - 5) / (40 - 5) x 1.1)); a change to one is a change of
behaviour to review, not a number to refresh."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from llmop.api.spec import TimeToFirstTokenSLO
from llmop.autoscale.calibration import CalibrationSettings
from llmop.autoscale.capacity import CapacityModel
from llmop.autoscale.metrics import Observation
from llmop.autoscale.policy import Decision, PolicyConfig, PolicyState, coarse_edge_ms, decide

# No capacity model: latency, demand over a per-replica concurrency, and the queue.
PLAIN = PolicyConfig(target_ms=40.0, percentile=95, min_replicas=1, max_replicas=8, capacity_per_replica=100,
                     decode_floor_ms=5.0)  # fmt: skip
MODEL = CapacityModel(base_ms=3.9, per_seq_ms=0.0081, per_context_ms=4.16e-5, prefill_ms_per_token=0.0325,
                      kv_cache_tokens=518_704, max_num_seqs=256)  # fmt: skip  # Llama-3.1-8B fp8 on an H100
# The capacity model's path, without learning and with the mean ITL (learning has its own cases below).
MODELLED = PolicyConfig(target_ms=50.0, percentile=95, min_replicas=1, max_replicas=8, capacity_per_replica=126,
                        decode_floor_ms=3.9, capacity_model=MODEL, startup_s=80.0, calibration=None,
                        percentile_model=False)  # fmt: skip
LEARNING = replace(MODELLED, calibration=CalibrationSettings(), percentile_model=True)
T0 = 1_000.0  # seconds since the epoch: state times read 1970-01-01T00:16:40.000Z
# Arrivals grew 1 req/s per second over the last two spans: the trend is capped at a quarter of the rate.
RISING = PolicyState(trend_at=T0 - 59, trend_rps=50.0, trend_slope=1.0, trend_growth=1.0)


def obs(latency: float | None, running: float | None = 50, waiting: float | None = 0, samples: float = 10_000,
        at: float = T0, **extra: Any) -> Observation:  # fmt: skip
    return Observation(latency, samples, running, waiting, 0.5, at, **extra)


def load(rps: float, latency: float | None = 20.0, waiting: float = 0.0, growth: float = 0.0, at: float = T0,
         running: float = 100, samples: float = 50_000, kv_usage: float | None = None,
         **extra: Any) -> Observation:  # fmt: skip
    return Observation(latency, samples, running, waiting, kv_usage, at, request_rate=rps, waiting_growth_rps=growth,
                       mean_prompt_tokens=1024, mean_output_tokens=256, **extra)  # fmt: skip


def outcome(decision: Decision) -> tuple[Any, ...]:
    return (decision.desired, decision.direction, decision.reason, decision.slo_met, decision.metrics_available,
            decision.metrics_reason, decision.state.to_dict(), decision.capacity_note)  # fmt: skip


def _held_for_the_model(capacity: dict[str, float] | None = None) -> tuple[Any, ...]:
    """The outcome of the learning cases at 60 req/s on 3 ready replicas: the model asks 4, for under 30 s, so the
    tick holds; `capacity` is what it stored (status.autoscaler.capacity), none when it learned nothing."""
    state: dict[str, Any] = {"breachSince": "1970-01-01T00:16:40.000Z", "trendAt": "1970-01-01T00:16:40.000Z",
                             "lastReady": 3, "trendRps": 60.0}  # fmt: skip
    if capacity is not None:
        state["capacity"] = capacity
    reason = "holding 3: 60.0 req/s needs 4 replicas by the capacity model, 3 ready for 0 s (< 30 s)"
    return (3, "hold", reason, True, True, "ok", state, None)


# Each case: the call, then (desired, direction, reason, slo_met, metrics_available, metrics_reason, stored
# state, capacity note).
# fmt: off
CASES: dict[str, tuple[Any, tuple[Any, ...]]] = {
    "fail_static_holds_and_clears_both_clocks": (
        lambda: decide(PLAIN, PolicyState(breach_since=T0 - 5, headroom_since=T0 - 9),
                       Observation.failed("connection refused", T0), 4, 4, T0),
        (4, "hold", "holding 4: metrics unavailable (connection refused)", None, False, "connection refused",
         {"lastReady": 4}, None),
    ),
    "fail_static_at_zero_has_nothing_to_measure": (
        lambda: decide(replace(PLAIN, min_replicas=0), PolicyState(breach_since=T0 - 5),
                       Observation.failed("timeout", T0), 0, 0, T0),
        (0, "hold", "holding at 0: no replicas to measure", None, False, "timeout",
         {"breachSince": "1970-01-01T00:16:35.000Z", "lastReady": 0}, None),
    ),
    "a_missing_running_series_is_missing_data": (
        lambda: decide(PLAIN, PolicyState(), obs(20.0, running=None), 3, 3, T0),
        (3, "hold", "holding 3: metrics unavailable (no running/waiting requests series)", None, False,
         "no running/waiting requests series", {"lastReady": 3}, None),
    ),
    "a_missing_waiting_series_is_missing_data": (
        lambda: decide(PLAIN, PolicyState(), obs(20.0, waiting=None), 3, 3, T0),
        (3, "hold", "holding 3: metrics unavailable (no running/waiting requests series)", None, False,
         "no running/waiting requests series", {"lastReady": 3}, None),
    ),
    "an_observation_180_s_old_is_still_used": (
        lambda: decide(PLAIN, PolicyState(), obs(20.0, at=T0 - 180), 3, 3, T0),
        (3, "hold", "holding 3: headroom for 0 s (p95 TPOT 20 ms); 2 would do in 300 s", True, True, "ok",
         {"headroomSince": "1970-01-01T00:16:40.000Z", "lastReady": 3}, None),
    ),
    "an_observation_over_180_s_old_is_stale_and_clears_both_clocks": (
        lambda: decide(PLAIN, PolicyState(breach_since=T0 - 5, headroom_since=T0 - 9), obs(20.0, at=T0 - 180.5), 3, 3,
                       T0),
        (3, "hold", "holding 3: metrics stale (observation is 180 s old)", None, False, "observation is 180 s old",
         {"lastReady": 3}, None),
    ),
    "zero_wakes_to_one_on_waiting_requests": (
        lambda: decide(replace(PLAIN, min_replicas=0), PolicyState(), obs(None, running=0, waiting=3, samples=0), 0,
                       0, T0),
        (1, "up", "scaled 0 -> 1: 3 requests waiting", None, True,
         "0 tokens in the window < 200: latency not judged",
         {"lastScaleAt": "1970-01-01T00:16:40.000Z", "lastScaleDirection": "up", "lastReady": 0}, None),
    ),
    "zero_stays_without_waiting_requests": (
        lambda: decide(replace(PLAIN, min_replicas=0), PolicyState(), obs(None, running=0, waiting=0.4, samples=0), 0,
                       0, T0),
        (0, "hold", "holding at 0: no waiting requests", None, True,
         "0 tokens in the window < 200: latency not judged", {"lastReady": 0}, None),
    ),
    "half_a_waiting_request_counts_as_one_at_zero": (
        lambda: decide(replace(PLAIN, min_replicas=0), PolicyState(), obs(None, running=0, waiting=0.5, samples=0), 0,
                       0, T0),
        (1, "up", "scaled 0 -> 1: 0.5 requests waiting", None, True,
         "0 tokens in the window < 200: latency not judged",
         {"lastScaleAt": "1970-01-01T00:16:40.000Z", "lastScaleDirection": "up", "lastReady": 0}, None),
    ),
    "zero_stays_when_max_is_zero": (
        lambda: decide(replace(PLAIN, min_replicas=0, max_replicas=0), PolicyState(),
                       obs(None, running=0, waiting=3, samples=0), 0, 0, T0),
        (0, "hold", "holding at 0: no waiting requests", None, True,
         "0 tokens in the window < 200: latency not judged", {"lastReady": 0}, None),
    ),
    "zero_wakes_to_min_when_min_is_above_one": (
        lambda: decide(replace(PLAIN, min_replicas=0, max_replicas=4), PolicyState(),
                       obs(None, running=0, waiting=3, samples=0), 0, 0, T0),
        (1, "up", "scaled 0 -> 1: 3 requests waiting", None, True,
         "0 tokens in the window < 200: latency not judged",
         {"lastScaleAt": "1970-01-01T00:16:40.000Z", "lastScaleDirection": "up", "lastReady": 0}, None),
    ),
    "an_slo_below_the_floor_holds": (
        lambda: decide(replace(PLAIN, target_ms=4.0), PolicyState(), obs(12.0), 2, 2, T0),
        (2, "hold", "holding 2: SLO 4.0 ms is below the decode floor of 5.0 ms; more replicas cannot reach it",
         False, True, "ok", {"lastReady": 2}, None),
    ),
    "a_breach_starts_its_clock": (
        lambda: decide(PLAIN, PolicyState(), obs(61.0, running=150), 2, 2, T0),
        (2, "hold", "holding 2: p95 TPOT 61 ms > SLO 40 ms for 0 s (< 30 s)", False, True, "ok",
         {"breachSince": "1970-01-01T00:16:40.000Z", "lastReady": 2}, None),
    ),
    "a_breach_holds_inside_the_up_window": (
        lambda: decide(PLAIN, PolicyState(breach_since=T0 - 29.9), obs(61.0, running=150), 2, 2, T0),
        (2, "hold", "holding 2: p95 TPOT 61 ms > SLO 40 ms for 30 s (< 30 s)", False, True, "ok",
         {"breachSince": "1970-01-01T00:16:10.100Z", "lastReady": 2}, None),
    ),
    "a_breach_held_30_s_scales_by_the_latency_excess": (
        lambda: decide(PLAIN, PolicyState(breach_since=T0 - 30, headroom_since=T0 - 100), obs(61.0, running=150), 2,
                       2, T0),
        (4, "up", "scaled 2 -> 4: p95 TPOT 61 ms > SLO 40 ms for 30 s (latency above the 5.0 ms floor x1.60)",
         False, True, "ok", {"lastScaleAt": "1970-01-01T00:16:40.000Z", "lastScaleDirection": "up", "lastReady": 2},
         None),
    ),
    "the_latency_at_the_slo_is_met_and_no_breach": (
        lambda: decide(PLAIN, PolicyState(breach_since=T0 - 60), obs(40.0, running=150), 2, 2, T0),
        (2, "hold", "holding 2: p95 TPOT 40 ms; 1 replicas would give ~75 ms > 36 ms", True, True, "ok",
         {"lastReady": 2}, None),
    ),
    "a_breach_at_max_holds": (
        lambda: decide(PLAIN, PolicyState(breach_since=T0 - 60), obs(61.0, running=150), 8, 8, T0),
        (8, "hold", "holding 8 (max): p95 TPOT 61 ms > SLO 40 ms", False, True, "ok",
         {"breachSince": "1970-01-01T00:15:40.000Z", "lastReady": 8}, None),
    ),
    "a_breach_waits_for_starting_replicas_that_suffice": (
        lambda: decide(PLAIN, PolicyState(breach_since=T0 - 60), obs(45.0, running=250), 3, 2, T0),
        (3, "hold", "holding 3: p95 TPOT 45 ms > SLO 40 ms; waiting for 1 starting replica(s)", False, True, "ok",
         {"breachSince": "1970-01-01T00:15:40.000Z", "lastReady": 2}, None),
    ),
    "a_breach_adds_when_starting_replicas_are_too_few": (
        lambda: decide(PLAIN, PolicyState(breach_since=T0 - 60), obs(61.0, running=550), 3, 2, T0),
        (6, "up", "scaled 3 -> 6: p95 TPOT 61 ms > SLO 40 ms for 60 s (550 requests / 100 per replica)", False,
         True, "ok", {"lastScaleAt": "1970-01-01T00:16:40.000Z", "lastScaleDirection": "up", "lastReady": 2}, None),
    ),
    "demand_over_capacity_sizes_the_step_by_demand": (
        lambda: decide(PLAIN, PolicyState(breach_since=T0 - 30), obs(30.0, running=450, waiting=50), 2, 2, T0),
        (5, "up", "scaled 2 -> 5: 500 requests > capacity 100 x 2 ready for 30 s (500 requests / 100 per replica)",
         True, True, "ok", {"lastScaleAt": "1970-01-01T00:16:40.000Z", "lastScaleDirection": "up", "lastReady": 2},
         None),
    ),
    "a_queue_without_any_model_is_pressure": (
        lambda: decide(replace(PLAIN, capacity_per_replica=None), PolicyState(breach_since=T0 - 30),
                       obs(None, running=4, waiting=5, samples=10), 2, 2, T0),
        (3, "up", "scaled 2 -> 3: 5 requests waiting for 30 s (one more replica)", None, True,
         "10 tokens in the window < 200: latency not judged",
         {"lastScaleAt": "1970-01-01T00:16:40.000Z", "lastScaleDirection": "up", "lastReady": 2}, None),
    ),
    "a_queue_of_one_per_ready_replica_is_pressure": (
        lambda: decide(PLAIN, PolicyState(breach_since=T0 - 30), obs(20.0, running=50, waiting=2), 2, 2, T0),
        (3, "up", "scaled 2 -> 3: 2 requests waiting on 2 ready for 30 s (52 requests / 100 per replica)", True,
         True, "ok", {"lastScaleAt": "1970-01-01T00:16:40.000Z", "lastScaleDirection": "up", "lastReady": 2}, None),
    ),
    "a_queue_under_one_per_ready_replica_is_not": (
        lambda: decide(PLAIN, PolicyState(breach_since=T0 - 30), obs(20.0, running=50, waiting=1), 2, 2, T0),
        (2, "hold", "holding 2: p95 TPOT 20 ms; 1 requests waiting", True, True, "ok", {"lastReady": 2}, None),
    ),
    "undoing_a_recent_scale_in_holds_the_restored_count": (
        lambda: decide(PLAIN, PolicyState(breach_since=T0 - 30, last_scale_at=T0 - 100, last_scale_direction="down"),
                       obs(61.0, running=150), 2, 2, T0),
        (4, "up",
         "scaled 2 -> 4: p95 TPOT 61 ms > SLO 40 ms for 30 s (latency above the 5.0 ms floor x1.60); no scale-in "
         "below 3 for 900 s",
         False, True, "ok",
         {"lastScaleAt": "1970-01-01T00:16:40.000Z",
          "holdUntil": "1970-01-01T00:31:40.000Z",
          "lastScaleDirection": "up",
          "lastReady": 2,
          "holdFloor": 3},
         None),
    ),
    "a_scale_in_older_than_the_flap_hold_is_not_held": (
        lambda: decide(PLAIN, PolicyState(breach_since=T0 - 30, last_scale_at=T0 - 900, last_scale_direction="down"),
                       obs(61.0, running=150), 2, 2, T0),
        (4, "up", "scaled 2 -> 4: p95 TPOT 61 ms > SLO 40 ms for 30 s (latency above the 5.0 ms floor x1.60)",
         False, True, "ok", {"lastScaleAt": "1970-01-01T00:16:40.000Z", "lastScaleDirection": "up", "lastReady": 2},
         None),
    ),
    "no_flap_hold_when_it_is_off": (
        lambda: decide(replace(PLAIN, flap_hold_s=0.0),
                       PolicyState(breach_since=T0 - 30, last_scale_at=T0 - 100, last_scale_direction="down"),
                       obs(61.0, running=150), 2, 2, T0),
        (4, "up", "scaled 2 -> 4: p95 TPOT 61 ms > SLO 40 ms for 30 s (latency above the 5.0 ms floor x1.60)",
         False, True, "ok", {"lastScaleAt": "1970-01-01T00:16:40.000Z", "lastScaleDirection": "up", "lastReady": 2},
         None),
    ),
    "a_breach_right_after_a_readiness_change_is_not_judged": (
        lambda: decide(PLAIN, PolicyState(breach_since=T0 - 60, ready_changed_at=T0 - 60), obs(61.0, running=150), 3,
                       3, T0),
        (3, "hold", "holding 3: p95 TPOT 61 ms; 2 replicas would give ~89 ms > 36 ms", False, True, "ok",
         {"readyChangedAt": "1970-01-01T00:15:40.000Z", "lastReady": 3}, None),
    ),
    "a_breach_a_window_after_the_readiness_change_is_judged": (
        lambda: decide(PLAIN, PolicyState(breach_since=T0 - 60, ready_changed_at=T0 - 120), obs(61.0, running=150), 3,
                       3, T0),
        (6, "up", "scaled 3 -> 6: p95 TPOT 61 ms > SLO 40 ms for 60 s (latency above the 5.0 ms floor x1.60)",
         False, True, "ok",
         {"lastScaleAt": "1970-01-01T00:16:40.000Z",
          "readyChangedAt": "1970-01-01T00:14:40.000Z",
          "lastScaleDirection": "up",
          "lastReady": 3},
         None),
    ),
    "one_more_ready_replica_restarts_the_readiness_clock": (
        lambda: decide(PLAIN, PolicyState(last_ready=2), obs(20.0, running=60), 3, 3, T0),
        (3, "hold", "holding 3: headroom for 0 s (p95 TPOT 20 ms); 2 would do in 300 s", True, True, "ok",
         {"headroomSince": "1970-01-01T00:16:40.000Z",
          "readyChangedAt": "1970-01-01T00:16:40.000Z",
          "lastReady": 3,
          "readyBefore": 2},
         None),
    ),
    "ready_above_current_is_clamped_and_negative_is_zero": (
        lambda: decide(PLAIN, PolicyState(last_ready=3), obs(20.0, running=60), 3, 5, T0),
        (3, "hold", "holding 3: headroom for 0 s (p95 TPOT 20 ms); 2 would do in 300 s", True, True, "ok",
         {"headroomSince": "1970-01-01T00:16:40.000Z", "lastReady": 3}, None),
    ),
    "a_probed_breach_never_scales_up": (
        lambda: decide(PLAIN, PolicyState(breach_since=T0 - 60), obs(80.0, running=0, samples=0, source="probe"), 2,
                       2, T0),
        (2, "hold", "holding 2: headroom for 0 s (probe TPOT 80 ms); 1 would do in 300 s", False, True, "ok",
         {"headroomSince": "1970-01-01T00:16:40.000Z", "lastReady": 2}, None),
    ),
    "a_ttft_breach_is_pressure": (
        lambda: decide(replace(PLAIN, ttft_target_ms=500.0, ttft_percentile=99.0), PolicyState(breach_since=T0 - 30),
                       obs(20.0, ttft_ms=800.0), 2, 2, T0),
        (3, "up", "scaled 2 -> 3: p99 TTFT 800 ms > SLO 500 ms for 30 s (50 requests / 100 per replica)", True,
         True, "ok", {"lastScaleAt": "1970-01-01T00:16:40.000Z", "lastScaleDirection": "up", "lastReady": 2}, None),
    ),
    "a_ttft_breach_names_the_slo_percentile_without_its_own": (
        lambda: decide(replace(PLAIN, ttft_target_ms=500.0), PolicyState(), obs(20.0, ttft_ms=800.0), 2, 2, T0),
        (2, "hold", "holding 2: p95 TTFT 800 ms > SLO 500 ms for 0 s (< 30 s)", True, True, "ok",
         {"breachSince": "1970-01-01T00:16:40.000Z", "lastReady": 2}, None),
    ),
    "a_ttft_at_its_target_is_no_breach": (
        lambda: decide(replace(PLAIN, ttft_target_ms=500.0), PolicyState(breach_since=T0 - 30),
                       obs(20.0, ttft_ms=500.0), 2, 2, T0),
        (2, "hold", "holding 2: p95 TPOT 20 ms; TTFT 500 ms > 400 ms (20% under its SLO)", True, True, "ok",
         {"lastReady": 2}, None),
    ),
    "a_probed_ttft_is_no_breach": (
        lambda: decide(replace(PLAIN, ttft_target_ms=500.0), PolicyState(breach_since=T0 - 30),
                       obs(20.0, ttft_ms=800.0, source="probe"), 2, 2, T0),
        (2, "hold", "holding 2: headroom for 0 s (probe TPOT 20 ms); 1 would do in 300 s", True, True, "ok",
         {"headroomSince": "1970-01-01T00:16:40.000Z", "lastReady": 2}, None),
    ),
    "a_ttft_breach_right_after_new_replicas_without_a_queue_is_not_judged": (
        lambda: decide(replace(PLAIN, ttft_target_ms=500.0),
                       PolicyState(breach_since=T0 - 30, ready_changed_at=T0 - 60), obs(20.0, ttft_ms=800.0), 2, 2,
                       T0),
        (2, "hold", "holding 2: p95 TPOT 20 ms; TTFT 800 ms > 400 ms (20% under its SLO)", True, True, "ok",
         {"readyChangedAt": "1970-01-01T00:15:40.000Z", "lastReady": 2}, None),
    ),
    "a_ttft_breach_right_after_new_replicas_with_a_queue_is_judged": (
        lambda: decide(replace(PLAIN, ttft_target_ms=500.0),
                       PolicyState(breach_since=T0 - 30, ready_changed_at=T0 - 60),
                       obs(20.0, waiting=1, ttft_ms=800.0), 2, 2, T0),
        (3, "up", "scaled 2 -> 3: p95 TTFT 800 ms > SLO 500 ms for 30 s (51 requests / 100 per replica)", True,
         True, "ok",
         {"lastScaleAt": "1970-01-01T00:16:40.000Z",
          "readyChangedAt": "1970-01-01T00:15:40.000Z",
          "lastScaleDirection": "up",
          "lastReady": 2},
         None),
    ),
    "headroom_at_min_holds": (
        lambda: decide(PLAIN, PolicyState(headroom_since=T0 - 400), obs(8.0, running=20), 1, 1, T0),
        (1, "hold", "holding 1: p95 TPOT 8.0 ms; requests in flight", True, True, "ok", {"lastReady": 1}, None),
    ),
    "headroom_starts_its_clock": (
        lambda: decide(PLAIN, PolicyState(), obs(8.0, running=20), 3, 3, T0),
        (3, "hold", "holding 3: headroom for 0 s (p95 TPOT 8.0 ms); 2 would do in 300 s", True, True, "ok",
         {"headroomSince": "1970-01-01T00:16:40.000Z", "lastReady": 3}, None),
    ),
    "headroom_held_for_the_down_window_steps_down_one": (
        lambda: decide(PLAIN, PolicyState(headroom_since=T0 - 300), obs(8.0, running=20), 3, 3, T0),
        (2, "down",
         "scaled 3 -> 2: p95 TPOT 8.0 ms <= SLO 40 ms; 2 replicas project ~9.5 ms, 20 requests fit 2 for 300 s",
         True, True, "ok",
         {"headroomSince": "1970-01-01T00:11:40.000Z",
          "lastScaleAt": "1970-01-01T00:16:40.000Z",
          "lastScaleDirection": "down",
          "lastReady": 3},
         None),
    ),
    "headroom_one_second_short_of_the_down_window_holds": (
        lambda: decide(PLAIN, PolicyState(headroom_since=T0 - 299), obs(8.0, running=20), 3, 3, T0),
        (3, "hold", "holding 3: headroom for 299 s (p95 TPOT 8.0 ms); 2 would do in 1 s", True, True, "ok",
         {"headroomSince": "1970-01-01T00:11:41.000Z", "lastReady": 3}, None),
    ),
    "the_next_step_down_waits_the_step_interval": (
        lambda: decide(PLAIN,
                       PolicyState(headroom_since=T0 - 400, last_scale_at=T0 - 40, last_scale_direction="down"),
                       obs(8.0, running=20), 3, 3, T0),
        (3, "hold", "holding 3: headroom for 400 s (p95 TPOT 8.0 ms); 2 would do in 20 s", True, True, "ok",
         {"headroomSince": "1970-01-01T00:10:00.000Z",
          "lastScaleAt": "1970-01-01T00:16:00.000Z",
          "lastScaleDirection": "down",
          "lastReady": 3},
         None),
    ),
    "the_next_step_down_after_the_step_interval": (
        lambda: decide(PLAIN,
                       PolicyState(headroom_since=T0 - 400, last_scale_at=T0 - 60, last_scale_direction="down"),
                       obs(8.0, running=20), 3, 3, T0),
        (2, "down",
         "scaled 3 -> 2: p95 TPOT 8.0 ms <= SLO 40 ms; 2 replicas project ~9.5 ms, 20 requests fit 2 for 400 s",
         True, True, "ok",
         {"headroomSince": "1970-01-01T00:10:00.000Z",
          "lastScaleAt": "1970-01-01T00:16:40.000Z",
          "lastScaleDirection": "down",
          "lastReady": 3},
         None),
    ),
    "no_headroom_when_fewer_would_project_over_the_band": (
        lambda: decide(PLAIN, PolicyState(headroom_since=T0 - 400), obs(30.0, running=20), 2, 2, T0),
        (2, "hold", "holding 2: p95 TPOT 30 ms; 1 replicas would give ~55 ms > 36 ms", True, True, "ok",
         {"lastReady": 2}, None),
    ),
    "no_headroom_when_the_demand_exceeds_fewer_replicas": (
        lambda: decide(PLAIN, PolicyState(headroom_since=T0 - 400), obs(8.0, running=170), 2, 2, T0),
        (2, "hold", "holding 2: p95 TPOT 8.0 ms; 170 requests > 90 for 1 replicas", True, True, "ok",
         {"lastReady": 2}, None),
    ),
    "no_headroom_while_requests_wait": (
        lambda: decide(PLAIN, PolicyState(headroom_since=T0 - 400), obs(8.0, running=20, waiting=0.6), 3, 3, T0),
        (3, "hold", "holding 3: p95 TPOT 8.0 ms; 0.6 requests waiting", True, True, "ok", {"lastReady": 3}, None),
    ),
    "no_step_down_while_replicas_start": (
        lambda: decide(PLAIN, PolicyState(headroom_since=T0 - 400), obs(8.0, running=20), 3, 2, T0),
        (3, "hold", "holding 3: p95 TPOT 8.0 ms; replicas starting", True, True, "ok", {"lastReady": 2}, None),
    ),
    "above_max_is_clamped_down_and_forgets_the_last_scale": (
        lambda: decide(PLAIN, PolicyState(last_scale_at=T0 - 10, last_scale_direction="up", headroom_since=T0 - 5),
                       obs(8.0, running=20), 10, 10, T0),
        (8, "down", "scaled 10 -> 8: outside replicas 1..8", True, True, "ok",
         {"lastScaleDirection": "up", "lastReady": 10}, None),
    ),
    "below_min_is_clamped_up": (
        lambda: decide(replace(PLAIN, min_replicas=2), PolicyState(), obs(30.0, running=20), 1, 1, T0),
        (2, "up", "scaled 1 -> 2: outside replicas 2..8", True, True, "ok", {"lastReady": 1}, None),
    ),
    "an_active_scale_in_hold_stops_at_its_floor": (
        lambda: decide(PLAIN, PolicyState(headroom_since=T0 - 400, hold_floor=3, hold_until=T0 + 100),
                       obs(8.0, running=20), 3, 3, T0),
        (3, "hold",
         "holding 3: a scale-in below 3 had to be undone; none below it until 1970-01-01T00:18:20.000Z (p95 TPOT "
         "8.0 ms)",
         True, True, "ok",
         {"headroomSince": "1970-01-01T00:10:00.000Z",
          "holdUntil": "1970-01-01T00:18:20.000Z",
          "lastReady": 3,
          "holdFloor": 3},
         None),
    ),
    "an_active_scale_in_hold_allows_steps_above_its_floor": (
        lambda: decide(PLAIN, PolicyState(headroom_since=T0 - 400, hold_floor=3, hold_until=T0 + 100),
                       obs(8.0, running=20), 4, 4, T0),
        (3, "down",
         "scaled 4 -> 3: p95 TPOT 8.0 ms <= SLO 40 ms; 3 replicas project ~9.0 ms, 20 requests fit 3 for 400 s",
         True, True, "ok",
         {"headroomSince": "1970-01-01T00:10:00.000Z",
          "lastScaleAt": "1970-01-01T00:16:40.000Z",
          "holdUntil": "1970-01-01T00:18:20.000Z",
          "lastScaleDirection": "down",
          "lastReady": 4,
          "holdFloor": 3},
         None),
    ),
    "an_expired_scale_in_hold_is_dropped": (
        lambda: decide(PLAIN, PolicyState(headroom_since=T0 - 400, hold_floor=3, hold_until=T0), obs(8.0, running=20),
                       3, 3, T0),
        (2, "down",
         "scaled 3 -> 2: p95 TPOT 8.0 ms <= SLO 40 ms; 2 replicas project ~9.5 ms, 20 requests fit 2 for 400 s",
         True, True, "ok",
         {"headroomSince": "1970-01-01T00:10:00.000Z",
          "lastScaleAt": "1970-01-01T00:16:40.000Z",
          "lastScaleDirection": "down",
          "lastReady": 3},
         None),
    ),
    "one_to_zero_when_idle": (
        lambda: decide(replace(PLAIN, min_replicas=0), PolicyState(headroom_since=T0 - 300),
                       obs(None, running=0, samples=0), 1, 1, T0),
        (0, "down", "scaled 1 -> 0: p95 TPOT n/a <= SLO 40 ms; no requests for 300 s", None, True,
         "0 tokens in the window < 200: latency not judged",
         {"headroomSince": "1970-01-01T00:11:40.000Z",
          "lastScaleAt": "1970-01-01T00:16:40.000Z",
          "lastScaleDirection": "down",
          "lastReady": 1},
         None),
    ),
    "one_to_zero_never_with_a_request_in_flight": (
        lambda: decide(replace(PLAIN, min_replicas=0), PolicyState(headroom_since=T0 - 300),
                       obs(None, running=1, samples=0), 1, 1, T0),
        (1, "hold", "holding 1: p95 TPOT n/a; requests in flight", None, True,
         "0 tokens in the window < 200: latency not judged", {"lastReady": 1}, None),
    ),
    "one_to_zero_never_with_a_judged_latency": (
        lambda: decide(replace(PLAIN, min_replicas=0), PolicyState(headroom_since=T0 - 300), obs(8.0, running=0), 1,
                       1, T0),
        (1, "hold", "holding 1: p95 TPOT 8.0 ms; requests in flight", True, True, "ok", {"lastReady": 1}, None),
    ),
    "one_to_zero_when_idle_by_a_probe": (
        lambda: decide(replace(PLAIN, min_replicas=0), PolicyState(headroom_since=T0 - 300),
                       obs(8.0, running=0, samples=0, source="probe"), 1, 1, T0),
        (0, "down", "scaled 1 -> 0: probe TPOT 8.0 ms <= SLO 40 ms; no requests for 300 s", True, True, "ok",
         {"headroomSince": "1970-01-01T00:11:40.000Z",
          "lastScaleAt": "1970-01-01T00:16:40.000Z",
          "lastScaleDirection": "down",
          "lastReady": 1},
         None),
    ),
    "no_headroom_without_latency_or_model": (
        lambda: decide(replace(PLAIN, capacity_per_replica=None), PolicyState(headroom_since=T0 - 400),
                       obs(None, running=20, samples=10), 3, 3, T0),
        (3, "hold", "holding 3: p95 TPOT n/a; no latency and no capacity model to judge headroom", None, True,
         "10 tokens in the window < 200: latency not judged", {"lastReady": 3}, None),
    ),
    "headroom_by_demand_alone_without_latency": (
        lambda: decide(PLAIN, PolicyState(headroom_since=T0 - 400), obs(None, running=20, samples=10), 3, 3, T0),
        (2, "down", "scaled 3 -> 2: p95 TPOT n/a <= SLO 40 ms; 20 requests fit 2 for 400 s", None, True,
         "10 tokens in the window < 200: latency not judged",
         {"headroomSince": "1970-01-01T00:10:00.000Z",
          "lastScaleAt": "1970-01-01T00:16:40.000Z",
          "lastScaleDirection": "down",
          "lastReady": 3},
         None),
    ),
    "no_headroom_while_the_ttft_is_within_20_percent_of_its_slo": (
        lambda: decide(replace(PLAIN, ttft_target_ms=500.0), PolicyState(headroom_since=T0 - 400),
                       obs(8.0, running=20, ttft_ms=450.0), 3, 3, T0),
        (3, "hold", "holding 3: p95 TPOT 8.0 ms; TTFT 450 ms > 400 ms (20% under its SLO)", True, True, "ok",
         {"lastReady": 3}, None),
    ),
    "headroom_with_the_ttft_under_80_percent_of_its_slo": (
        lambda: decide(replace(PLAIN, ttft_target_ms=500.0), PolicyState(headroom_since=T0 - 400),
                       obs(8.0, running=20, ttft_ms=400.0), 3, 3, T0),
        (2, "down",
         "scaled 3 -> 2: p95 TPOT 8.0 ms <= SLO 40 ms; 2 replicas project ~9.5 ms, 20 requests fit 2 for 400 s",
         True, True, "ok",
         {"headroomSince": "1970-01-01T00:10:00.000Z",
          "lastScaleAt": "1970-01-01T00:16:40.000Z",
          "lastScaleDirection": "down",
          "lastReady": 3},
         None),
    ),
    "too_few_samples_are_not_judged": (
        lambda: decide(PLAIN, PolicyState(), obs(500.0, running=3, samples=199), 2, 2, T0),
        (2, "hold", "holding 2: headroom for 0 s (p95 TPOT n/a); 1 would do in 300 s", None, True,
         "199 tokens in the window < 200: latency not judged",
         {"headroomSince": "1970-01-01T00:16:40.000Z", "lastReady": 2}, None),
    ),
    "200_samples_are_judged": (
        lambda: decide(PLAIN, PolicyState(), obs(500.0, running=3, samples=200), 2, 2, T0),
        (2, "hold", "holding 2: p95 TPOT 500 ms > SLO 40 ms for 0 s (< 30 s)", False, True, "ok",
         {"breachSince": "1970-01-01T00:16:40.000Z", "lastReady": 2}, None),
    ),
    "below_resolution_over_a_sub_edge_target_is_not_judged": (
        lambda: decide(replace(PLAIN, target_ms=8.0), PolicyState(), obs(10.0, below_resolution=True), 2, 2, T0),
        (2, "hold", "holding 2: headroom for 0 s (p95 TPOT <= 10 ms); 1 would do in 300 s", None, True,
         "p95 TPOT <= 10 ms is below the histogram's resolution and the 8.0 ms SLO",
         {"headroomSince": "1970-01-01T00:16:40.000Z", "lastReady": 2}, None),
    ),
    "below_resolution_under_the_target_is_met": (
        lambda: decide(PLAIN, PolicyState(), obs(10.0, below_resolution=True), 2, 2, T0),
        (2, "hold", "holding 2: headroom for 0 s (p95 TPOT <= 10 ms); 1 would do in 300 s", True, True, "ok",
         {"headroomSince": "1970-01-01T00:16:40.000Z", "lastReady": 2}, None),
    ),
    "a_coarse_edge_with_more_than_5_percent_above_it_is_a_breach": (
        lambda: decide(replace(PLAIN, coarse_edge_ms=25.0), PolicyState(breach_since=T0 - 30),
                       obs(30.0, buckets=((0.025, 94.0), (0.05, 100.0), (float("inf"), 100.0))), 2, 2, T0),
        (3, "up",
         "scaled 2 -> 3: p95 TPOT 30 ms (6.0% of tokens above the 25 ms edge below the SLO) > SLO 40 ms for 30 s "
         "(50 requests / 100 per replica)",
         False, True, "ok", {"lastScaleAt": "1970-01-01T00:16:40.000Z", "lastScaleDirection": "up", "lastReady": 2},
         None),
    ),
    "a_coarse_edge_with_5_percent_above_it_is_met": (
        lambda: decide(replace(PLAIN, coarse_edge_ms=25.0), PolicyState(headroom_since=T0 - 400),
                       obs(30.0, buckets=((0.025, 95.0), (0.05, 100.0), (float("inf"), 100.0))), 2, 2, T0),
        # Met; a coarse edge's share counts tokens that met the SLO, so it is no error-budget pressure either.
        (2, "hold", "holding 2: p95 TPOT 30 ms; 1 replicas would give ~55 ms > 36 ms", True, True, "ok",
         {"lastReady": 2}, None),
    ),
    "a_coarse_edge_breach_blocks_headroom": (
        lambda: decide(replace(PLAIN, coarse_edge_ms=25.0),
                       PolicyState(headroom_since=T0 - 400, ready_changed_at=T0 - 10),
                       obs(8.0, running=20, buckets=((0.025, 90.0), (float("inf"), 100.0))), 3, 3, T0),
        (3, "hold",
         "holding 3: p95 TPOT 8.0 ms (10.0% of tokens above the 25 ms edge below the SLO); more than 5 % of tokens "
         "above the 25 ms edge",
         False, True, "ok", {"readyChangedAt": "1970-01-01T00:16:30.000Z", "lastReady": 3}, None),
    ),
    "the_model_asks_for_more_than_ready": (
        lambda: decide(MODELLED, PolicyState(breach_since=T0 - 30), load(90.0), 3, 3, T0),
        (5, "up",
         "scaled 3 -> 5: 90.0 req/s needs 5 replicas by the capacity model, 3 ready for 30 s (capacity model: 90.0 "
         "req/s needs 5)",
         True, True, "ok",
         {"lastScaleAt": "1970-01-01T00:16:40.000Z",
          "trendAt": "1970-01-01T00:16:40.000Z",
          "lastScaleDirection": "up",
          "lastReady": 3,
          "trendRps": 90.0},
         None),
    ),
    "the_model_and_queue_size_the_gap_at_once": (
        lambda: decide(MODELLED, PolicyState(breach_since=T0 - 30), load(90.0, waiting=300, running=600), 3, 3, T0),
        (8, "up",
         "scaled 3 -> 8: 92.5 req/s needs 5 replicas by the capacity model, 3 ready for 30 s (900 requests in the "
         "system / 126 per replica)",
         True, True, "ok",
         {"lastScaleAt": "1970-01-01T00:16:40.000Z",
          "trendAt": "1970-01-01T00:16:40.000Z",
          "lastScaleDirection": "up",
          "lastReady": 3,
          "trendRps": 90.0},
         None),
    ),
    "a_breach_the_model_contradicts_waits_a_whole_window": (
        lambda: decide(MODELLED, PolicyState(breach_since=T0 - 60), load(25.0, latency=80.0), 4, 4, T0),
        (4, "hold",
         "holding 4: p95 TPOT 80 ms > SLO 50 ms but the load fits 4 by the capacity model for 60 s (< 120 s)",
         False, True, "ok",
         {"breachSince": "1970-01-01T00:15:40.000Z",
          "headroomSince": "1970-01-01T00:16:40.000Z",
          "trendAt": "1970-01-01T00:16:40.000Z",
          "lastReady": 4,
          "trendRps": 25.0},
         None),
    ),
    "a_breach_the_model_contradicts_acts_after_a_whole_window": (
        lambda: decide(MODELLED, PolicyState(breach_since=T0 - 120), load(25.0, latency=80.0), 4, 4, T0),
        (5, "up",
         "scaled 4 -> 5: p95 TPOT 80 ms > SLO 50 ms but the load fits 4 by the capacity model for 120 s (one more "
         "replica)",
         False, True, "ok",
         {"lastScaleAt": "1970-01-01T00:16:40.000Z",
          "trendAt": "1970-01-01T00:16:40.000Z",
          "lastScaleDirection": "up",
          "lastReady": 4,
          "trendRps": 25.0},
         None),
    ),
    "a_breach_with_a_queue_is_not_contradicted": (
        lambda: decide(MODELLED, PolicyState(breach_since=T0 - 30), load(25.0, latency=80.0, waiting=2.0, running=8),
                       4, 4, T0),
        (5, "up", "scaled 4 -> 5: p95 TPOT 80 ms > SLO 50 ms for 30 s (one more replica)", False, True, "ok",
         {"lastScaleAt": "1970-01-01T00:16:40.000Z",
          "trendAt": "1970-01-01T00:16:40.000Z",
          "lastScaleDirection": "up",
          "lastReady": 4,
          "trendRps": 25.0},
         None),
    ),
    "model_headroom_starts_its_clock_on_the_offered_load": (
        lambda: decide(MODELLED, PolicyState(), load(20.0, latency=5.0), 6, 6, T0),
        (6, "hold", "holding 6: headroom for 0 s (p95 TPOT 5.0 ms); 5 would do in 300 s", True, True, "ok",
         {"headroomSince": "1970-01-01T00:16:40.000Z",
          "trendAt": "1970-01-01T00:16:40.000Z",
          "lastReady": 6,
          "trendRps": 20.0},
         None),
    ),
    "model_headroom_steps_down": (
        lambda: decide(MODELLED, PolicyState(headroom_since=T0 - 300), load(20.0, latency=5.0), 6, 6, T0),
        (5, "down",
         "scaled 6 -> 5: p95 TPOT 5.0 ms <= SLO 50 ms; 20.0 req/s fits 5 by the capacity model, 5 replicas project "
         "~5.2 ms for 300 s",
         True, True, "ok",
         {"headroomSince": "1970-01-01T00:11:40.000Z",
          "lastScaleAt": "1970-01-01T00:16:40.000Z",
          "trendAt": "1970-01-01T00:16:40.000Z",
          "lastScaleDirection": "down",
          "lastReady": 6,
          "trendRps": 20.0},
         None),
    ),
    "model_headroom_after_a_step_down_waits_the_fast_step": (
        lambda: decide(MODELLED,
                       PolicyState(headroom_since=T0 - 400, last_scale_at=T0 - 14, last_scale_direction="down"),
                       load(20.0, latency=5.0), 5, 5, T0),
        (5, "hold", "holding 5: headroom for 400 s (p95 TPOT 5.0 ms); 4 would do in 1 s", True, True, "ok",
         {"headroomSince": "1970-01-01T00:10:00.000Z",
          "lastScaleAt": "1970-01-01T00:16:26.000Z",
          "trendAt": "1970-01-01T00:16:40.000Z",
          "lastScaleDirection": "down",
          "lastReady": 5,
          "trendRps": 20.0},
         None),
    ),
    "model_headroom_after_a_step_down_steps_after_the_fast_step": (
        lambda: decide(MODELLED,
                       PolicyState(headroom_since=T0 - 400, last_scale_at=T0 - 15, last_scale_direction="down"),
                       load(20.0, latency=5.0), 5, 5, T0),
        (4, "down",
         "scaled 5 -> 4: p95 TPOT 5.0 ms <= SLO 50 ms; 20.0 req/s fits 4 by the capacity model, 4 replicas project "
         "~5.3 ms for 400 s",
         True, True, "ok",
         {"headroomSince": "1970-01-01T00:10:00.000Z",
          "lastScaleAt": "1970-01-01T00:16:40.000Z",
          "trendAt": "1970-01-01T00:16:40.000Z",
          "lastScaleDirection": "down",
          "lastReady": 5,
          "trendRps": 20.0},
         None),
    ),
    "model_small_headroom_waits_the_full_step": (
        lambda: decide(MODELLED,
                       PolicyState(headroom_since=T0 - 400, last_scale_at=T0 - 30, last_scale_direction="down"),
                       load(85.0), 6, 6, T0),
        (6, "hold", "holding 6: headroom for 400 s (p95 TPOT 20 ms); 5 would do in 30 s", True, True, "ok",
         {"headroomSince": "1970-01-01T00:10:00.000Z",
          "lastScaleAt": "1970-01-01T00:16:10.000Z",
          "trendAt": "1970-01-01T00:16:40.000Z",
          "lastScaleDirection": "down",
          "lastReady": 6,
          "trendRps": 85.0},
         None),
    ),
    "model_no_headroom_when_fewer_need_more": (
        lambda: decide(MODELLED, PolicyState(headroom_since=T0 - 400), load(90.0), 5, 5, T0),
        (5, "hold", "holding 5: p95 TPOT 20 ms; 90.0 req/s needs 5 replicas by the capacity model", True, True,
         "ok", {"trendAt": "1970-01-01T00:16:40.000Z", "lastReady": 5, "trendRps": 90.0}, None),
    ),
    "the_load_clock_runs_under_pressure_from_a_backlog": (
        lambda: decide(MODELLED, PolicyState(), load(20.0, waiting=40.0, growth=-2.0, running=60), 6, 6, T0),
        (6, "hold", "holding 6: 40 requests waiting on 6 ready for 0 s (< 30 s)", True, True, "ok",
         {"breachSince": "1970-01-01T00:16:40.000Z",
          "headroomSince": "1970-01-01T00:16:40.000Z",
          "trendAt": "1970-01-01T00:16:40.000Z",
          "lastReady": 6,
          "trendRps": 18.0},
         None),
    ),
    "a_backlog_blocks_the_step_not_the_clock": (
        lambda: decide(MODELLED, PolicyState(headroom_since=T0 - 400), load(20.0, waiting=0.6), 6, 6, T0),
        (6, "hold", "holding 6: the load has fit 5 for 400 s, but 0.6 requests waiting (p95 TPOT 20 ms)", True, True,
         "ok",
         {"headroomSince": "1970-01-01T00:10:00.000Z",
          "trendAt": "1970-01-01T00:16:40.000Z",
          "lastReady": 6,
          "trendRps": 20.0},
         None),
    ),
    "the_model_projection_bounds_fewer_at_the_slo": (
        lambda: decide(MODELLED, PolicyState(headroom_since=T0 - 400), load(40.0, latency=45.0), 4, 4, T0),
        (4, "hold",
         "holding 4: the load has fit 3 for 400 s, but 3 replicas would give ~65 ms > 50 ms (p95 TPOT 45 ms)", True,
         True, "ok",
         {"headroomSince": "1970-01-01T00:10:00.000Z",
          "trendAt": "1970-01-01T00:16:40.000Z",
          "lastReady": 4,
          "trendRps": 40.0},
         None),
    ),
    "a_probe_on_an_idle_engine_lets_it_step_down": (
        lambda: decide(MODELLED, PolicyState(headroom_since=T0 - 400),
                       load(0.0, latency=12.0, running=0, source="probe"), 2, 2, T0),
        (1, "down",
         "scaled 2 -> 1: probe TPOT 12 ms <= SLO 50 ms; 0.0 req/s fits 1 by the capacity model, probe TPOT 12 ms "
         "on an idle engine for 400 s",
         True, True, "ok",
         {"headroomSince": "1970-01-01T00:10:00.000Z",
          "lastScaleAt": "1970-01-01T00:16:40.000Z",
          "trendAt": "1970-01-01T00:16:40.000Z",
          "lastScaleDirection": "down",
          "lastReady": 2,
          "trendRps": 0.0},
         None),
    ),
    "the_models_count_is_capped_at_twice_max": (
        lambda: decide(MODELLED, PolicyState(breach_since=T0 - 30), load(1000.0), 3, 3, T0),
        (8, "up",
         "scaled 3 -> 8: 1000.0 req/s needs 16 replicas by the capacity model, 3 ready for 30 s (capacity model: "
         "1000.0 req/s needs 16)",
         True, True, "ok",
         {"lastScaleAt": "1970-01-01T00:16:40.000Z",
          "trendAt": "1970-01-01T00:16:40.000Z",
          "lastScaleDirection": "up",
          "lastReady": 3,
          "trendRps": 1000.0},
         None),
    ),
    "a_learned_batch_limit_shrinks_what_a_replica_runs": (
        lambda: decide(MODELLED, PolicyState(batch_cap=20.0, breach_since=T0 - 30), load(60.0), 3, 3, T0),
        (6, "up",
         "scaled 3 -> 6: 60.0 req/s needs 6 replicas by the capacity model, 3 ready for 30 s (capacity model: 60.0 "
         "req/s needs 6)",
         True, True, "ok",
         {"lastScaleAt": "1970-01-01T00:16:40.000Z",
          "trendAt": "1970-01-01T00:16:40.000Z",
          "lastScaleDirection": "up",
          "lastReady": 3,
          "trendRps": 60.0,
          "capacity": {"batchCap": 20.0}},
         None),
    ),
    "a_learned_load_factor_weighs_the_load": (
        lambda: decide(MODELLED, PolicyState(load_scale=2.0, breach_since=T0 - 30), load(60.0), 3, 3, T0),
        (7, "up",
         "scaled 3 -> 7: 60.0 req/s needs 7 replicas by the capacity model, 3 ready for 30 s (capacity model: 60.0 "
         "req/s needs 7)",
         True, True, "ok",
         {"lastScaleAt": "1970-01-01T00:16:40.000Z",
          "trendAt": "1970-01-01T00:16:40.000Z",
          "lastScaleDirection": "up",
          "lastReady": 3,
          "trendRps": 60.0,
          "capacity": {"loadScale": 2.0}},
         None),
    ),
    "a_trend_is_added_ahead_and_capped_at_a_quarter_of_the_rate": (
        lambda: decide(MODELLED, PolicyState(trend_at=T0 - 60, trend_rps=35.0, trend_slope=1.0, trend_growth=1.0),
                       load(40.0), 3, 3, T0),
        (3, "hold", "holding 3: p95 TPOT 20 ms; 40.0 req/s (+10.0 by trend) needs 3 replicas by the capacity model",
         True, True, "ok",
         {"trendAt": "1970-01-01T00:16:40.000Z",
          "lastReady": 3,
          "trendRps": 40.0,
          "trendSlope": 0.083333,
          "trendGrowth": 0.083333},
         None),
    ),
    "a_trend_under_the_cap_is_added_whole": (
        lambda: decide(MODELLED, PolicyState(trend_at=T0 - 59, trend_rps=39.0, trend_slope=0.01, trend_growth=0.01),
                       load(40.0), 3, 3, T0),
        (3, "hold", "holding 3: p95 TPOT 20 ms; 40.0 req/s (+1.4 by trend) needs 3 replicas by the capacity model",
         True, True, "ok",
         {"trendAt": "1970-01-01T00:15:41.000Z",
          "lastReady": 3,
          "trendRps": 39.0,
          "trendSlope": 0.01,
          "trendGrowth": 0.01},
         None),
    ),
    "a_trend_sample_four_spans_old_still_counts": (
        lambda: decide(MODELLED, PolicyState(trend_at=T0 - 240, trend_rps=39.0, trend_slope=0.01, trend_growth=0.01),
                       load(40.0), 3, 3, T0),
        (3, "hold", "holding 3: p95 TPOT 20 ms; 40.0 req/s (+0.6 by trend) needs 3 replicas by the capacity model",
         True, True, "ok",
         {"trendAt": "1970-01-01T00:16:40.000Z",
          "lastReady": 3,
          "trendRps": 40.0,
          "trendSlope": 0.004167,
          "trendGrowth": 0.004167},
         None),
    ),
    "a_trend_sample_older_than_four_spans_restarts_the_trend": (
        lambda: decide(MODELLED, PolicyState(trend_at=T0 - 241, trend_rps=30.0, trend_slope=0.1, trend_growth=0.1),
                       load(40.0), 3, 3, T0),
        (3, "hold", "holding 3: p95 TPOT 20 ms; 40.0 req/s needs 3 replicas by the capacity model", True, True,
         "ok", {"trendAt": "1970-01-01T00:16:40.000Z", "lastReady": 3, "trendRps": 40.0}, None),
    ),
    "a_trend_sample_from_the_future_restarts_the_trend": (
        lambda: decide(MODELLED, PolicyState(trend_at=T0 + 1, trend_rps=39.0, trend_slope=0.01, trend_growth=0.01),
                       load(40.0), 3, 3, T0),
        (3, "hold", "holding 3: p95 TPOT 20 ms; 40.0 req/s needs 3 replicas by the capacity model", True, True,
         "ok", {"trendAt": "1970-01-01T00:16:40.000Z", "lastReady": 3, "trendRps": 40.0}, None),
    ),
    "no_trend_without_a_start_up_lead": (
        lambda: decide(replace(MODELLED, startup_s=0.0),
                       PolicyState(trend_at=T0 - 59, trend_rps=39.0, trend_slope=0.01, trend_growth=0.01), load(40.0),
                       3, 3, T0),
        (3, "hold", "holding 3: p95 TPOT 20 ms; 40.0 req/s needs 3 replicas by the capacity model", True, True,
         "ok", {"lastReady": 3}, None),
    ),
    "no_trend_without_arrivals": (
        lambda: decide(MODELLED, PolicyState(trend_at=T0 - 59, trend_rps=39.0, trend_slope=0.01, trend_growth=0.01),
                       obs(20.0), 3, 3, T0),
        (3, "hold", "holding 3: headroom for 0 s (p95 TPOT 20 ms); 2 would do in 300 s", True, True, "ok",
         {"headroomSince": "1970-01-01T00:16:40.000Z", "lastReady": 3}, None),
    ),
    "a_jump_over_a_quarter_of_the_rate_is_a_step_not_a_trend": (
        lambda: decide(MODELLED, PolicyState(trend_at=T0 - 60, trend_rps=30.0, trend_slope=0.5), load(40.0 + 1e-6), 3,
                       3, T0),
        (3, "hold", "holding 3: p95 TPOT 20 ms; 40.0 req/s needs 3 replicas by the capacity model", True, True,
         "ok",
         {"trendAt": "1970-01-01T00:16:40.000Z",
          "lastReady": 3,
          "trendRps": 40.000001,
          "trendSlope": 0.0,
          "trendGrowth": 0.0},
         None),
    ),
    "a_jump_of_exactly_a_quarter_is_still_a_trend": (
        lambda: decide(MODELLED, PolicyState(trend_at=T0 - 60, trend_rps=30.0, trend_slope=0.5), load(40.0), 3, 3, T0),
        (3, "hold", "holding 3: p95 TPOT 20 ms; 40.0 req/s (+10.0 by trend) needs 3 replicas by the capacity model",
         True, True, "ok",
         {"trendAt": "1970-01-01T00:16:40.000Z",
          "lastReady": 3,
          "trendRps": 40.0,
          "trendSlope": 0.166667,
          "trendGrowth": 0.166667},
         None),
    ),
    "a_falling_rate_has_no_growth": (
        lambda: decide(MODELLED, PolicyState(trend_at=T0 - 60, trend_rps=42.0, trend_slope=0.05), load(40.0), 3, 3,
                       T0),
        (3, "hold", "holding 3: p95 TPOT 20 ms; 40.0 req/s needs 3 replicas by the capacity model", True, True,
         "ok",
         {"trendAt": "1970-01-01T00:16:40.000Z",
          "lastReady": 3,
          "trendRps": 40.0,
          "trendSlope": -0.033333,
          "trendGrowth": 0.0},
         None),
    ),
    "a_learned_factor_that_moved_is_announced_with_the_capacity": (
        lambda: decide(LEARNING, PolicyState(load_scale=1.2), load(60.0, latency=45.0), 3, 3, T0),
        (3, "hold", "holding 3: 60.0 req/s needs 4 replicas by the capacity model, 3 ready for 0 s (< 30 s)", True,
         True, "ok",
         {"breachSince": "1970-01-01T00:16:40.000Z",
          "trendAt": "1970-01-01T00:16:40.000Z",
          "lastReady": 3,
          "trendRps": 60.0,
          "capacity": {"loadScale": 1.176, "announcedScale": 1.176}},
         "learned capacity: the load weighs x1.18 against the plan's capacity model (was x1.00): one replica "
         "serves 15.52 req/s at the observed lengths (plan: 18.26)"),
    ),
    "a_learned_factor_already_announced_is_not_again": (
        lambda: decide(LEARNING, PolicyState(load_scale=1.2, announced_scale=1.2), load(60.0, latency=45.0), 3, 3, T0),
        _held_for_the_model({"loadScale": 1.176, "announcedScale": 1.2}),
    ),
    "a_learned_factor_without_lengths_is_announced_without_the_capacity": (
        lambda: decide(LEARNING, PolicyState(load_scale=1.2), obs(20.0), 3, 3, T0),
        (3, "hold", "holding 3: headroom for 0 s (p95 TPOT 20 ms); 2 would do in 300 s", True, True, "ok",
         {"headroomSince": "1970-01-01T00:16:40.000Z",
          "lastReady": 3,
          "capacity": {"loadScale": 1.2, "announcedScale": 1.2}},
         "learned capacity: the load weighs x1.20 against the plan's capacity model (was x1.00)"),
    ),
    "a_learned_step_time_without_lengths_is_announced_as_itself": (
        lambda: decide(LEARNING, PolicyState(step_scale=1.25), obs(20.0), 3, 3, T0),
        (3, "hold", "holding 3: headroom for 0 s (p95 TPOT 20 ms); 2 would do in 300 s", True, True, "ok",
         {"headroomSince": "1970-01-01T00:16:40.000Z",
          "lastReady": 3,
          "capacity": {"stepScale": 1.25, "announcedScale": 1.25}},
         "learned capacity: the load weighs x1.25 against the plan's capacity model (was x1.00); every step takes "
         "x1.25 the plan's time"),
    ),
    "a_learned_step_time_with_lengths_announces_what_one_replica_serves": (
        # 1024-token prompts: a 25 % slower step moves the p95's prefill cliff from 18.3 to 6.4 req/s per replica
        lambda: decide(LEARNING, PolicyState(step_scale=1.25, ready_changed_at=T0 - 60), load(15.0, latency=20.0),
                       3, 3, T0),
        (3, "hold", "holding 3: p95 TPOT 20 ms; 15.0 req/s needs 3 replicas by the capacity model", True, True, "ok",
         {"readyChangedAt": "1970-01-01T00:15:40.000Z",
          "trendAt": "1970-01-01T00:16:40.000Z",
          "lastReady": 3,
          "trendRps": 15.0,
          "capacity": {"stepScale": 1.25, "announcedScale": 2.867}},
         "learned capacity: the load weighs x2.87 against the plan's capacity model (was x1.00); every step takes "
         "x1.25 the plan's time: one replica serves 6.37 req/s at the observed lengths (plan: 18.26)"),
    ),
    "a_step_time_twice_the_plans_sizes_with_the_slowed_model": (
        lambda: decide(LEARNING, PolicyState(step_scale=2.0), load(40.0, latency=30.0), 3, 3, T0),
        (3, "hold", "holding 3: 40.0 req/s needs 11 replicas by the capacity model, 3 ready for 0 s (< 30 s)", True,
         True, "ok",
         {"breachSince": "1970-01-01T00:16:40.000Z",
          "trendAt": "1970-01-01T00:16:40.000Z",
          "lastReady": 3,
          "trendRps": 40.0,
          "capacity": {"loadScale": 1.0, "stepScale": 2.0, "announcedScale": 4.587}},
         "learned capacity: the load weighs x4.59 against the plan's capacity model (was x1.00); every step takes "
         "x2.00 the plan's time: one replica serves 3.98 req/s at the observed lengths (plan: 18.26)"),
    ),
    "a_window_above_the_model_teaches_a_factor": (
        lambda: decide(LEARNING, PolicyState(), load(15.0, latency=40.0), 3, 3, T0),
        (3, "hold", "holding 3: the load has fit 2 for 0 s, but 2 replicas would give ~286 ms > 50 ms (p95 TPOT 40 ms)",
         True, True, "ok",
         {"headroomSince": "1970-01-01T00:16:40.000Z",
          "trendAt": "1970-01-01T00:16:40.000Z",
          "lastReady": 3,
          "trendRps": 15.0,
          "capacity": {"loadScale": 1.118}},
         None),
    ),
    "a_flat_window_with_a_slow_mean_teaches_the_step_time": (
        # 2 req/s per replica: the model's mean and p95 are 4.31 ms (flat); a mean of 8 ms is x1.86 at half weight
        lambda: decide(LEARNING, PolicyState(), load(6.0, latency=9.0, mean_latency_ms=8.0), 3, 3, T0),
        (3, "hold", "holding 3: headroom for 0 s (p95 TPOT 9.0 ms); 2 would do in 300 s", True, True, "ok",
         {"headroomSince": "1970-01-01T00:16:40.000Z",
          "trendAt": "1970-01-01T00:16:40.000Z",
          "lastReady": 3,
          "trendRps": 6.0,
          "capacity": {"stepScale": 1.034}},
         None),
    ),
    "a_flat_window_with_the_models_mean_and_a_slow_p95_teaches_nothing": (
        # the p95 twice the model's (a prefill-chunk tail, a coarse bucket's edge), the mean within 10 % of it
        lambda: decide(LEARNING, PolicyState(), load(6.0, latency=9.0, mean_latency_ms=4.4), 3, 3, T0),
        (3, "hold", "holding 3: headroom for 0 s (p95 TPOT 9.0 ms); 2 would do in 300 s", True, True, "ok",
         {"headroomSince": "1970-01-01T00:16:40.000Z",
          "trendAt": "1970-01-01T00:16:40.000Z",
          "lastReady": 3,
          "trendRps": 6.0},
         None),
    ),
    "a_queue_on_every_replica_teaches_the_batch_limit": (
        lambda: decide(LEARNING, PolicyState(), load(60.0, latency=45.0, waiting=3.0, running=300), 3, 3, T0),
        _held_for_the_model({"batchCap": 100.0}),
    ),
    # With the engine's KV-cache gauge (vLLM) a queue teaches the limit only with the cache 90 % full or the batch
    # at 90 % of max-num-seqs (256 here: 230.4 per replica); without the gauge (TGI, and `load` above) any queue does.
    "a_queue_with_room_in_the_kv_cache_teaches_no_batch_limit": (
        lambda: decide(LEARNING, PolicyState(), load(60.0, latency=45.0, waiting=3.0, running=300, kv_usage=0.899),
                       3, 3, T0),
        _held_for_the_model(),
    ),
    "a_queue_with_a_full_kv_cache_teaches_the_batch_limit": (
        lambda: decide(LEARNING, PolicyState(), load(60.0, latency=45.0, waiting=3.0, running=300, kv_usage=0.9),
                       3, 3, T0),
        _held_for_the_model({"batchCap": 100.0}),
    ),
    "a_queue_at_90_percent_of_max_num_seqs_teaches_the_batch_limit": (
        lambda: decide(LEARNING, PolicyState(), load(60.0, latency=45.0, waiting=3.0, running=693, kv_usage=0.5),
                       3, 3, T0),
        _held_for_the_model({"batchCap": 231.0}),
    ),
    "a_queue_below_90_percent_of_max_num_seqs_teaches_nothing": (
        lambda: decide(LEARNING, PolicyState(), load(60.0, latency=45.0, waiting=3.0, running=690, kv_usage=0.5),
                       3, 3, T0),
        _held_for_the_model(),
    ),
    "batch_full_share_none_lets_any_queue_teach_the_limit": (
        lambda: decide(replace(LEARNING, calibration=CalibrationSettings(batch_full_share=None)), PolicyState(),
                       load(60.0, latency=45.0, waiting=3.0, running=300, kv_usage=0.5), 3, 3, T0),
        _held_for_the_model({"batchCap": 100.0}),
    ),
    "a_batch_at_exactly_the_share_of_max_num_seqs_is_full": (
        lambda: decide(replace(LEARNING, calibration=CalibrationSettings(batch_full_share=0.5)), PolicyState(),
                       load(60.0, latency=45.0, waiting=3.0, running=384, kv_usage=0.1), 3, 3, T0),
        _held_for_the_model({"batchCap": 128.0}),
    ),
    "the_batch_limit_moves_by_the_half_life": (
        lambda: decide(LEARNING, PolicyState(batch_cap=120.0), load(60.0, latency=45.0, waiting=3.0, running=300), 3,
                       3, T0),
        _held_for_the_model({"batchCap": 117.818}),
    ),
    "running_above_the_batch_limit_without_a_queue_raises_it": (
        lambda: decide(LEARNING, PolicyState(batch_cap=50.0), load(60.0, running=240), 3, 3, T0),
        _held_for_the_model({"loadScale": 1.0, "batchCap": 80.0}),
    ),
    "a_trend_of_0_05_req_s_is_not_shown": (
        lambda: decide(MODELLED,
                       PolicyState(trend_at=T0 - 59, trend_rps=40.0, trend_slope=0.01, trend_growth=0.05 / 140),
                       load(40.0), 3, 3, T0),
        (3, "hold", "holding 3: p95 TPOT 20 ms; 40.0 req/s needs 3 replicas by the capacity model", True, True,
         "ok",
         {"trendAt": "1970-01-01T00:15:41.000Z",
          "lastReady": 3,
          "trendRps": 40.0,
          "trendSlope": 0.01,
          "trendGrowth": 0.000357},
         None),
    ),
    "a_trend_over_0_05_req_s_is_shown": (
        lambda: decide(MODELLED,
                       PolicyState(trend_at=T0 - 59, trend_rps=40.0, trend_slope=0.01, trend_growth=0.06 / 140),
                       load(40.0), 3, 3, T0),
        (3, "hold", "holding 3: p95 TPOT 20 ms; 40.0 req/s (+0.1 by trend) needs 3 replicas by the capacity model",
         True, True, "ok",
         {"trendAt": "1970-01-01T00:15:41.000Z",
          "lastReady": 3,
          "trendRps": 40.0,
          "trendSlope": 0.01,
          "trendGrowth": 0.000429},
         None),
    ),
    "an_slo_at_the_floor_is_chased": (
        lambda: decide(replace(PLAIN, target_ms=5.0), PolicyState(), obs(4.0, running=20), 2, 2, T0),
        (2, "hold", "holding 2: p95 TPOT 4.0 ms; 1 replicas would give ~5.0 ms > 4.5 ms", True, True, "ok",
         {"lastReady": 2}, None),
    ),
    "a_floor_of_10_ms_reads_in_whole_ms": (
        lambda: decide(replace(PLAIN, target_ms=4.0, decode_floor_ms=10.0), PolicyState(), obs(12.0), 2, 2, T0),
        (2, "hold", "holding 2: SLO 4.0 ms is below the decode floor of 10 ms; more replicas cannot reach it",
         False, True, "ok", {"lastReady": 2}, None),
    ),
    "a_floor_of_10_5_ms_reads_in_whole_ms": (
        lambda: decide(replace(PLAIN, target_ms=4.0, decode_floor_ms=10.5), PolicyState(), obs(12.0), 2, 2, T0),
        (2, "hold", "holding 2: SLO 4.0 ms is below the decode floor of 10 ms; more replicas cannot reach it",
         False, True, "ok", {"lastReady": 2}, None),
    ),
    "a_floor_of_9_96_ms_reads_in_tenths": (
        lambda: decide(replace(PLAIN, target_ms=4.0, decode_floor_ms=9.96), PolicyState(), obs(12.0), 2, 2, T0),
        (2, "hold", "holding 2: SLO 4.0 ms is below the decode floor of 10.0 ms; more replicas cannot reach it",
         False, True, "ok", {"lastReady": 2}, None),
    ),
    "demand_at_capacity_is_no_pressure": (
        lambda: decide(PLAIN, PolicyState(), obs(20.0, running=200), 2, 2, T0),
        (2, "hold", "holding 2: p95 TPOT 20 ms; 200 requests > 90 for 1 replicas", True, True, "ok",
         {"lastReady": 2}, None),
    ),
    "demand_over_one_ready_replica_is_pressure": (
        lambda: decide(PLAIN, PolicyState(breach_since=T0 - 30), obs(20.0, running=150), 1, 1, T0),
        (2, "up", "scaled 1 -> 2: 150 requests > capacity 100 x 1 ready for 30 s (150 requests / 100 per replica)",
         True, True, "ok", {"lastScaleAt": "1970-01-01T00:16:40.000Z", "lastScaleDirection": "up", "lastReady": 1},
         None),
    ),
    "one_waiting_request_without_any_model_is_pressure": (
        lambda: decide(replace(PLAIN, capacity_per_replica=None), PolicyState(breach_since=T0 - 30),
                       obs(None, running=4, waiting=1, samples=10), 2, 2, T0),
        (3, "up", "scaled 2 -> 3: 1 requests waiting for 30 s (one more replica)", None, True,
         "10 tokens in the window < 200: latency not judged",
         {"lastScaleAt": "1970-01-01T00:16:40.000Z", "lastScaleDirection": "up", "lastReady": 2}, None),
    ),
    "one_waiting_request_on_one_ready_replica_is_pressure": (
        lambda: decide(PLAIN, PolicyState(breach_since=T0 - 30), obs(20.0, running=10, waiting=1), 1, 1, T0),
        (2, "up", "scaled 1 -> 2: 1 requests waiting on 1 ready for 30 s (11 requests / 100 per replica)", True,
         True, "ok", {"lastScaleAt": "1970-01-01T00:16:40.000Z", "lastScaleDirection": "up", "lastReady": 1}, None),
    ),
    "a_queue_under_the_configured_share_per_replica_is_not": (
        lambda: decide(replace(PLAIN, queue_per_replica=2.0), PolicyState(breach_since=T0 - 30),
                       obs(20.0, running=50, waiting=3), 2, 2, T0),
        (2, "hold", "holding 2: p95 TPOT 20 ms; 3 requests waiting", True, True, "ok", {"lastReady": 2}, None),
    ),
    "a_ttft_target_of_zero_is_named": (
        lambda: decide(replace(PLAIN, ttft_target_ms=0.0), PolicyState(), obs(20.0, ttft_ms=800.0), 2, 2, T0),
        (2, "hold", "holding 2: p95 TTFT 800 ms > SLO 0.0 ms for 0 s (< 30 s)", True, True, "ok",
         {"breachSince": "1970-01-01T00:16:40.000Z", "lastReady": 2}, None),
    ),
    "a_latency_at_the_slo_with_a_queue_is_sized_by_demand_not_latency": (
        lambda: decide(PLAIN, PolicyState(breach_since=T0 - 30), obs(40.0, running=50, waiting=2), 2, 2, T0),
        (3, "up", "scaled 2 -> 3: 2 requests waiting on 2 ready for 30 s (52 requests / 100 per replica)", True,
         True, "ok", {"lastScaleAt": "1970-01-01T00:16:40.000Z", "lastScaleDirection": "up", "lastReady": 2}, None),
    ),
    "one_ready_replica_is_sized_by_its_latency": (
        lambda: decide(PLAIN, PolicyState(breach_since=T0 - 30), obs(61.0, running=50), 1, 1, T0),
        (2, "up", "scaled 1 -> 2: p95 TPOT 61 ms > SLO 40 ms for 30 s (latency above the 5.0 ms floor x1.60)",
         False, True, "ok", {"lastScaleAt": "1970-01-01T00:16:40.000Z", "lastScaleDirection": "up", "lastReady": 1},
         None),
    ),
    "a_target_under_a_ms_above_the_floor_sizes_by_the_true_excess": (
        lambda: decide(replace(PLAIN, target_ms=5.5), PolicyState(breach_since=T0 - 30), obs(7.0, running=50), 2, 2,
                       T0),
        (8, "up", "scaled 2 -> 8: p95 TPOT 7.0 ms > SLO 5.5 ms for 30 s (latency above the 5.0 ms floor x4.00)",
         False, True, "ok", {"lastScaleAt": "1970-01-01T00:16:40.000Z", "lastScaleDirection": "up", "lastReady": 2},
         None),
    ),
    "an_integer_latency_excess_is_not_rounded_up": (
        lambda: decide(replace(PLAIN, tolerance=0.0), PolicyState(breach_since=T0 - 30), obs(57.5, running=50), 2, 2,
                       T0),
        (3, "up", "scaled 2 -> 3: p95 TPOT 58 ms > SLO 40 ms for 30 s (latency above the 5.0 ms floor x1.50)",
         False, True, "ok", {"lastScaleAt": "1970-01-01T00:16:40.000Z", "lastScaleDirection": "up", "lastReady": 2},
         None),
    ),
    "equal_latency_and_demand_counts_name_the_latency": (
        lambda: decide(PLAIN, PolicyState(breach_since=T0 - 30), obs(61.0, running=400), 2, 2, T0),
        (4, "up", "scaled 2 -> 4: p95 TPOT 61 ms > SLO 40 ms for 30 s (latency above the 5.0 ms floor x1.60)",
         False, True, "ok", {"lastScaleAt": "1970-01-01T00:16:40.000Z", "lastScaleDirection": "up", "lastReady": 2},
         None),
    ),
    "at_max_without_headroom_says_why": (
        lambda: decide(PLAIN, PolicyState(headroom_since=T0 - 400), obs(38.0, running=20), 8, 8, T0),
        (8, "hold", "holding 8: p95 TPOT 38 ms; 7 replicas would give ~43 ms > 36 ms", True, True, "ok",
         {"lastReady": 8}, None),
    ),
    "at_min_with_headroom_says_at_min": (
        lambda: decide(replace(PLAIN, min_replicas=2), PolicyState(headroom_since=T0 - 400), obs(8.0, running=20), 2,
                       2, T0),
        (2, "hold", "holding 2: p95 TPOT 8.0 ms; at min", True, True, "ok", {"lastReady": 2}, None),
    ),
    "a_wait_under_a_second_reads_0_s": (
        lambda: decide(PLAIN, PolicyState(headroom_since=T0 - 299.6), obs(8.0, running=20), 3, 3, T0),
        (3, "hold", "holding 3: headroom for 300 s (p95 TPOT 8.0 ms); 2 would do in 0 s", True, True, "ok",
         {"headroomSince": "1970-01-01T00:11:40.400Z", "lastReady": 3}, None),
    ),
    "a_projection_under_a_ms_over_the_floor_uses_the_true_excess": (
        lambda: decide(PLAIN, PolicyState(headroom_since=T0 - 400), obs(5.5, running=20), 3, 3, T0),
        (2, "down",
         "scaled 3 -> 2: p95 TPOT 5.5 ms <= SLO 40 ms; 2 replicas project ~5.8 ms, 20 requests fit 2 for 400 s",
         True, True, "ok",
         {"headroomSince": "1970-01-01T00:10:00.000Z",
          "lastScaleAt": "1970-01-01T00:16:40.000Z",
          "lastScaleDirection": "down",
          "lastReady": 3},
         None),
    ),
    "the_projection_counts_one_ready_replica_as_one": (
        lambda: decide(PLAIN, PolicyState(headroom_since=T0 - 400), obs(30.0, running=20), 2, 1, T0),
        (2, "hold", "holding 2: p95 TPOT 30 ms; replicas starting", True, True, "ok", {"lastReady": 1}, None),
    ),
    "a_projection_exactly_at_the_band_is_headroom": (
        lambda: decide(PLAIN, PolicyState(headroom_since=T0 - 400), obs(20.5, running=20), 2, 2, T0),
        (1, "down",
         "scaled 2 -> 1: p95 TPOT 20 ms <= SLO 40 ms; 1 replicas project ~36 ms, 20 requests fit 1 for 400 s", True,
         True, "ok",
         {"headroomSince": "1970-01-01T00:10:00.000Z",
          "lastScaleAt": "1970-01-01T00:16:40.000Z",
          "lastScaleDirection": "down",
          "lastReady": 2},
         None),
    ),
    "demand_exactly_at_the_room_of_fewer_is_headroom": (
        lambda: decide(PLAIN, PolicyState(headroom_since=T0 - 400), obs(8.0, running=90), 2, 2, T0),
        (1, "down",
         "scaled 2 -> 1: p95 TPOT 8.0 ms <= SLO 40 ms; 1 replicas project ~11 ms, 90 requests fit 1 for 400 s",
         True, True, "ok",
         {"headroomSince": "1970-01-01T00:10:00.000Z",
          "lastScaleAt": "1970-01-01T00:16:40.000Z",
          "lastScaleDirection": "down",
          "lastReady": 2},
         None),
    ),
    "below_resolution_at_the_target_is_judged": (
        lambda: decide(replace(PLAIN, target_ms=10.0), PolicyState(), obs(10.0, below_resolution=True), 2, 2, T0),
        (2, "hold", "holding 2: p95 TPOT <= 10 ms; 1 replicas would give ~15 ms > 9.0 ms", True, True, "ok",
         {"lastReady": 2}, None),
    ),
    "a_coarse_edge_with_5_5_percent_above_it_is_a_breach": (
        lambda: decide(replace(PLAIN, coarse_edge_ms=25.0), PolicyState(breach_since=T0 - 30),
                       obs(30.0, buckets=((0.025, 94.5), (0.05, 100.0), (float("inf"), 100.0))), 2, 2, T0),
        (3, "up",
         "scaled 2 -> 3: p95 TPOT 30 ms (5.5% of tokens above the 25 ms edge below the SLO) > SLO 40 ms for 30 s "
         "(50 requests / 100 per replica)",
         False, True, "ok", {"lastScaleAt": "1970-01-01T00:16:40.000Z", "lastScaleDirection": "up", "lastReady": 2},
         None),
    ),
    "above_max_under_pressure_is_clamped_and_forgets_the_breach": (
        lambda: decide(PLAIN, PolicyState(breach_since=T0 - 60), obs(61.0, running=150), 10, 10, T0),
        (8, "down", "scaled 10 -> 8: outside replicas 1..8", False, True, "ok", {"lastReady": 10}, None),
    ),
    "waking_from_zero_clears_an_old_breach": (
        lambda: decide(replace(PLAIN, min_replicas=0), PolicyState(breach_since=T0 - 10),
                       obs(None, running=0, waiting=3, samples=0), 0, 0, T0),
        (1, "up", "scaled 0 -> 1: 3 requests waiting", None, True,
         "0 tokens in the window < 200: latency not judged",
         {"lastScaleAt": "1970-01-01T00:16:40.000Z", "lastScaleDirection": "up", "lastReady": 0}, None),
    ),
    "tokens_without_a_quantile_are_not_called_too_few": (
        lambda: decide(PLAIN, PolicyState(), obs(None, running=10, waiting=0, samples=5000), 2, 2, T0),
        (2, "hold", "holding 2: headroom for 0 s (p95 TPOT n/a); 1 would do in 300 s", None, True,
         "no p95 TPOT in the window (5000 tokens): latency not judged",
         {"headroomSince": "1970-01-01T00:16:40.000Z", "lastReady": 2}, None),
    ),
    "zero_wakes_when_max_is_one": (
        lambda: decide(replace(PLAIN, min_replicas=0, max_replicas=1), PolicyState(),
                       obs(None, running=0, waiting=3, samples=0), 0, 0, T0),
        (1, "up", "scaled 0 -> 1: 3 requests waiting", None, True,
         "0 tokens in the window < 200: latency not judged",
         {"lastScaleAt": "1970-01-01T00:16:40.000Z", "lastScaleDirection": "up", "lastReady": 0}, None),
    ),
    "waking_from_zero_reports_a_judged_latency": (
        lambda: decide(replace(PLAIN, min_replicas=0), PolicyState(), obs(20.0, running=0, waiting=3), 0, 0, T0),
        (1, "up", "scaled 0 -> 1: 3 requests waiting", True, True, "ok",
         {"lastScaleAt": "1970-01-01T00:16:40.000Z", "lastScaleDirection": "up", "lastReady": 0}, None),
    ),
    "holding_at_zero_reports_a_judged_latency": (
        lambda: decide(replace(PLAIN, min_replicas=0), PolicyState(), obs(50.0, running=0, waiting=0), 0, 0, T0),
        (0, "hold", "holding at 0: no waiting requests", False, True, "ok", {"lastReady": 0}, None),
    ),
    "a_recent_scale_up_is_no_flap_to_hold": (
        lambda: decide(PLAIN, PolicyState(breach_since=T0 - 30, last_scale_at=T0 - 100, last_scale_direction="up"),
                       obs(61.0, running=150), 2, 2, T0),
        (4, "up", "scaled 2 -> 4: p95 TPOT 61 ms > SLO 40 ms for 30 s (latency above the 5.0 ms floor x1.60)",
         False, True, "ok", {"lastScaleAt": "1970-01-01T00:16:40.000Z", "lastScaleDirection": "up", "lastReady": 2},
         None),
    ),
    "a_one_second_flap_hold_holds_a_half_second_old_scale_in": (
        lambda: decide(replace(PLAIN, flap_hold_s=1.0),
                       PolicyState(breach_since=T0 - 30, last_scale_at=T0 - 0.5, last_scale_direction="down"),
                       obs(61.0, running=150), 2, 2, T0),
        (4, "up",
         "scaled 2 -> 4: p95 TPOT 61 ms > SLO 40 ms for 30 s (latency above the 5.0 ms floor x1.60); no scale-in "
         "below 3 for 1 s",
         False, True, "ok",
         {"lastScaleAt": "1970-01-01T00:16:40.000Z",
          "holdUntil": "1970-01-01T00:16:41.000Z",
          "lastScaleDirection": "up",
          "lastReady": 2,
          "holdFloor": 3},
         None),
    ),
    "the_model_on_one_ready_replica": (
        lambda: decide(MODELLED, PolicyState(breach_since=T0 - 30), load(20.0), 1, 1, T0),
        (2, "up",
         "scaled 1 -> 2: 20.0 req/s needs 2 replicas by the capacity model, 1 ready for 30 s (capacity model: 20.0 "
         "req/s needs 2)",
         True, True, "ok",
         {"lastScaleAt": "1970-01-01T00:16:40.000Z",
          "trendAt": "1970-01-01T00:16:40.000Z",
          "lastScaleDirection": "up",
          "lastReady": 1,
          "trendRps": 20.0},
         None),
    ),
    "the_model_caps_at_twice_a_max_of_one": (
        lambda: decide(replace(MODELLED, max_replicas=1), PolicyState(breach_since=T0 - 30), load(1000.0), 1, 1, T0),
        (1, "hold", "holding 1 (max): 1000.0 req/s needs 2 replicas by the capacity model, 1 ready", True, True,
         "ok",
         {"breachSince": "1970-01-01T00:16:10.000Z",
          "trendAt": "1970-01-01T00:16:40.000Z",
          "lastReady": 1,
          "trendRps": 1000.0},
         None),
    ),
    "a_learned_batch_limit_of_one_sequence": (
        lambda: decide(MODELLED, PolicyState(batch_cap=1.0, breach_since=T0 - 30), load(2.0, latency=5.0, running=2),
                       3, 3, T0),
        (3, "hold", "holding 3: p95 TPOT 5.0 ms; 2.0 req/s needs 3 replicas by the capacity model", True, True,
         "ok",
         {"trendAt": "1970-01-01T00:16:40.000Z", "lastReady": 3, "trendRps": 2.0, "capacity": {"batchCap": 1.0}},
         None),
    ),
    "the_trend_adds_replicas_to_the_step": (
        lambda: decide(MODELLED, replace(RISING, breach_since=T0 - 30), load(80.0), 3, 3, T0),
        (6, "up",
         "scaled 3 -> 6: 80.0 req/s (+20.0 by trend) needs 6 replicas by the capacity model, 3 ready for 30 s "
         "(capacity model: 80.0 req/s (+20.0 by trend) needs 6)",
         True, True, "ok",
         {"lastScaleAt": "1970-01-01T00:16:40.000Z",
          "trendAt": "1970-01-01T00:15:41.000Z",
          "lastScaleDirection": "up",
          "lastReady": 3,
          "trendRps": 50.0,
          "trendSlope": 1.0,
          "trendGrowth": 1.0},
         None),
    ),
    "the_trend_blocks_headroom_the_present_load_has": (
        lambda: decide(MODELLED, replace(RISING, headroom_since=T0 - 400), load(80.0), 6, 6, T0),
        (6, "hold", "holding 6: p95 TPOT 20 ms; 80.0 req/s (+20.0 by trend) needs 6 replicas by the capacity model",
         True, True, "ok",
         {"trendAt": "1970-01-01T00:15:41.000Z",
          "lastReady": 6,
          "trendRps": 50.0,
          "trendSlope": 1.0,
          "trendGrowth": 1.0},
         None),
    ),
    "a_load_over_the_band_of_fewer_starts_no_clock": (
        lambda: decide(MODELLED, PolicyState(), load(98.0), 6, 6, T0),
        (6, "hold", "holding 6: p95 TPOT 20 ms; 98.0 req/s needs 6 replicas by the capacity model", True, True,
         "ok", {"trendAt": "1970-01-01T00:16:40.000Z", "lastReady": 6, "trendRps": 98.0}, None),
    ),
    "a_growing_queue_adds_to_the_rate": (
        lambda: decide(MODELLED, PolicyState(breach_since=T0 - 30), load(80.0, growth=6.0), 3, 3, T0),
        (5, "up",
         "scaled 3 -> 5: 86.0 req/s needs 5 replicas by the capacity model, 3 ready for 30 s (capacity model: 86.0 "
         "req/s needs 5)",
         True, True, "ok",
         {"lastScaleAt": "1970-01-01T00:16:40.000Z",
          "trendAt": "1970-01-01T00:16:40.000Z",
          "lastScaleDirection": "up",
          "lastReady": 3,
          "trendRps": 86.0},
         None),
    ),
    "a_backlog_is_spread_over_a_window_of_at_least_a_second": (
        lambda: decide(replace(MODELLED, window_s=0.5), PolicyState(breach_since=T0 - 30),
                       load(60.0, waiting=2.0, running=30), 3, 3, T0),
        (4, "up",
         "scaled 3 -> 4: 62.0 req/s needs 4 replicas by the capacity model, 3 ready for 30 s (capacity model: 62.0 "
         "req/s needs 4)",
         True, True, "ok",
         {"lastScaleAt": "1970-01-01T00:16:40.000Z",
          "trendAt": "1970-01-01T00:16:40.000Z",
          "lastScaleDirection": "up",
          "lastReady": 3,
          "trendRps": 60.0},
         None),
    ),
    "too_few_samples_still_feed_the_model": (
        lambda: decide(MODELLED, PolicyState(breach_since=T0 - 30), load(90.0, samples=10), 3, 3, T0),
        (5, "up",
         "scaled 3 -> 5: 90.0 req/s needs 5 replicas by the capacity model, 3 ready for 30 s (capacity model: 90.0 "
         "req/s needs 5)",
         None, True, "10 tokens in the window < 200: latency not judged",
         {"lastScaleAt": "1970-01-01T00:16:40.000Z",
          "trendAt": "1970-01-01T00:16:40.000Z",
          "lastScaleDirection": "up",
          "lastReady": 3,
          "trendRps": 90.0},
         None),
    ),
    "below_resolution_still_feeds_the_model": (
        lambda: decide(replace(MODELLED, target_ms=8.0), PolicyState(breach_since=T0 - 30),
                       load(90.0, latency=10.0, below_resolution=True), 3, 3, T0),
        (8, "up",
         "scaled 3 -> 8: 90.0 req/s needs 9 replicas by the capacity model, 3 ready for 30 s (capacity model: 90.0 "
         "req/s needs 10)",
         None, True, "p95 TPOT <= 10 ms is below the histogram's resolution and the 8.0 ms SLO",
         {"lastScaleAt": "1970-01-01T00:16:40.000Z",
          "trendAt": "1970-01-01T00:16:40.000Z",
          "lastScaleDirection": "up",
          "lastReady": 3,
          "trendRps": 90.0},
         None),
    ),
    "a_demand_count_over_the_model_without_a_queue_is_not_used": (
        lambda: decide(MODELLED, PolicyState(breach_since=T0 - 30), load(90.0, running=900), 3, 3, T0),
        (5, "up",
         "scaled 3 -> 5: 90.0 req/s needs 5 replicas by the capacity model, 3 ready for 30 s (capacity model: 90.0 "
         "req/s needs 5)",
         True, True, "ok",
         {"lastScaleAt": "1970-01-01T00:16:40.000Z",
          "trendAt": "1970-01-01T00:16:40.000Z",
          "lastScaleDirection": "up",
          "lastReady": 3,
          "trendRps": 90.0},
         None),
    ),
    "one_waiting_request_sizes_by_demand": (
        lambda: decide(MODELLED, PolicyState(breach_since=T0 - 30), load(90.0, waiting=1.0, running=1000), 3, 3, T0),
        (8, "up",
         "scaled 3 -> 8: 90.0 req/s needs 5 replicas by the capacity model, 3 ready for 30 s (1001 requests in the "
         "system / 126 per replica)",
         True, True, "ok",
         {"lastScaleAt": "1970-01-01T00:16:40.000Z",
          "trendAt": "1970-01-01T00:16:40.000Z",
          "lastScaleDirection": "up",
          "lastReady": 3,
          "trendRps": 90.0},
         None),
    ),
    "an_exact_demand_multiple_is_not_rounded_up": (
        lambda: decide(MODELLED, PolicyState(breach_since=T0 - 30), load(90.0, waiting=6.0, running=750), 3, 3, T0),
        (6, "up",
         "scaled 3 -> 6: 90.0 req/s needs 5 replicas by the capacity model, 3 ready for 30 s (756 requests in the "
         "system / 126 per replica)",
         True, True, "ok",
         {"lastScaleAt": "1970-01-01T00:16:40.000Z",
          "trendAt": "1970-01-01T00:16:40.000Z",
          "lastScaleDirection": "up",
          "lastReady": 3,
          "trendRps": 90.0},
         None),
    ),
    "a_demand_count_equal_to_the_models_names_the_model": (
        lambda: decide(MODELLED, PolicyState(breach_since=T0 - 30), load(90.0, waiting=5.0, running=625), 3, 3, T0),
        (5, "up",
         "scaled 3 -> 5: 90.0 req/s needs 5 replicas by the capacity model, 3 ready for 30 s (capacity model: 90.0 "
         "req/s needs 5)",
         True, True, "ok",
         {"lastScaleAt": "1970-01-01T00:16:40.000Z",
          "trendAt": "1970-01-01T00:16:40.000Z",
          "lastScaleDirection": "up",
          "lastReady": 3,
          "trendRps": 90.0},
         None),
    ),
    "a_demand_count_equal_to_current_is_one_more": (
        lambda: decide(MODELLED, PolicyState(breach_since=T0 - 30),
                       load(25.0, latency=80.0, waiting=4.0, running=500), 4, 4, T0),
        (5, "up", "scaled 4 -> 5: p95 TPOT 80 ms > SLO 50 ms for 30 s (one more replica)", False, True, "ok",
         {"lastScaleAt": "1970-01-01T00:16:40.000Z",
          "trendAt": "1970-01-01T00:16:40.000Z",
          "lastScaleDirection": "up",
          "lastReady": 4,
          "trendRps": 25.0},
         None),
    ),
    "a_learned_factor_shrinks_the_concurrency_per_replica": (
        lambda: decide(MODELLED, PolicyState(load_scale=2.0, breach_since=T0 - 30),
                       load(90.0, waiting=300, running=600), 3, 3, T0),
        (8, "up",
         "scaled 3 -> 8: 92.5 req/s needs 10 replicas by the capacity model, 3 ready for 30 s (900 requests in the "
         "system / 63 per replica)",
         True, True, "ok",
         {"lastScaleAt": "1970-01-01T00:16:40.000Z",
          "trendAt": "1970-01-01T00:16:40.000Z",
          "lastScaleDirection": "up",
          "lastReady": 3,
          "trendRps": 90.0,
          "capacity": {"loadScale": 2.0}},
         None),
    ),
    "one_waiting_request_is_no_contradiction": (
        lambda: decide(MODELLED, PolicyState(breach_since=T0 - 30), load(25.0, latency=80.0, waiting=1.0, running=8),
                       4, 4, T0),
        (5, "up", "scaled 4 -> 5: p95 TPOT 80 ms > SLO 50 ms for 30 s (one more replica)", False, True, "ok",
         {"lastScaleAt": "1970-01-01T00:16:40.000Z",
          "trendAt": "1970-01-01T00:16:40.000Z",
          "lastScaleDirection": "up",
          "lastReady": 4,
          "trendRps": 25.0},
         None),
    ),
    "a_contradicted_breach_on_one_replica": (
        lambda: decide(MODELLED, PolicyState(breach_since=T0 - 60), load(5.0, latency=80.0), 1, 1, T0),
        (1, "hold",
         "holding 1: p95 TPOT 80 ms > SLO 50 ms but the load fits 1 by the capacity model for 60 s (< 120 s)",
         False, True, "ok",
         {"breachSince": "1970-01-01T00:15:40.000Z",
          "trendAt": "1970-01-01T00:16:40.000Z",
          "lastReady": 1,
          "trendRps": 5.0},
         None),
    ),
    "a_draining_queue_the_model_still_needs_blocks_headroom": (
        lambda: decide(MODELLED, PolicyState(headroom_since=T0 - 400), load(90.0, growth=-30.0), 5, 5, T0),
        (5, "hold",
         "holding 5: the load has fit 4 for 400 s, but 90.0 req/s needs 5 replicas by the capacity model (p95 TPOT "
         "20 ms)",
         True, True, "ok",
         {"headroomSince": "1970-01-01T00:10:00.000Z",
          "trendAt": "1970-01-01T00:16:40.000Z",
          "lastReady": 5,
          "trendRps": 60.0},
         None),
    ),
    "headroom_while_a_replica_starts_waits_for_it": (
        lambda: decide(MODELLED, PolicyState(headroom_since=T0 - 400), load(20.0, latency=5.0), 6, 5, T0),
        (6, "hold", "holding 6: the load has fit 5 for 400 s, but replicas starting (p95 TPOT 5.0 ms)", True, True,
         "ok",
         {"headroomSince": "1970-01-01T00:10:00.000Z",
          "trendAt": "1970-01-01T00:16:40.000Z",
          "lastReady": 5,
          "trendRps": 20.0},
         None),
    ),
    "the_model_projects_from_one_ready_replica": (
        lambda: decide(MODELLED, PolicyState(headroom_since=T0 - 400), load(10.0, latency=40.0), 2, 1, T0),
        (2, "hold", "holding 2: the load has fit 1 for 400 s, but replicas starting (p95 TPOT 40 ms)", True, True,
         "ok",
         {"headroomSince": "1970-01-01T00:10:00.000Z",
          "trendAt": "1970-01-01T00:16:40.000Z",
          "lastReady": 1,
          "trendRps": 10.0},
         None),
    ),
    "the_model_projects_fewer_from_the_observed_latency": (
        lambda: decide(MODELLED, PolicyState(headroom_since=T0 - 400), load(5.0, latency=10.0), 2, 2, T0),
        (1, "down",
         "scaled 2 -> 1: p95 TPOT 10 ms <= SLO 50 ms; 5.0 req/s fits 1 by the capacity model, 1 replicas project "
         "~12 ms for 400 s",
         True, True, "ok",
         {"headroomSince": "1970-01-01T00:10:00.000Z",
          "lastScaleAt": "1970-01-01T00:16:40.000Z",
          "trendAt": "1970-01-01T00:16:40.000Z",
          "lastScaleDirection": "down",
          "lastReady": 2,
          "trendRps": 5.0},
         None),
    ),
    "a_short_lead_still_tracks_the_trend": (
        lambda: decide(replace(MODELLED, startup_s=0.5, scale_up_stabilization_s=0.0, trend_span_s=0.0),
                       PolicyState(), load(40.0), 3, 3, T0),
        (3, "hold", "holding 3: p95 TPOT 20 ms; 40.0 req/s needs 3 replicas by the capacity model", True, True,
         "ok", {"trendAt": "1970-01-01T00:16:40.000Z", "lastReady": 3, "trendRps": 40.0}, None),
    ),
    "a_trend_time_without_its_rate_restarts_the_trend": (
        lambda: decide(MODELLED, PolicyState(trend_at=T0 - 60), load(40.0), 3, 3, T0),
        (3, "hold", "holding 3: p95 TPOT 20 ms; 40.0 req/s needs 3 replicas by the capacity model", True, True,
         "ok", {"trendAt": "1970-01-01T00:16:40.000Z", "lastReady": 3, "trendRps": 40.0}, None),
    ),
    "a_trend_sample_taken_now_is_kept": (
        lambda: decide(MODELLED, PolicyState(trend_at=T0, trend_rps=39.0, trend_slope=0.01, trend_growth=0.01),
                       load(40.0), 3, 3, T0),
        (3, "hold", "holding 3: p95 TPOT 20 ms; 40.0 req/s (+1.4 by trend) needs 3 replicas by the capacity model",
         True, True, "ok",
         {"trendAt": "1970-01-01T00:16:40.000Z",
          "lastReady": 3,
          "trendRps": 39.0,
          "trendSlope": 0.01,
          "trendGrowth": 0.01},
         None),
    ),
    "a_trend_sample_half_a_second_old_is_kept": (
        lambda: decide(MODELLED, PolicyState(trend_at=T0 - 0.5, trend_rps=39.0, trend_slope=0.01, trend_growth=0.01),
                       load(40.0), 3, 3, T0),
        (3, "hold", "holding 3: p95 TPOT 20 ms; 40.0 req/s (+1.4 by trend) needs 3 replicas by the capacity model",
         True, True, "ok",
         {"trendAt": "1970-01-01T00:16:39.500Z",
          "lastReady": 3,
          "trendRps": 39.0,
          "trendSlope": 0.01,
          "trendGrowth": 0.01},
         None),
    ),
    "no_arrivals_no_trend": (
        lambda: decide(MODELLED,
                       PolicyState(trend_at=T0 - 30, trend_rps=0.0, trend_growth=0.01, headroom_since=T0 - 400),
                       load(0.0, latency=5.0, running=0), 2, 2, T0),
        (1, "down",
         "scaled 2 -> 1: p95 TPOT 5.0 ms <= SLO 50 ms; 0.0 req/s fits 1 by the capacity model, 1 replicas project "
         "~5.0 ms for 400 s",
         True, True, "ok",
         {"headroomSince": "1970-01-01T00:10:00.000Z",
          "lastScaleAt": "1970-01-01T00:16:40.000Z",
          "trendAt": "1970-01-01T00:16:10.000Z",
          "lastScaleDirection": "down",
          "lastReady": 2,
          "trendRps": 0.0,
          "trendGrowth": 0.01},
         None),
    ),
    "the_percentile_model_sizes_by_the_prefill_steps": (
        lambda: decide(replace(LEARNING, calibration=None), PolicyState(breach_since=T0 - 30), load(60.0), 3, 3, T0),
        (4, "up",
         "scaled 3 -> 4: 60.0 req/s needs 4 replicas by the capacity model, 3 ready for 30 s (capacity model: 60.0 "
         "req/s needs 4)",
         True, True, "ok",
         {"lastScaleAt": "1970-01-01T00:16:40.000Z",
          "trendAt": "1970-01-01T00:16:40.000Z",
          "lastScaleDirection": "up",
          "lastReady": 3,
          "trendRps": 60.0},
         None),
    ),
    "the_percentile_model_projects_headroom": (
        lambda: decide(replace(LEARNING, calibration=None), PolicyState(load_scale=1.5, headroom_since=T0 - 400),
                       load(20.0, latency=10.0), 4, 4, T0),
        (4, "hold",
         "holding 4: the load has fit 3 for 400 s, but 3 replicas would give ~63 ms > 50 ms (p95 TPOT 10 ms)", True,
         True, "ok",
         {"headroomSince": "1970-01-01T00:10:00.000Z",
          "trendAt": "1970-01-01T00:16:40.000Z",
          "lastReady": 4,
          "trendRps": 20.0,
          "capacity": {"loadScale": 1.5}},
         None),
    ),
    "the_percentile_model_judges_the_load_clock": (
        lambda: decide(replace(LEARNING, calibration=None), PolicyState(), load(50.0), 4, 4, T0),
        (4, "hold", "holding 4: headroom for 0 s (p95 TPOT 20 ms); 3 would do in 300 s", True, True, "ok",
         {"headroomSince": "1970-01-01T00:16:40.000Z",
          "trendAt": "1970-01-01T00:16:40.000Z",
          "lastReady": 4,
          "trendRps": 50.0},
         None),
    ),
    "a_learned_factor_without_a_model_is_announced_without_the_capacity": (
        lambda: decide(PLAIN, PolicyState(load_scale=1.2), load(20.0), 3, 3, T0),
        (3, "hold", "holding 3: headroom for 0 s (p95 TPOT 20 ms); 2 would do in 300 s", True, True, "ok",
         {"headroomSince": "1970-01-01T00:16:40.000Z",
          "lastReady": 3,
          "capacity": {"loadScale": 1.2, "announcedScale": 1.2}},
         "learned capacity: the load weighs x1.20 against the plan's capacity model (was x1.00)"),
    ),
    "no_learning_without_a_judged_latency": (
        lambda: decide(LEARNING, PolicyState(), load(15.0, latency=40.0, samples=10), 3, 3, T0),
        (3, "hold", "holding 3: headroom for 0 s (p95 TPOT n/a); 2 would do in 300 s", None, True,
         "10 tokens in the window < 200: latency not judged",
         {"headroomSince": "1970-01-01T00:16:40.000Z",
          "trendAt": "1970-01-01T00:16:40.000Z",
          "lastReady": 3,
          "trendRps": 15.0},
         None),
    ),
    "no_learning_without_a_model": (
        lambda: decide(PLAIN, PolicyState(), load(5.0, latency=30.0, running=20), 3, 3, T0),
        (3, "hold", "holding 3: p95 TPOT 30 ms; 2 replicas would give ~42 ms > 36 ms", True, True, "ok",
         {"lastReady": 3}, None),
    ),
    "one_ready_replica_teaches": (
        lambda: decide(LEARNING, PolicyState(), load(5.0, latency=40.0), 1, 1, T0),
        (1, "hold", "holding 1: p95 TPOT 40 ms; requests in flight", True, True, "ok",
         {"trendAt": "1970-01-01T00:16:40.000Z", "lastReady": 1, "trendRps": 5.0, "capacity": {"loadScale": 1.118}},
         None),
    ),
    "no_learning_within_a_window_of_a_readiness_change": (
        lambda: decide(LEARNING, PolicyState(ready_changed_at=T0 - 60), load(15.0, latency=40.0), 3, 3, T0),
        (3, "hold", "holding 3: headroom for 0 s (p95 TPOT 40 ms); 2 would do in 300 s", True, True, "ok",
         {"headroomSince": "1970-01-01T00:16:40.000Z",
          "readyChangedAt": "1970-01-01T00:15:40.000Z",
          "trendAt": "1970-01-01T00:16:40.000Z",
          "lastReady": 3,
          "trendRps": 15.0},
         None),
    ),
    "learning_a_window_after_a_readiness_change": (
        lambda: decide(LEARNING, PolicyState(ready_changed_at=T0 - 120), load(15.0, latency=40.0), 3, 3, T0),
        (3, "hold", "holding 3: the load has fit 2 for 0 s, but 2 replicas would give ~286 ms > 50 ms (p95 TPOT 40 ms)",
         True, True, "ok",
         {"headroomSince": "1970-01-01T00:16:40.000Z",
          "readyChangedAt": "1970-01-01T00:14:40.000Z",
          "trendAt": "1970-01-01T00:16:40.000Z",
          "lastReady": 3,
          "trendRps": 15.0,
          "capacity": {"loadScale": 1.118}},
         None),
    ),
    "learning_long_after_a_scale_in": (
        lambda: decide(LEARNING, PolicyState(last_scale_at=T0 - 200, last_scale_direction="down"),
                       load(15.0, latency=40.0), 3, 3, T0),
        (3, "hold", "holding 3: the load has fit 2 for 0 s, but 2 replicas would give ~286 ms > 50 ms (p95 TPOT 40 ms)",
         True, True, "ok",
         {"headroomSince": "1970-01-01T00:16:40.000Z",
          "lastScaleAt": "1970-01-01T00:13:20.000Z",
          "trendAt": "1970-01-01T00:16:40.000Z",
          "lastScaleDirection": "down",
          "lastReady": 3,
          "trendRps": 15.0,
          "capacity": {"loadScale": 1.118}},
         None),
    ),
    "learning_a_window_after_a_scale_in": (
        lambda: decide(LEARNING, PolicyState(last_scale_at=T0 - 120, last_scale_direction="down"),
                       load(15.0, latency=40.0), 3, 3, T0),
        (3, "hold", "holding 3: the load has fit 2 for 0 s, but 2 replicas would give ~286 ms > 50 ms (p95 TPOT 40 ms)",
         True, True, "ok",
         {"headroomSince": "1970-01-01T00:16:40.000Z",
          "lastScaleAt": "1970-01-01T00:14:40.000Z",
          "trendAt": "1970-01-01T00:16:40.000Z",
          "lastScaleDirection": "down",
          "lastReady": 3,
          "trendRps": 15.0,
          "capacity": {"loadScale": 1.118}},
         None),
    ),
    "no_batch_limit_while_a_replica_starts": (
        lambda: decide(LEARNING, PolicyState(), load(60.0, latency=45.0, waiting=3.0, running=300), 3, 2, T0),
        (3, "hold", "holding 3: 60.0 req/s needs 4 replicas by the capacity model, 2 ready for 0 s (< 30 s)", True,
         True, "ok",
         {"breachSince": "1970-01-01T00:16:40.000Z",
          "trendAt": "1970-01-01T00:16:40.000Z",
          "lastReady": 2,
          "trendRps": 60.0},
         None),
    ),
    "no_batch_limit_at_zero": (
        lambda: decide(replace(LEARNING, min_replicas=0), PolicyState(),
                       load(0.0, latency=None, waiting=2.0, running=0, samples=0), 0, 0, T0),
        (1, "up", "scaled 0 -> 1: 2 requests waiting", None, True,
         "0 tokens in the window < 200: latency not judged",
         {"lastScaleAt": "1970-01-01T00:16:40.000Z",
          "trendAt": "1970-01-01T00:16:40.000Z",
          "lastScaleDirection": "up",
          "lastReady": 0,
          "trendRps": 0.0},
         None),
    ),
    "one_replica_with_a_queue_learns_its_batch_limit": (
        lambda: decide(LEARNING, PolicyState(), load(20.0, latency=45.0, waiting=1.0, running=90), 1, 1, T0),
        (1, "hold", "holding 1: 20.0 req/s needs 2 replicas by the capacity model, 1 ready for 0 s (< 30 s)", True,
         True, "ok",
         {"breachSince": "1970-01-01T00:16:40.000Z",
          "trendAt": "1970-01-01T00:16:40.000Z",
          "lastReady": 1,
          "trendRps": 20.0,
          "capacity": {"batchCap": 90.0}},
         None),
    ),
    "the_batch_limit_is_at_least_one_sequence": (
        lambda: decide(LEARNING, PolicyState(), load(60.0, latency=45.0, waiting=3.0, running=1), 3, 3, T0),
        (3, "hold", "holding 3: 60.0 req/s needs 16 replicas by the capacity model, 3 ready for 0 s (< 30 s)", True,
         True, "ok",
         {"breachSince": "1970-01-01T00:16:40.000Z",
          "trendAt": "1970-01-01T00:16:40.000Z",
          "lastReady": 3,
          "trendRps": 60.0,
          "capacity": {"batchCap": 1.0}},
         None),
    ),
    "the_percentile_model_sizes_the_step_by_the_prefill_steps": (
        lambda: decide(replace(LEARNING, calibration=None), PolicyState(breach_since=T0 - 30), load(75.0), 3, 3, T0),
        (5, "up",
         "scaled 3 -> 5: 75.0 req/s needs 4 replicas by the capacity model, 3 ready for 30 s (capacity model: 75.0 "
         "req/s needs 5)",
         True, True, "ok",
         {"lastScaleAt": "1970-01-01T00:16:40.000Z",
          "trendAt": "1970-01-01T00:16:40.000Z",
          "lastScaleDirection": "up",
          "lastReady": 3,
          "trendRps": 75.0},
         None),
    ),
    "the_percentile_model_keeps_the_load_clock_off": (
        lambda: decide(replace(LEARNING, calibration=None), PolicyState(), load(75.0), 5, 5, T0),
        (5, "hold", "holding 5: p95 TPOT 20 ms; 75.0 req/s needs 5 replicas by the capacity model", True, True,
         "ok", {"trendAt": "1970-01-01T00:16:40.000Z", "lastReady": 5, "trendRps": 75.0}, None),
    ),
    "a_load_that_fits_fewer_only_past_the_band_starts_no_clock": (
        lambda: decide(MODELLED, PolicyState(), load(96.0), 6, 6, T0),
        (6, "hold", "holding 6: p95 TPOT 20 ms; 96.0 req/s needs 6 replicas by the capacity model", True, True,
         "ok", {"trendAt": "1970-01-01T00:16:40.000Z", "lastReady": 6, "trendRps": 96.0}, None),
    ),
    "one_to_zero_by_the_model_when_nothing_runs": (
        lambda: decide(replace(MODELLED, min_replicas=0), PolicyState(headroom_since=T0 - 300),
                       load(0.5, latency=None, running=0, samples=0), 1, 1, T0),
        (0, "down", "scaled 1 -> 0: p95 TPOT n/a <= SLO 50 ms; no requests for 300 s", None, True,
         "0 tokens in the window < 200: latency not judged",
         {"headroomSince": "1970-01-01T00:11:40.000Z",
          "lastScaleAt": "1970-01-01T00:16:40.000Z",
          "trendAt": "1970-01-01T00:16:40.000Z",
          "lastScaleDirection": "down",
          "lastReady": 1,
          "trendRps": 0.5},
         None),
    ),
    "a_model_count_equal_to_current_is_one_more": (
        lambda: decide(MODELLED, PolicyState(breach_since=T0 - 120), load(65.0, latency=80.0), 4, 4, T0),
        (5, "up",
         "scaled 4 -> 5: p95 TPOT 80 ms > SLO 50 ms but the load fits 4 by the capacity model for 120 s (one more "
         "replica)",
         False, True, "ok",
         {"lastScaleAt": "1970-01-01T00:16:40.000Z",
          "trendAt": "1970-01-01T00:16:40.000Z",
          "lastScaleDirection": "up",
          "lastReady": 4,
          "trendRps": 65.0},
         None),
    ),
    "no_flap_hold_when_it_is_off_even_after_a_scale_in_stamped_ahead": (
        lambda: decide(replace(PLAIN, flap_hold_s=0.0),
                       PolicyState(breach_since=T0 - 30, last_scale_at=T0 + 10, last_scale_direction="down"),
                       obs(61.0, running=150), 2, 2, T0),
        (4, "up", "scaled 2 -> 4: p95 TPOT 61 ms > SLO 40 ms for 30 s (latency above the 5.0 ms floor x1.60)",
         False, True, "ok", {"lastScaleAt": "1970-01-01T00:16:40.000Z", "lastScaleDirection": "up", "lastReady": 2},
         None),
    ),
    "above_max_with_headroom_goes_to_max_not_one_step_down": (
        lambda: decide(PLAIN, PolicyState(headroom_since=T0 - 400), obs(8.0, running=20), 10, 10, T0),
        (8, "down", "scaled 10 -> 8: outside replicas 1..8", True, True, "ok", {"lastReady": 10}, None),
    ),
    "below_min_with_headroom_goes_to_min": (
        lambda: decide(replace(PLAIN, min_replicas=3), PolicyState(headroom_since=T0 - 400), obs(8.0, running=20), 2,
                       2, T0),
        (3, "up", "scaled 2 -> 3: outside replicas 3..8", True, True, "ok", {"lastReady": 2}, None),
    ),
}
# fmt: on


@pytest.mark.parametrize("name", list(CASES))
def test_decide_pins_count_direction_reason_and_stored_state(name: str) -> None:
    call, expected = CASES[name]
    assert outcome(call()) == expected


def test_state_to_dict_pins_every_key_its_time_format_and_rounding() -> None:
    state = PolicyState(breach_since=T0 + 0.1234, headroom_since=T0 + 1, last_scale_at=T0 + 2,
                        last_scale_direction="down", last_ready=3, ready_changed_at=T0 + 3, trend_at=T0 + 4,
                        trend_rps=41.1234567, trend_slope=-0.0123456789, trend_growth=0.00004444449, load_scale=1.23456,
                        step_scale=1.0987654, announced_scale=1.1111, batch_cap=37.77777, hold_floor=4,
                        hold_until=T0 + 900)  # fmt: skip
    data = {
        "breachSince": "1970-01-01T00:16:40.123Z",
        "headroomSince": "1970-01-01T00:16:41.000Z",
        "lastScaleAt": "1970-01-01T00:16:42.000Z",
        "readyChangedAt": "1970-01-01T00:16:43.000Z",
        "trendAt": "1970-01-01T00:16:44.000Z",
        "holdUntil": "1970-01-01T00:31:40.000Z",
        "lastScaleDirection": "down",
        "lastReady": 3,
        "holdFloor": 4,
        "trendRps": 41.123457,
        "trendSlope": -0.012346,
        "trendGrowth": 4.4e-05,
        "capacity": {"loadScale": 1.235, "stepScale": 1.099, "announcedScale": 1.111, "batchCap": 37.778},
    }
    assert state.to_dict() == data
    assert PolicyState.from_dict(data) == PolicyState(
        breach_since=T0 + 0.123, headroom_since=T0 + 1, last_scale_at=T0 + 2, last_scale_direction="down",
        last_ready=3, ready_changed_at=T0 + 3, trend_at=T0 + 4, trend_rps=41.123457, trend_slope=-0.012346,
        trend_growth=4.4e-05, load_scale=1.235, step_scale=1.099, announced_scale=1.111, batch_cap=37.778,
        hold_floor=4, hold_until=T0 + 900,
    )  # fmt: skip
    assert PolicyState().to_dict() == {}


def test_state_from_dict_keeps_each_valid_edge_value() -> None:
    data = {"lastReady": 0, "holdFloor": 1, "lastScaleDirection": "up", "trendRps": 5, "breachSince": T0,
            "readyChangedAt": "2024-01-01T00:00:00Z",
            "capacity": {"loadScale": 3.0, "stepScale": 1.0, "announcedScale": 1.0, "batchCap": 1}}  # fmt: skip
    assert PolicyState.from_dict(data) == PolicyState(
        last_ready=0, hold_floor=1, last_scale_direction="up", trend_rps=5.0, breach_since=T0,
        ready_changed_at=1_704_067_200.0, load_scale=3.0, step_scale=1.0, announced_scale=1.0, batch_cap=1.0,
    )  # fmt: skip


@pytest.mark.parametrize(
    "data",
    [
        [],
        "breachSince",
        {"capacity": [1.5]},
        {"breachSince": "x", "lastScaleAt": float("inf"), "trendAt": "1970-13-01T00:00:00Z", "holdUntil": None},
        {"lastScaleDirection": "sideways", "lastReady": -1, "holdFloor": 0},
        {"lastReady": True, "holdFloor": True, "lastScaleDirection": "hold"},
        {"lastReady": 2.0, "holdFloor": 2.5},
        {"trendRps": float("nan"), "trendSlope": True, "trendGrowth": "0.1"},
        {"capacity": {"loadScale": 3.01, "announcedScale": 0.99, "batchCap": 0.99}},
        {"capacity": {"loadScale": True, "announcedScale": float("inf"), "batchCap": "5"}},
    ],
)
def test_state_from_dict_drops_each_malformed_field(data: Any) -> None:
    assert PolicyState.from_dict(data) == PolicyState()


def test_config_from_plan_pins_targets_windows_limits_and_the_model() -> None:
    from llmop.plan.parse import parse_spec
    from llmop.plan.planner import plan
    from llmop_dev.localcluster.samples import h100_llmdeployment

    body = h100_llmdeployment("x", target_ms=40, slo_window="90s", min_replicas=2, max_replicas=5,
                              autoscaling={"scaleUpStabilization": "45s", "scaleDownStabilization": "10m"})  # fmt: skip
    spec = parse_spec(body["spec"])
    result = plan(spec, "x")  # type: ignore[arg-type]
    assert not isinstance(spec, Exception) and not hasattr(result, "errors")
    config = PolicyConfig.from_plan(result, spec.slo.decode_latency, spec.autoscaling)  # type: ignore[arg-type, union-attr]
    assert (config.target_ms, config.percentile, config.min_replicas, config.max_replicas) == (40.0, 95.0, 2, 5)
    assert (config.scale_up_stabilization_s, config.scale_down_stabilization_s, config.window_s) == (45.0, 600.0, 90.0)
    assert (config.capacity_per_replica, config.startup_s, config.coarse_edge_ms) == (126, 80.0, None)
    assert PolicyConfig.from_plan(replace(result, engine_version="0.11.0"), spec.slo.decode_latency,
                                  spec.autoscaling).coarse_edge_ms == 25.0  # type: ignore[type-var, union-attr]  # fmt: skip
    assert config.decode_floor_ms == pytest.approx(3.911, abs=1e-3)
    assert (config.ttft_target_ms, config.ttft_percentile) == (None, None)
    assert config.capacity_model is not None and config.capacity_model.max_num_seqs == 256
    assert config.capacity_model.kv_cache_tokens == result.kv_cache_tokens  # type: ignore[union-attr]
    assert config.lead_s == 80.0 + 45.0 + 30.0  # start-up, the up window, half the trend span
    ttft = TimeToFirstTokenSLO(percentile=99, targetMs=800)
    with_ttft = PolicyConfig.from_plan(result, spec.slo.decode_latency, spec.autoscaling, ttft)  # type: ignore[arg-type, union-attr]
    assert (with_ttft.ttft_target_ms, with_ttft.ttft_percentile) == (800.0, 99.0)


def test_lead_is_zero_without_a_start_up_and_clamp_bounds_both_ways() -> None:
    assert (MODELLED.lead_s, PLAIN.lead_s) == (140.0, 0.0)
    assert [MODELLED.clamp(n) for n in (-1, 0, 1, 5, 8, 9)] == [1, 1, 1, 5, 8, 8]


@pytest.mark.parametrize(
    ("engine", "version", "target", "edge"),
    [
        ("vllm", "0.11.0", 40.0, 25.0),  # vLLM's default buckets: 25 ms, 50 ms
        ("vllm", "0.11.0", 50.0, None),  # on an edge: read exactly there
        ("vllm", "0.11.0", 50.5, None),  # within 0.5 ms of an edge
        ("vllm", "0.11.0", 50.6, 50.0),
        ("vllm", "0.11.0", 5.0, None),  # below the first edge: no edge below it
    ],
)
def test_coarse_edge_is_the_bucket_edge_below_a_target_inside_a_bucket(
    engine: str, version: str, target: float, edge: float | None
) -> None:
    from llmop.plan.parse import parse_spec
    from llmop.plan.planner import plan
    from llmop_dev.localcluster.samples import h100_llmdeployment

    spec = h100_llmdeployment("x", target_ms=target)["spec"]
    spec.update(engine=engine, engineVersion=version)
    result = plan(parse_spec(spec), "x")  # type: ignore[arg-type]
    assert coarse_edge_ms(result, target) == edge  # type: ignore[arg-type]
    assert coarse_edge_ms(replace(result, engine_version=""), 40.0) is None  # type: ignore[type-var]


def test_state_from_dict_reads_times_from_strings_and_numbers_only() -> None:
    from datetime import UTC, datetime

    assert PolicyState.from_dict({"breachSince": datetime(2024, 1, 1, tzinfo=UTC)}) == PolicyState()
    assert PolicyState.from_dict({"breachSince": "2024-01-01T00:00:00Z"}).breach_since == 1_704_067_200.0


def test_the_capacity_factor_announced_counts_the_step_time_at_the_observed_lengths() -> None:
    from llmop.autoscale.policy import _capacity_factor

    assert _capacity_factor(LEARNING, PolicyState(), load(5.0)) is None  # nothing learned
    assert _capacity_factor(LEARNING, PolicyState(load_scale=1.2), load(5.0)) == 1.2
    # 1024-token prompts: a 25 % slower step costs 2.87x of the capacity inside the band, times the load factor
    assert _capacity_factor(LEARNING, PolicyState(step_scale=1.25, load_scale=1.1), load(5.0)) == pytest.approx(
        3.153474, rel=1e-6
    )
    # 8000-token prompts, twice the step time: 0.76 req/s per replica where the plan says 1.51
    at_8k = replace(load(5.0), mean_prompt_tokens=8000)
    assert _capacity_factor(LEARNING, PolicyState(step_scale=2.0), at_8k) == pytest.approx(2.0, rel=1e-6)
    # without lengths or a model: the two factors multiplied
    no_output = replace(load(5.0), mean_output_tokens=None)
    assert _capacity_factor(LEARNING, PolicyState(step_scale=2.0, load_scale=1.1), no_output) == pytest.approx(2.2)
    no_model = replace(LEARNING, capacity_model=None)
    assert _capacity_factor(no_model, PolicyState(step_scale=2.0, load_scale=1.1), load(5.0)) == pytest.approx(2.2)
    # a step so slow that no load fits the band (10 ms target, 3 x 3.9 ms floor): the largest factor
    tight = replace(LEARNING, target_ms=10.0)
    assert _capacity_factor(tight, PolicyState(step_scale=3.0, load_scale=1.1), load(5.0)) == pytest.approx(3.3)
