"""The scaling policy: (config, state, observation, replicas, now) -> Decision. Pure and deterministic."""

from __future__ import annotations

import math
from dataclasses import replace

from llmop.autoscale import calibration
from llmop.autoscale.learning import calibrate, learn_batch_cap
from llmop.autoscale.metrics import Observation, ms_text
from llmop.autoscale.policy_config import PolicyConfig, coarse_edge_ms
from llmop.autoscale.policy_state import Decision, Direction, PolicyState, iso
from llmop.autoscale.reading import PolicyReading, count_text, read, seconds_text, track_trend
from llmop.autoscale.surge import track_surge

__all__ = ["Decision", "Direction", "PolicyConfig", "PolicyState", "coarse_edge_ms", "decide"]


def _hold(
    config: PolicyConfig, state: PolicyState, current: int, reason: str, slo_met: bool | None, available: bool, why: str
) -> Decision:
    desired = config.clamp(current)
    direction: Direction = "hold" if desired == current else ("up" if desired > current else "down")
    if desired != current:
        reason = f"scaled {current} -> {desired}: outside replicas {config.min_replicas}..{config.max_replicas}"
        state = replace(state, last_scale_at=None, breach_since=None, headroom_since=None)
    return Decision(desired, direction, reason, slo_met, available, why, state)


def _up_target(config: PolicyConfig, reading: PolicyReading, ready: int, current: int) -> tuple[int, str]:
    """How many replicas the pressure asks for: the capacity model's count, or proportional to the excess.

    Returns at least one more than `current`; `_estimate` gives the count without that floor."""
    estimate, basis = _estimate(config, reading, ready, current)
    return config.clamp(max(estimate, current + 1)), basis


def _estimate(config: PolicyConfig, reading: PolicyReading, ready: int, current: int) -> tuple[int, str]:
    wants = [0]
    basis = "one more replica"
    share, spent_by = reading.share_on(reading.share_replicas), reading.share_replicas
    if share is not None and share > config.slow_budget:
        # The error budget is a linear gauge of the prefill steps per replica: size by it, at most x`max_share_factor`
        # the ready replicas.
        by_share = math.ceil(min(spent_by * share / config.slow_budget, config.max_share_factor * ready) - 1e-9)
        if by_share > current:
            wants.append(by_share)
            edge = ms_text(reading.slow_edge_ms)
            basis = f"{share:.1%} of tokens above {edge} on {spent_by} replicas, budget {config.slow_budget:.1%}"
    need = reading.need(config, config.band_ms, ahead=True)
    per_replica = reading.concurrency(config)
    if need is not None:
        if need > max(wants) and need > current:
            wants.append(need)
            basis = f"capacity model: {reading.rps_text()} needs {need}"
        if reading.waiting > 0 and per_replica:
            # A queue: what finishes is what the replicas manage, not what arrives. The requests in the system
            # over the concurrency one replica keeps within the SLO size the gap at once.
            by_demand = math.ceil(reading.demand / per_replica - 1e-9)
            if by_demand > max(wants) and by_demand > current:
                wants.append(by_demand)
                basis = f"{reading.demand:.0f} requests in the system / {per_replica:.0f} per replica"
        return max(wants), basis
    if reading.latency is not None and reading.latency > config.target_ms and ready > 0:
        excess = (reading.latency - config.decode_floor_ms) / max(config.target_ms - config.decode_floor_ms, 1e-9)
        by_latency = math.ceil(ready * excess * (1 + config.tolerance) - 1e-9)
        if by_latency > max(wants):
            wants.append(by_latency)
            basis = f"latency above the {ms_text(config.decode_floor_ms)} floor x{excess:.2f}"
    if per_replica:
        by_demand = math.ceil(reading.demand / per_replica - 1e-9)
        if by_demand > max(wants):
            wants.append(by_demand)
            basis = f"{reading.demand:.0f} requests / {per_replica:.0f} per replica"
    return max(wants), basis


def decide(
    config: PolicyConfig, state: PolicyState, obs: Observation, current_replicas: int, ready_replicas: int, now: float
) -> Decision:
    """One tick of the policy (`_decide`), plus a note when the learned capacity moved enough to announce."""
    decision = _decide(config, state, obs, current_replicas, ready_replicas, now)
    learned, settings = decision.state, config.calibration
    scale = _capacity_factor(config, learned, obs)
    if scale is None or settings is None or not calibration.moved(learned.announced_scale, scale, settings):
        return decision
    before = learned.announced_scale or 1.0
    note = f"learned capacity: the load weighs x{scale:.2f} against the plan's capacity model (was x{before:.2f})"
    if learned.step_scale is not None and learned.step_scale != 1.0:
        note += f"; every step takes x{learned.step_scale:.2f} the plan's time"
    if config.capacity_model is not None and obs.mean_prompt_tokens and obs.mean_output_tokens:
        prompt, output = obs.mean_prompt_tokens, obs.mean_output_tokens
        limit = config.band_ms
        percentile = config.model_percentile
        model = config.capacity_model.slowed(learned.step_scale or 1.0)
        serves = calibration.capacity_rps(model, learned.load_scale or 1.0, prompt, output, limit, percentile)
        planned = calibration.capacity_rps(config.capacity_model, 1.0, prompt, output, limit, percentile)
        note += f": one replica serves {serves:.2f} req/s at the observed lengths (plan: {planned:.2f})"
    return replace(decision, state=replace(decision.state, announced_scale=scale), capacity_note=note)


def _capacity_factor(config: PolicyConfig, state: PolicyState, obs: Observation) -> float | None:
    """How much less one replica serves than planned, by what was learned: the load factor, times the capacity the
    learned step time costs at the observed lengths (without them, the step factor itself); None: nothing learned."""
    if state.load_scale is None and state.step_scale is None:
        return None
    factor, step = state.load_scale or 1.0, state.step_scale or 1.0
    if step == 1.0:
        return factor
    model, prompt, output = config.capacity_model, obs.mean_prompt_tokens, obs.mean_output_tokens
    if model is None or not prompt or not output:
        return factor * step
    limit, percentile = config.band_ms, config.model_percentile
    slowed = calibration.capacity_rps(model.slowed(step), 1.0, prompt, output, limit, percentile)
    planned = calibration.capacity_rps(model, 1.0, prompt, output, limit, percentile)
    return factor * planned / slowed if slowed > 0 else factor * calibration.MAX_LOAD_SCALE


def _decide(
    config: PolicyConfig, state: PolicyState, obs: Observation, current_replicas: int, ready_replicas: int, now: float
) -> Decision:
    """One tick of the policy.

    Rules, in order: missing/failed/stale data holds (fail-static); 0 replicas scale to 1 only on waiting
    requests; an SLO below the decode floor holds; pressure (p-quantile above the SLO, or the capacity model
    asking for more than the ready replicas at the offered load plus its sustained trend over the plan's start-up
    delay) held for the up-stabilization window scales up, possibly several replicas (capacity model, latency
    excess over the floor, or demand / capacity); a latency breach that the model and an empty queue contradict
    must outlast a whole SLO window; while replicas are still starting it adds more only if even the replicas
    already coming are too few. Scale-down is one replica per decision: the down-stabilization clock runs while
    the offered load (without the backlog) fits one replica fewer by the capacity model inside the tolerance band
    (without a model: while one fewer projects under SLO x (1 - tolerance)); the step itself also needs nothing
    waiting, every replica ready and the observed latency projecting under the SLO; the next step needs
    `scale_down_step_s`, or only `fast_down_step_s` while the load plus `fast_down_margin` still fits one fewer.
    A probed latency (`obs.source == "probe"`: no traffic to read it from) is reported as the SLO's state and
    lets an idle deployment step down, but never scales up. The result is always clamped to [min, max].
    """
    current, ready = max(current_replicas, 0), max(min(ready_replicas, current_replicas), 0)
    if state.last_ready is not None and ready > state.last_ready:
        # The latency window still holds the time before; within one window the first count before it stands.
        stale = state.window_spans_readiness_change(now, config.window_s)
        before = state.ready_before if stale and state.ready_before is not None else state.last_ready
        state = replace(state, ready_changed_at=now, ready_before=before)
    state = replace(state, last_ready=ready)
    target = config.target_ms
    # 1. Missing, failed or stale data: fail static.
    if obs.error is not None or obs.running is None or obs.waiting is None:
        why = obs.error or "no running/waiting requests series"
        if current == 0:
            return _hold(config, state, current, "holding at 0: no replicas to measure", None, False, why)
        state = replace(state, breach_since=None, headroom_since=None)
        return _hold(config, state, current, f"holding {current}: metrics unavailable ({why})", None, False, why)
    if now - obs.observed_at > config.max_staleness_s:
        why = f"observation is {now - obs.observed_at:.0f} s old"
        state = replace(state, breach_since=None, headroom_since=None)
        return _hold(config, state, current, f"holding {current}: metrics stale ({why})", None, False, why)
    reading, note = read(config, obs)
    state, reading = track_trend(config, state, reading, now)
    state = calibrate(config, state, reading, current, ready, now)
    state = learn_batch_cap(config, state, obs, reading, current, ready)
    reading = replace(
        reading, scale=state.load_scale or 1.0, batch_cap=state.batch_cap, step_scale=state.step_scale or 1.0
    )
    state, surge_rps = track_surge(config, state, obs, now)
    surging = surge_rps is not None and reading.rps is not None and surge_rps > reading.rps
    if surging and surge_rps is not None:
        # The requests in the engine show a rise the rate over its window does not yet: size by them (the rise is
        # above rps, which is at least the arrivals).
        reading = replace(reading, rps=surge_rps, arrivals=surge_rps)
    metrics_reason = "ok" if note == "ok" else note
    slo_met = None if reading.latency is None else reading.latency <= target and not reading.over_edge
    # 2. Scale from zero: only on evidence of waiting requests.
    if current == 0:
        if reading.waiting > 0 and config.max_replicas > 0:
            desired = config.clamp(1)
            reason = f"scaled 0 -> {desired}: {count_text(reading.waiting)} requests waiting"
            return Decision(desired, "up", reason, slo_met, True, metrics_reason, _scaled(state, now, "up"))
        return _hold(config, state, current, "holding at 0: no waiting requests", slo_met, True, metrics_reason)
    # 3. An SLO below the physical floor cannot be chased.
    if target < config.decode_floor_ms:
        reason = (
            f"holding {current}: SLO {ms_text(target)} is below the decode floor of {ms_text(config.decode_floor_ms)}; "
            "more replicas cannot reach it"
        )
        return _hold(config, state, current, reason, False, True, metrics_reason)
    # 4. Pressure: latency above the SLO, or more requests than the capacity model allows on the ready replicas.
    stale_window = state.window_spans_readiness_change(now, config.window_s)
    # A window that still holds the time before the last new replica: its error budget was spent by fewer.
    spent_by = state.ready_before if stale_window and state.ready_before is not None else ready
    reading = replace(reading, share_replicas=spent_by)
    capacity = reading.concurrency(config)
    need = reading.need(config, target, ahead=True)  # the load now, plus its trend over the start-up delay
    if need is not None:
        over_capacity = need > max(ready, 1)
        why_capacity = f"{reading.rps_text()} needs {need} replicas by the capacity model, {ready} ready"
    else:
        over_capacity = capacity is not None and reading.demand > capacity * max(ready, 1)
        why_capacity = f"{reading.demand:.0f} requests > capacity {capacity or 0:.0f} x {max(ready, 1)} ready"
    modelled = need is not None or capacity is not None
    latency_breach = reading.latency is not None and (reading.latency > target or reading.over_edge)
    share_now = reading.share_on(ready)
    if config.share_pressure and share_now is not None and share_now > config.slow_budget and not latency_breach:
        latency_breach = True  # the error budget is nearly spent: the percentile is about to cross the SLO
        above = f"{share_now:.1%} of tokens above {ms_text(reading.slow_edge_ms)}"
        reading = replace(reading, label=f"{reading.label}, {above}")
    if latency_breach and stale_window and modelled and not over_capacity:
        latency_breach = False  # the window still holds the time before the last readiness change
    if latency_breach and reading.probed:
        latency_breach = False  # an idle engine's own latency: more replicas do not lower it (SLOMet reports it)
    if not modelled and reading.latency is None and reading.waiting > 0:
        over_capacity = True  # no capacity model: a queue is the only load signal
        why_capacity = f"{count_text(reading.waiting)} requests waiting"
    elif not over_capacity and reading.waiting >= max(ready, 1) * config.queue_per_replica:
        over_capacity = True  # a queue is the first sign of a spike: the batches are full
        why_capacity = f"{count_text(reading.waiting)} requests waiting on {max(ready, 1)} ready"
    ttft_breach = (
        config.ttft_target_ms is not None
        and obs.ttft_ms is not None
        and obs.ttft_ms > config.ttft_target_ms
        and obs.source != "probe"
        and not (stale_window and reading.waiting <= 0)  # the window still holds the time before new replicas
    )
    if ttft_breach and not over_capacity:
        over_capacity = True
        ttft_name = f"p{config.ttft_percentile or config.percentile:g} TTFT"
        why_capacity = f"{ttft_name} {ms_text(obs.ttft_ms or 0.0)} > SLO {ms_text(config.ttft_target_ms or 0.0)}"
    pressure = latency_breach or over_capacity
    why_up = f"{reading.label} > SLO {ms_text(target)}" if latency_breach else why_capacity
    up_window = config.scale_up_stabilization_s
    if latency_breach and need is not None and not over_capacity and reading.waiting <= 0:
        # The latency says breach, the capacity model and the queue say the load fits: the window may still hold
        # a burst that is over. Act only if the breach outlasts a whole SLO window (then the model is off).
        up_window = max(up_window, config.window_s)
        why_up += f" but the load fits {max(ready, 1)} by the capacity model"
    if surging and need is not None and need > max(ready, 1):
        up_window = 0.0  # a rise the requests in the engine show is no noise in the latency: act at once
        in_system = (obs.running or 0.0) + (obs.waiting or 0.0)
        why_up += f" ({count_text(in_system)} requests in the engines: a rise the request rate does not show yet)"
    fewer = current - 1
    # The down-stabilization clock runs on the offered load: it guards against the load coming back. A backlog
    # (or the latency it causes) blocks the step itself, not the clock: replicas added to drain a queue go once
    # it is drained, if the load has fit fewer replicas for the whole window.
    load_fits = reading.load_fits(config, fewer)
    if pressure:
        since = state.breach_since if state.breach_since is not None else now
        clock = (now if state.headroom_since is None else state.headroom_since) if load_fits else None
        state = replace(state, breach_since=since, headroom_since=clock)
        held = now - since
        wanted, basis = _up_target(config, reading, ready, current)
        if current >= config.max_replicas:
            return _hold(config, state, current, f"holding {current} (max): {why_up}", slo_met, True, metrics_reason)
        if held < up_window:
            reason = f"holding {current}: {why_up} for {seconds_text(held)} (< {seconds_text(up_window)})"
            return _hold(config, state, current, reason, slo_met, True, metrics_reason)
        if ready < current and _estimate(config, reading, ready, current)[0] <= current:
            reason = f"holding {current}: {why_up}; waiting for {current - ready} starting replica(s)"
            return _hold(config, state, current, reason, slo_met, True, metrics_reason)
        reason = f"scaled {current} -> {wanted}: {why_up} for {seconds_text(held)} ({basis})"
        undone = state.last_scale_direction == "down" and state.last_scale_at is not None
        if undone and config.flap_hold_s > 0 and now - (state.last_scale_at or now) < config.flap_hold_s:
            # The last scale-in was undone by pressure: it was one step too far. Hold the restored count.
            state = replace(state, hold_floor=current + 1, hold_until=now + config.flap_hold_s)
            reason += f"; no scale-in below {current + 1} for {seconds_text(config.flap_hold_s)}"
        state = replace(_scaled(state, now, "up"), breach_since=None)
        return Decision(wanted, "up", reason, slo_met, True, metrics_reason, state)
    state = replace(state, breach_since=None)
    if current > config.max_replicas or current < config.min_replicas:
        # Outside [min, max] (the spec's bounds moved): to the bound at once, not one step down with headroom.
        return _hold(config, state, current, "", slo_met, True, metrics_reason)
    # 5. Headroom: would one replica fewer still meet the SLO, by the latency and by the capacity model?
    headroom, why_not = _headroom(config, reading, ready, current, fewer)
    clock = headroom if load_fits is None else load_fits
    if not clock or current <= config.min_replicas or (load_fits is None and ready < current):
        state = replace(state, headroom_since=None)
        detail = why_not if not clock else ("at min" if current <= config.min_replicas else "replicas starting")
        return _hold(
            config, state, current, f"holding {current}: {reading.label}; {detail}", slo_met, True, metrics_reason
        )
    since = state.headroom_since if state.headroom_since is not None else now
    state = replace(state, headroom_since=since)
    held = now - since
    if not headroom or ready < current:
        detail = why_not if not headroom else "replicas starting"
        reason = f"holding {current}: the load has fit {fewer} for {seconds_text(held)}, but {detail} ({reading.label})"
        return _hold(config, state, current, reason, slo_met, True, metrics_reason)
    if state.hold_floor is not None and state.hold_until is not None and now < state.hold_until:
        if fewer < state.hold_floor:
            reason = (
                f"holding {current}: a scale-in below {state.hold_floor} had to be undone; none below it until "
                f"{iso(state.hold_until)} ({reading.label})"
            )
            return _hold(config, state, current, reason, slo_met, True, metrics_reason)
    elif state.hold_floor is not None:
        state = replace(state, hold_floor=None, hold_until=None)
    since_scale = math.inf if state.last_scale_at is None else now - state.last_scale_at
    step_s = config.scale_down_step_s
    if state.last_scale_direction == "down" and reading.load_fits(config, fewer, 1 + config.fast_down_margin):
        step_s = min(step_s, config.fast_down_step_s)  # large headroom: fewer fit even a larger load
    if held < config.scale_down_stabilization_s or since_scale < step_s:
        wait = max(config.scale_down_stabilization_s - held, step_s - since_scale, 0.0)
        headroom_for, wait_for = seconds_text(held), seconds_text(wait)
        reason = f"holding {current}: headroom for {headroom_for} ({reading.label}); {fewer} would do in {wait_for}"
        return _hold(config, state, current, reason, slo_met, True, metrics_reason)
    reason = (
        f"scaled {current} -> {fewer}: {reading.label} <= SLO {ms_text(target)}; {why_not} for {seconds_text(held)}"
    )
    # The headroom clock keeps running: the next step needs headroom still, and a full SLO window after this one.
    state = replace(_scaled(state, now, "down"), headroom_since=since)
    return Decision(fewer, "down", reason, slo_met, True, metrics_reason, state)


def _headroom(config: PolicyConfig, reading: PolicyReading, ready: int, current: int, fewer: int) -> tuple[bool, str]:
    """Projected latency and demand on `fewer` replicas, inside the tolerance band below the SLO."""
    limit = config.band_ms
    if fewer <= 0:
        idle = reading.demand <= 0 and (reading.latency is None or reading.probed)
        return idle, "no requests" if idle else "requests in flight"
    if reading.waiting > 0:
        return False, f"{count_text(reading.waiting)} requests waiting"
    ttft_limit = config.ttft_scale_in_ms
    if ttft_limit is not None and reading.ttft_ms is not None and reading.ttft_ms > ttft_limit:
        return (
            False,
            f"TTFT {ms_text(reading.ttft_ms)} > {ms_text(ttft_limit)} ({2 * config.tolerance:.0%} under its SLO)",
        )
    if reading.over_edge:
        edge = ms_text(config.coarse_edge_ms or 0.0)
        return False, f"more than {100 - config.percentile:g} % of tokens above the {edge} edge"
    share = reading.share_on(fewer)
    if share is not None and share > config.slow_budget:
        edge = ms_text(reading.slow_edge_ms)
        return False, f"{fewer} replicas would put ~{share:.1%} of tokens above {edge} (> {config.slow_budget:.1%})"
    parts: list[str] = []
    need = reading.need(config, limit, ahead=True)
    if need is not None:
        if need > fewer:
            return False, f"{reading.rps_text()} needs {need} replicas by the capacity model"
        parts.append(f"{reading.rps_text()} fits {fewer} by the capacity model")
    if reading.probed:
        parts.append(f"{reading.label} on an idle engine")  # one stream: it says nothing about fewer replicas
    elif reading.latency is not None:
        floor = config.decode_floor_ms
        now_itl, fewer_itl = reading.model_itl(config, max(ready, 1)), reading.model_itl(config, fewer)
        if now_itl and fewer_itl is not None and math.isfinite(now_itl):
            projected = reading.latency * fewer_itl / now_itl  # the model's ratio, scaled by what is observed
        else:
            projected = floor + max(reading.latency - floor, 0.0) * max(ready, 1) / fewer
        # With a capacity model the margin is in its count; the projection through the histogram's coarse
        # buckets only guards against a model that is far off, so it is held to the SLO itself.
        bound = config.target_ms if need is not None else limit
        if projected > bound:
            return False, f"{fewer} replicas would give ~{ms_text(projected)} > {ms_text(bound)}"
        parts.append(f"{fewer} replicas project ~{ms_text(projected)}")
    per_replica = reading.concurrency(config)
    if need is None and per_replica:
        room = per_replica * fewer * (1 - config.tolerance)
        if reading.demand > room:
            return False, f"{reading.demand:.0f} requests > {room:.0f} for {fewer} replicas"
        parts.append(f"{reading.demand:.0f} requests fit {fewer}")
    if not parts:
        return False, "no latency and no capacity model to judge headroom"
    return True, ", ".join(parts)


def _scaled(state: PolicyState, now: float, direction: Direction) -> PolicyState:
    return replace(state, last_scale_at=now, last_scale_direction=direction, breach_since=None, headroom_since=None)
