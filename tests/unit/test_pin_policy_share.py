"""The error-budget rule of autoscale/policy.py pinned: the share of the window's tokens above the SLO's histogram
edge sizes a scale-up (at most x1.5 the ready replicas), is pressure once past the tolerance band, and guards a
scale-in (projected linearly onto fewer replicas). Expected values are the policy's output at these inputs, each
checked by hand against the arithmetic in its comment."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from test_pin_policy import MODELLED, PLAIN, RISING, T0, load, obs, outcome

from llmop.autoscale.policy import PolicyConfig, PolicyState, decide
from llmop.autoscale.reading import PolicyReading, count_text


def ladder(above_pct: float, target_s: float = 0.04, total: float = 1000.0) -> tuple[tuple[float, float], ...]:
    """Cumulative bucket counts with `above_pct` % of the tokens above the `target_s` edge."""
    below = total * (1 - above_pct / 100)
    return ((target_s - 0.01, below * 0.9), (target_s, below), (target_s + 0.01, below + (total - below) / 2),
            (float("inf"), total))  # fmt: skip


def edges(pairs: list[tuple[float, float]], total: float = 1000.0) -> tuple[tuple[float, float], ...]:
    """Cumulative bucket counts at these edges, then +Inf."""
    return (*pairs, (float("inf"), total))


DOUBLING = replace(PLAIN, max_share_factor=2.0)  # cases that pin the arithmetic of a x2 cap


# fmt: off
CASES: dict[str, tuple[Any, tuple[Any, ...]]] = {
    "the_share_above_the_edge_sizes_the_scale_up": (
        # ceil(2 x 8 % / 4.5 %) = 4; the latency rule alone asks for ceil(2 x (41 - 5) / 35 x 1.1) = 3
        lambda: decide(DOUBLING, PolicyState(breach_since=T0 - 30), obs(41.0, buckets=ladder(8.0)), 2, 2, T0),
        (4,
         "up",
         "scaled 2 -> 4: p95 TPOT 41 ms > SLO 40 ms for 30 s (8.0% of tokens above 40 ms on 2 replicas, budget "
         "4.5%)",
         False,
         True,
         "ok",
         {"lastScaleAt": "1970-01-01T00:16:40.000Z", "lastScaleDirection": "up", "lastReady": 2},
         None),
    ),
    "a_share_sized_scale_up_at_most_doubles": (
        # 50 % / 4.5 % = x11, held to x2: 3 -> 6
        lambda: decide(DOUBLING, PolicyState(breach_since=T0 - 30), obs(41.0, buckets=ladder(50.0)), 3, 3, T0),
        (6,
         "up",
         "scaled 3 -> 6: p95 TPOT 41 ms > SLO 40 ms for 30 s (50.0% of tokens above 40 ms on 3 replicas, "
         "budget 4.5%)",
         False,
         True,
         "ok",
         {"lastScaleAt": "1970-01-01T00:16:40.000Z", "lastScaleDirection": "up", "lastReady": 3},
         None),
    ),
    "a_share_sized_scale_up_is_clamped_to_max": (
        # 6 x 2 = 12, max 8
        lambda: decide(PLAIN, PolicyState(breach_since=T0 - 30), obs(41.0, buckets=ladder(50.0)), 6, 6, T0),
        (8,
         "up",
         "scaled 6 -> 8: p95 TPOT 41 ms > SLO 40 ms for 30 s (50.0% of tokens above 40 ms on 6 replicas, "
         "budget 4.5%)",
         False,
         True,
         "ok",
         {"lastScaleAt": "1970-01-01T00:16:40.000Z", "lastScaleDirection": "up", "lastReady": 6},
         None),
    ),
    "a_spent_budget_is_pressure_before_the_percentile_crosses": (
        # 4.6 % > 4.5 %: the clock starts while p95 is still 39 ms
        lambda: decide(PLAIN, PolicyState(), obs(39.0, buckets=ladder(4.6)), 2, 2, T0),
        (2,
         "hold",
         "holding 2: p95 TPOT 39 ms, 4.6% of tokens above 40 ms > SLO 40 ms for 0 s (< 30 s)",
         True,
         True,
         "ok",
         {"breachSince": "1970-01-01T00:16:40.000Z", "lastReady": 2},
         None),
    ),
    "that_pressure_held_scales_by_the_share": (
        # ceil(2 x 4.6 / 4.5) = 3
        lambda: decide(PLAIN, PolicyState(breach_since=T0 - 30), obs(39.0, buckets=ladder(4.6)), 2, 2, T0),
        (3,
         "up",
         "scaled 2 -> 3: p95 TPOT 39 ms, 4.6% of tokens above 40 ms > SLO 40 ms for 30 s (4.6% of tokens "
         "above 40 ms on 2 replicas, budget 4.5%)",
         True,
         True,
         "ok",
         {"lastScaleAt": "1970-01-01T00:16:40.000Z", "lastScaleDirection": "up", "lastReady": 2},
         None),
    ),
    "a_share_at_the_band_is_no_pressure": (
        # exactly 4.5 %: no pressure; on 1 replica it would be 9 %
        lambda: decide(PLAIN, PolicyState(), obs(39.0, buckets=ladder(4.5)), 2, 2, T0),
        (2,
         "hold",
         "holding 2: p95 TPOT 39 ms; 1 replicas would put ~9.0% of tokens above 40 ms (> 4.5%)",
         True,
         True,
         "ok",
         {"lastReady": 2},
         None),
    ),
    "share_pressure_off": (
        lambda: decide(replace(PLAIN, share_pressure=False), PolicyState(), obs(39.0, buckets=ladder(4.6)), 2, 2, T0),
        (2,
         "hold",
         "holding 2: p95 TPOT 39 ms; 1 replicas would put ~9.2% of tokens above 40 ms (> 4.5%)",
         True,
         True,
         "ok",
         {"lastReady": 2},
         None),
    ),
    "the_share_on_fewer_replicas_blocks_a_scale_in": (
        # 3.2 % x 3 / 2 = 4.8 % > 4.5 %
        lambda: decide(PLAIN, PolicyState(headroom_since=T0 - 400), obs(20.0, running=20, buckets=ladder(3.2)), 3,
                3, T0),
        (3,
         "hold",
         "holding 3: p95 TPOT 20 ms; 2 replicas would put ~4.8% of tokens above 40 ms (> 4.5%)",
         True,
         True,
         "ok",
         {"lastReady": 3},
         None),
    ),
    "a_share_that_fits_fewer_lets_the_scale_in_go": (
        # 2.9 % x 3 / 2 = 4.35 %
        lambda: decide(PLAIN, PolicyState(headroom_since=T0 - 400), obs(20.0, running=20, buckets=ladder(2.9)), 3,
                3, T0),
        (2,
         "down",
         "scaled 3 -> 2: p95 TPOT 20 ms <= SLO 40 ms; 2 replicas project ~28 ms, 20 requests fit 2 for 400 s",
         True,
         True,
         "ok",
         {"headroomSince": "1970-01-01T00:10:00.000Z",
          "lastScaleAt": "1970-01-01T00:16:40.000Z",
          "lastScaleDirection": "down",
          "lastReady": 3},
         None),
    ),
    "share_rule_off_scales_in_as_before": (
        lambda: decide(replace(PLAIN, share_rule=False), PolicyState(headroom_since=T0 - 400), obs(20.0,
                running=20, buckets=ladder(3.2)), 3, 3, T0),
        (2,
         "down",
         "scaled 3 -> 2: p95 TPOT 20 ms <= SLO 40 ms; 2 replicas project ~28 ms, 20 requests fit 2 for 400 s",
         True,
         True,
         "ok",
         {"headroomSince": "1970-01-01T00:10:00.000Z",
          "lastScaleAt": "1970-01-01T00:16:40.000Z",
          "lastScaleDirection": "down",
          "lastReady": 3},
         None),
    ),
    "an_edge_within_half_a_millisecond_of_the_target_is_used": (
        lambda: decide(replace(PLAIN, target_ms=40.4), PolicyState(headroom_since=T0 - 400), obs(20.0, running=20,
                buckets=ladder(3.2)), 3, 3, T0),
        (3,
         "hold",
         "holding 3: p95 TPOT 20 ms; 2 replicas would put ~4.8% of tokens above 40 ms (> 4.5%)",
         True,
         True,
         "ok",
         {"lastReady": 3},
         None),
    ),
    "no_edge_within_half_a_millisecond_no_share": (
        lambda: decide(replace(PLAIN, target_ms=40.6), PolicyState(headroom_since=T0 - 400), obs(20.0, running=20,
                buckets=ladder(3.2)), 3, 3, T0),
        (2,
         "down",
         "scaled 3 -> 2: p95 TPOT 20 ms <= SLO 41 ms; 2 replicas project ~28 ms, 20 requests fit 2 for 400 s",
         True,
         True,
         "ok",
         {"headroomSince": "1970-01-01T00:10:00.000Z",
          "lastScaleAt": "1970-01-01T00:16:40.000Z",
          "lastScaleDirection": "down",
          "lastReady": 3},
         None),
    ),
    "a_probe_reading_has_no_share": (
        lambda: decide(PLAIN, PolicyState(headroom_since=T0 - 400), obs(20.0, running=0, buckets=ladder(3.2),
                source="probe"), 3, 3, T0),
        (2,
         "down",
         "scaled 3 -> 2: probe TPOT 20 ms <= SLO 40 ms; probe TPOT 20 ms on an idle engine, 0 requests fit "
         "2 for 400 s",
         True,
         True,
         "ok",
         {"headroomSince": "1970-01-01T00:10:00.000Z",
          "lastScaleAt": "1970-01-01T00:16:40.000Z",
          "lastScaleDirection": "down",
          "lastReady": 3},
         None),
    ),
    "with_the_model_the_share_guards_the_scale_in": (
        # the model says 2 fit; 3.2 % x 3 / 2 = 4.8 % says no
        lambda: decide(MODELLED, PolicyState(headroom_since=T0 - 400), load(20.0, latency=30.0, buckets=ladder(3.2,
                0.05)), 3, 3, T0),
        (3,
         "hold",
         "holding 3: the load has fit 2 for 400 s, but 2 replicas would put ~4.8% of tokens above 50 ms (> "
         "4.5%) (p95 TPOT 30 ms)",
         True,
         True,
         "ok",
         {"headroomSince": "1970-01-01T00:10:00.000Z",
          "trendAt": "1970-01-01T00:16:40.000Z",
          "lastReady": 3,
          "trendRps": 20.0},
         None),
    ),
    "with_the_model_the_share_sizes_past_it": (
        # the model says 2 fit; 12 % / 4.5 % held to x2
        lambda: decide(replace(MODELLED, max_share_factor=2.0), PolicyState(breach_since=T0 - 200),
                       load(20.0, latency=52.0, buckets=ladder(12.0, 0.05)), 2, 2, T0),
        (4,
         "up",
         "scaled 2 -> 4: p95 TPOT 52 ms > SLO 50 ms but the load fits 2 by the capacity model for 200 s "
         "(12.0% of tokens above 50 ms on 2 replicas, budget 4.5%)",
         False,
         True,
         "ok",
         {"lastScaleAt": "1970-01-01T00:16:40.000Z",
          "trendAt": "1970-01-01T00:16:40.000Z",
          "lastScaleDirection": "up",
          "lastReady": 2,
          "trendRps": 20.0},
         None),
    ),
    "a_stale_window_is_spent_by_the_replicas_before_the_new_one": (
        # 6 % spent by 2 is 4 % on the 3 ready now: no pressure; on 2 it would be 6 %
        lambda: decide(PLAIN, PolicyState(last_ready=3, ready_before=2, ready_changed_at=T0 - 60, breach_since=T0 - 30),
                       obs(39.0, buckets=ladder(6.0)), 3, 3, T0),
        (3, "hold", "holding 3: p95 TPOT 39 ms; 2 replicas would put ~6.0% of tokens above 40 ms (> 4.5%)", True,
         True, "ok", {"readyChangedAt": "1970-01-01T00:15:40.000Z", "lastReady": 3, "readyBefore": 2}, None),
    ),
    "a_stale_window_sizes_from_the_replicas_that_spent_it": (
        # a queue on every replica; ceil(2 x 10 / 4.5) = 5 (by the 3 ready it would be 6)
        lambda: decide(PLAIN, PolicyState(last_ready=3, ready_before=2, ready_changed_at=T0 - 60, breach_since=T0 - 30),
                       obs(40.5, waiting=3, buckets=ladder(10.0)), 3, 3, T0),
        (5, "up",
         "scaled 3 -> 5: 3 requests waiting on 3 ready for 30 s (10.0% of tokens above 40 ms on 2 replicas, budget "
         "4.5%)",
         False, True, "ok",
         {"lastScaleAt": "1970-01-01T00:16:40.000Z", "readyChangedAt": "1970-01-01T00:15:40.000Z",
          "lastScaleDirection": "up", "lastReady": 3, "readyBefore": 2},
         None),
    ),
    "a_second_new_replica_within_the_window_keeps_the_first_count": (
        lambda: decide(PLAIN, PolicyState(last_ready=3, ready_before=2, ready_changed_at=T0 - 60),
                       obs(20.0, running=60), 4, 4, T0),
        (4, "hold", "holding 4: headroom for 0 s (p95 TPOT 20 ms); 3 would do in 300 s", True, True, "ok",
         {"headroomSince": "1970-01-01T00:16:40.000Z", "readyChangedAt": "1970-01-01T00:16:40.000Z",
          "lastReady": 4, "readyBefore": 2},
         None),
    ),
    "a_new_replica_after_the_window_starts_from_the_last_count": (
        lambda: decide(PLAIN, PolicyState(last_ready=3, ready_before=2, ready_changed_at=T0 - 130),
                       obs(20.0, running=60), 4, 4, T0),
        (4, "hold", "holding 4: headroom for 0 s (p95 TPOT 20 ms); 3 would do in 300 s", True, True, "ok",
         {"headroomSince": "1970-01-01T00:16:40.000Z", "readyChangedAt": "1970-01-01T00:16:40.000Z",
          "lastReady": 4, "readyBefore": 3},
         None),
    ),
    "the_share_is_projected_with_the_load_trend": (
        # 3.8 % x (50 + 12.5) / 50 = 4.75 % > 4.5 %; ceil(4 x 4.75 / 4.5) = 5
        lambda: decide(replace(MODELLED, startup_s=80.0), replace(RISING, breach_since=T0 - 120),
                       load(50.0, latency=40.0, buckets=ladder(3.8, 0.05)), 4, 4, T0),
        (5, "up",
         "scaled 4 -> 5: p95 TPOT 40 ms, 4.8% of tokens above 50 ms > SLO 50 ms but the load fits 4 by the capacity "
         "model for 120 s (4.8% of tokens above 50 ms on 4 replicas, budget 4.5%)",
         True, True, "ok",
         {"lastScaleAt": "1970-01-01T00:16:40.000Z", "trendAt": "1970-01-01T00:15:41.000Z",
          "lastScaleDirection": "up", "lastReady": 4, "trendRps": 50.0, "trendSlope": 1.0, "trendGrowth": 1.0},
         None),
    ),
    "a_coarse_histogram_has_no_error_budget_gauge": (
        # 4.8 % above an edge at or below the target: tokens that met it; within the SLO's 5 %, no pressure
        lambda: decide(replace(PLAIN, coarse_edge_ms=40.0), PolicyState(breach_since=T0 - 30),
                       obs(39.0, buckets=ladder(4.8)), 2, 2, T0),
        (2, "hold", "holding 2: p95 TPOT 39 ms; 1 replicas would give ~73 ms > 36 ms", True, True, "ok",
         {"lastReady": 2}, None),
    ),
    "equal_counts_keep_the_share_basis": (
        # the share and the latency rule both ask for 4: the first basis stands
        lambda: decide(DOUBLING, PolicyState(breach_since=T0 - 30), obs(55.0, buckets=ladder(8.0)), 2, 2, T0),
        (4,
         "up",
         "scaled 2 -> 4: p95 TPOT 55 ms > SLO 40 ms for 30 s (8.0% of tokens above 40 ms on 2 replicas, "
         "budget 4.5%)",
         False,
         True,
         "ok",
         {"lastScaleAt": "1970-01-01T00:16:40.000Z", "lastScaleDirection": "up", "lastReady": 2},
         None),
    ),
    "stale_share_equal_to_current": (
        # ceil(2 x 6 / 4.5) = 3 = current: not a want of its own, the demand's basis stands
        lambda: decide(PLAIN, PolicyState(last_ready=3, ready_before=2, ready_changed_at=T0 - 60, breach_since=T0 - 30),
                       obs(30.0, waiting=3, buckets=ladder(6.0)), 3, 3, T0),
        (4,
         "up",
         "scaled 3 -> 4: 3 requests waiting on 3 ready for 30 s (53 requests / 100 per replica)",
         True,
         True,
         "ok",
         {"lastScaleAt": "1970-01-01T00:16:40.000Z",
          "readyChangedAt": "1970-01-01T00:15:40.000Z",
          "lastScaleDirection": "up",
          "lastReady": 3,
          "readyBefore": 2},
         None),
    ),
    "window_exactly_passed": (
        # 120 s after the last new replica the window holds only the 3 ready then
        lambda: decide(PLAIN, PolicyState(last_ready=3, ready_before=2, ready_changed_at=T0 - 120),
                       obs(20.0, running=60), 4, 4, T0),
        (4,
         "hold",
         "holding 4: headroom for 0 s (p95 TPOT 20 ms); 3 would do in 300 s",
         True,
         True,
         "ok",
         {"headroomSince": "1970-01-01T00:16:40.000Z",
          "readyChangedAt": "1970-01-01T00:16:40.000Z",
          "lastReady": 4,
          "readyBefore": 3},
         None),
    ),
    "ready_before_after_window_is_not_used": (
        # the window no longer holds the 2: 6 % spent by the 3 ready is pressure
        lambda: decide(PLAIN,
                       PolicyState(last_ready=3, ready_before=2, ready_changed_at=T0 - 200, breach_since=T0 - 30),
                       obs(39.0, buckets=ladder(6.0)), 3, 3, T0),
        (4,
         "up",
         "scaled 3 -> 4: p95 TPOT 39 ms, 6.0% of tokens above 40 ms > SLO 40 ms for 30 s (6.0% of tokens "
         "above 40 ms on 3 replicas, budget 4.5%)",
         True,
         True,
         "ok",
         {"lastScaleAt": "1970-01-01T00:16:40.000Z",
          "readyChangedAt": "1970-01-01T00:13:20.000Z",
          "lastScaleDirection": "up",
          "lastReady": 3,
          "readyBefore": 2},
         None),
    ),
    "share_exactly_at_budget_lets_scale_in": (
        # p50, 50 % band: budget 0.25 exactly; 12.5 % x 2 / 1 = 25 % is not above it
        lambda: decide(replace(PLAIN, percentile=50, tolerance=0.5), PolicyState(headroom_since=T0 - 400),
                       obs(10.0, running=20, buckets=ladder(12.5)), 2, 2, T0),
        (1,
         "down",
         "scaled 2 -> 1: p50 TPOT 10 ms <= SLO 40 ms; 1 replicas project ~15 ms, 20 requests fit 1 for 400 s",
         True,
         True,
         "ok",
         {"headroomSince": "1970-01-01T00:10:00.000Z",
          "lastScaleAt": "1970-01-01T00:16:40.000Z",
          "lastScaleDirection": "down",
          "lastReady": 2},
         None),
    ),
    "exactly_min_samples_without_quantile": (
        lambda: decide(PLAIN, PolicyState(), obs(None, running=10, samples=200), 2, 2, T0),
        (2,
         "hold",
         "holding 2: headroom for 0 s (p95 TPOT n/a); 1 would do in 300 s",
         None,
         True,
         "no p95 TPOT in the window (200 tokens): latency not judged",
         {"headroomSince": "1970-01-01T00:16:40.000Z", "lastReady": 2},
         None),
    ),
    "nearest_of_two_edges": (
        # 39.8 ms (10 % above) and 40.2 ms (2 %) are both within 0.5 ms of 40.2: the nearer counts
        lambda: decide(replace(PLAIN, target_ms=40.2), PolicyState(headroom_since=T0 - 400),
                       obs(20.0, running=20, buckets=edges([(0.0398, 900.0), (0.0402, 980.0)])), 3, 3, T0),
        (2,
         "down",
         "scaled 3 -> 2: p95 TPOT 20 ms <= SLO 40 ms; 2 replicas project ~28 ms, 20 requests fit 2 for 400 s",
         True,
         True,
         "ok",
         {"headroomSince": "1970-01-01T00:10:00.000Z",
          "lastScaleAt": "1970-01-01T00:16:40.000Z",
          "lastScaleDirection": "down",
          "lastReady": 3},
         None),
    ),
    "edge_half_ms_away": (
        # 40 ms is exactly 0.5 ms from a 40.5 ms target: it counts
        lambda: decide(replace(PLAIN, target_ms=40.5), PolicyState(headroom_since=T0 - 400),
                       obs(20.0, running=20, buckets=ladder(3.2)), 3, 3, T0),
        (3,
         "hold",
         "holding 3: p95 TPOT 20 ms; 2 replicas would put ~4.8% of tokens above 40 ms (> 4.5%)",
         True,
         True,
         "ok",
         {"lastReady": 3},
         None),
    ),
    "long_target_edges": (
        # at 600 ms, 599.7 (10 %) and 600.1 (3.2 %) are within 0.5 ms: 600.1 is nearer
        lambda: decide(replace(PLAIN, target_ms=600.0), PolicyState(headroom_since=T0 - 400),
                       obs(200.0, running=20, buckets=edges([(0.5997, 900.0), (0.6001, 968.0)])), 3, 3, T0),
        (3,
         "hold",
         "holding 3: p95 TPOT 200 ms; 2 replicas would put ~4.8% of tokens above 600 ms (> 4.5%)",
         True,
         True,
         "ok",
         {"lastReady": 3},
         None),
    ),
    "the_model_asking_as_many_as_the_share_keeps_the_share_basis": (
        # ceil(2 x 6 / 4.5) = 3; the model's count for 50 req/s within 45 ms is 3 too
        lambda: decide(MODELLED, PolicyState(breach_since=T0 - 200),
                       load(50.0, latency=52.0, buckets=ladder(6.0, 0.05)), 2, 2, T0),
        (3, "up",
         "scaled 2 -> 3: p95 TPOT 52 ms > SLO 50 ms for 200 s (6.0% of tokens above 50 ms on 2 replicas, budget "
         "4.5%)",
         False, True, "ok",
         {"lastScaleAt": "1970-01-01T00:16:40.000Z", "trendAt": "1970-01-01T00:16:40.000Z",
          "lastScaleDirection": "up", "lastReady": 2, "trendRps": 50.0},
         None),
    ),
    "the_nearer_edge_counts_when_it_is_the_lower_one": (
        # 40.1 ms (10 % above, 0.1 ms away) and 40.4 ms (2 %, 0.2 ms away) for a 40.2 ms target: 10 % is pressure
        lambda: decide(replace(PLAIN, target_ms=40.2), PolicyState(headroom_since=T0 - 400),
                       obs(20.0, running=20, buckets=edges([(0.0401, 900.0), (0.0404, 980.0)])), 3, 3, T0),
        (3, "hold", "holding 3: p95 TPOT 20 ms, 10.0% of tokens above 40 ms > SLO 40 ms for 0 s (< 30 s)", True, True,
         "ok", {"breachSince": "1970-01-01T00:16:40.000Z", "lastReady": 3}, None),
    ),
    "the_default_cap_adds_at_most_half_the_ready_replicas": (
        # 50 % / 4.5 % = x11, held to x1.5: ceil(3 x 1.5) = 5
        lambda: decide(PLAIN, PolicyState(breach_since=T0 - 30), obs(41.0, buckets=ladder(50.0)), 3, 3, T0),
        (5, "up",
         "scaled 3 -> 5: p95 TPOT 41 ms > SLO 40 ms for 30 s (50.0% of tokens above 40 ms on 3 replicas, budget "
         "4.5%)",
         False, True, "ok", {"lastScaleAt": "1970-01-01T00:16:40.000Z", "lastScaleDirection": "up", "lastReady": 3},
         None),
    ),
}
# fmt: on


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_share_rule_pins_count_direction_reason_and_state(name: str) -> None:
    call, expected = CASES[name]
    assert outcome(call()) == expected


def test_the_budget_is_the_percentiles_tail_inside_the_tolerance_band() -> None:
    assert PLAIN.slow_budget == pytest.approx(0.045, abs=1e-15)
    tight = PolicyConfig(target_ms=40.0, percentile=99, min_replicas=1, max_replicas=8, tolerance=0.2)
    assert tight.slow_budget == pytest.approx(0.008, abs=1e-15)


@pytest.mark.parametrize(("stored", "expected"), [(2, 2), (0, 0), (-1, None), (True, None), ("2", None), (2.0, None)])
def test_ready_before_is_read_back_only_as_a_count(stored: Any, expected: int | None) -> None:
    assert PolicyState.from_dict({"readyBefore": stored}).ready_before == expected
    assert PolicyState(ready_before=3).to_dict() == {"readyBefore": 3}


def test_the_share_is_projected_only_with_a_judged_latency_and_replicas_that_spent_it() -> None:
    spent = PolicyReading(30.0, "p95 TPOT 30 ms", 10.0, 0.0, slow_share=0.06, share_replicas=2)
    assert spent.share_on(3) == pytest.approx(0.04, abs=1e-15)
    assert replace(spent, share_replicas=1).share_on(2) == pytest.approx(0.03, abs=1e-15)
    assert replace(spent, share_replicas=0).share_on(2) is None
    assert spent.share_on(0) is None
    assert replace(spent, probed=True).share_on(2) is None
    assert replace(spent, latency=None).share_on(2) is None
    assert replace(spent, slow_share=None).share_on(2) is None
    assert replace(spent, rps=10.0, trend=2.5).share_on(2) == pytest.approx(0.075, abs=1e-15)


@pytest.mark.parametrize(("count", "text"), [(0.05, "0.1"), (0.5, "0.5"), (2.0, "2"), (2.96, "3"), (3.04, "3")])
def test_a_request_count_is_said_as_read(count: float, text: str) -> None:
    assert count_text(count) == text
