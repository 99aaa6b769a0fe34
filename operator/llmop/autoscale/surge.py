"""A rise in arrivals seen before the request rate shows it: the requests in the engine by Little's law. Pure."""

from __future__ import annotations

import math
from dataclasses import replace

from llmop.autoscale.metrics import Observation
from llmop.autoscale.policy_config import PolicyConfig
from llmop.autoscale.policy_state import PolicyState

HALF_LIFE_S = 120.0  # how fast the learned time in the system and its spread follow the load
MEMORY_S = 4 * HALF_LIFE_S  # older than this, what was learned is dropped and learned again


def track_surge(
    config: PolicyConfig, state: PolicyState, obs: Observation, now: float
) -> tuple[PolicyState, float | None]:
    """(state with the learned time in the system, the arrival rate the requests in the engine show, or None).

    In a steady state the requests in the engine (running + waiting) are the finished request rate times the mean
    time one spends there (Little's law); that time is learned as a decaying average of their ratio, and the
    count's own variance around rate x time with it (at least Poisson's). A count `surge_z` deviations above what
    the rate explains is a rise that the rate over its window does not show yet: the count over the learned time
    estimates the arrivals, capped at `surge_cap` x the rate (a batch slowed by its own growth keeps requests
    longer, so the count overshoots). No rise is judged until the average has learned for one half-life (after a
    start the engines fill up, and the count outgrows what the first readings learned). None without such a rise,
    without data, or without `surge_z` (off)."""
    rate, running = obs.request_rate, obs.running
    if config.surge_z is None or rate is None or running is None or rate <= 0:
        return state, None
    in_system = running + (obs.waiting or 0.0)
    time_now, before, at = in_system / rate, state.time_in_system_s, state.time_in_system_at
    if before is None or at is None or not 0 <= now - at <= MEMORY_S:
        learned = replace(state, time_in_system_s=time_now, time_in_system_at=now, time_in_system_since=now)
        return replace(learned, in_system_variance=None), None
    weight = 1.0 - 0.5 ** ((now - at) / HALF_LIFE_S)
    expected = rate * before
    deviation = in_system - expected
    spread = max(state.in_system_variance or 0.0, expected, 1.0)
    since = state.time_in_system_since if state.time_in_system_since is not None else now
    variance = spread + (deviation**2 - spread) * weight
    state = replace(state, time_in_system_s=before + (time_now - before) * weight, time_in_system_at=now,
                    time_in_system_since=since, in_system_variance=variance)  # fmt: skip
    if now - since < HALF_LIFE_S or before <= 0 or deviation < config.surge_z * math.sqrt(spread):
        return state, None  # a young average (engines filling up after a start) judges no rise
    return state, min(in_system / before, config.surge_cap * rate)
