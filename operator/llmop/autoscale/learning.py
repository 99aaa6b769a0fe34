"""What the policy learns from each window: the load factor and the batch limit of a replica. Pure."""

from __future__ import annotations

from dataclasses import replace

from llmop.autoscale import calibration
from llmop.autoscale.capacity import CapacityModel
from llmop.autoscale.metrics import Observation
from llmop.autoscale.policy_config import PolicyConfig
from llmop.autoscale.policy_state import PolicyState
from llmop.autoscale.reading import PolicyReading


def calibrate(
    config: PolicyConfig, state: PolicyState, reading: PolicyReading, current: int, ready: int, now: float
) -> PolicyState:
    """Learn the load factor from this window, when the window describes the replicas that are ready now.

    A replica still starting does not serve, so a scale-up's window stays valid until the new replica is ready;
    a scale-in or a readiness change spoils it for one window. A queue on every replica is the batch limit's
    evidence (`learn_batch_cap`), not the latency curve's. A valid window that teaches nothing (near the floor)
    decays the factor toward the plan (`decayed_scale`); there the step-time factor is read first
    (`updated_step_scale`: a floor above the plan's is a slower GPU), and the load factor against the model slowed
    by it."""
    settings, model = config.calibration, config.capacity_model
    if settings is None or model is None or reading.latency is None or reading.probed or reading.rps is None:
        return state
    if ready <= 0 or reading.waiting >= ready:
        return state
    if state.window_spans_readiness_change(now, config.window_s):
        return state  # the window still holds another replica count
    scaled_in = state.last_scale_direction == "down" and state.last_scale_at is not None
    if scaled_in and now - (state.last_scale_at or now) < config.window_s:
        return state
    evidence = calibration.Reading(
        reading.rps / ready, reading.prompt, reading.output, reading.latency, reading.mean_ms
    )
    settings = replace(settings, percentile=config.model_percentile)
    floor = config.decode_floor_ms
    step = calibration.updated_step_scale(state.step_scale, model, evidence, config.target_ms, floor, settings)
    state = replace(state, step_scale=step)
    if step is not None and step != 1.0:  # the load factor is read against the model at the learned step time
        model, floor = model.slowed(step), floor * step
    sample = calibration.load_scale_sample(model, evidence, config.target_ms, floor, settings)
    if config.ttft_learning:
        by_ttft = ttft_sample(config, reading, ready)
        if by_ttft is not None and (sample is None or by_ttft > sample):  # the larger factor, then weight
            sample = by_ttft  # the time to first token binds before the decode latency does
    if sample is None:
        return replace(state, load_scale=calibration.decayed_scale(state.load_scale, settings))
    scale = calibration.updated_scale(state.load_scale, sample[0], sample[1], settings)
    return replace(state, load_scale=scale)


def ttft_sample(config: PolicyConfig, reading: PolicyReading, ready: int) -> tuple[float, float] | None:
    """(factor, weight 1) from a TTFT above its scale-in limit (the objective less twice the tolerance): the
    capacity model (decode latency only) serves more per replica than the first tokens allow. The replicas carry
    the load per replica seen now, so the factor brings the model's capacity down to that load, and further by
    how far the TTFT stands above the limit. None without a TTFT objective, above-limit TTFT or load figures."""
    model = reading.model(config)
    limit = config.ttft_scale_in_ms
    if model is None or limit is None or reading.ttft_ms is None or not reading.rps or ready <= 0:
        return None
    if reading.ttft_ms <= limit:
        return None
    per_replica = reading.rps / ready
    band = config.band_ms
    capacity = calibration.capacity_rps(model, 1.0, reading.prompt, reading.output, band, config.model_percentile)
    return capacity / per_replica * reading.ttft_ms / limit, 1.0


def learn_batch_cap(
    config: PolicyConfig, state: PolicyState, obs: Observation, reading: PolicyReading, current: int, ready: int
) -> PolicyState:
    """The most sequences a replica really runs: while requests queue with a limit in sight (`batches_full`), the
    running ones are at the limit (KV cache or max-num-seqs); running more than the learned limit without a queue
    raises it again."""
    settings, model = config.calibration, config.capacity_model
    if settings is None or model is None or obs.running is None or ready <= 0 or ready != current:
        return state
    per_replica = obs.running / ready
    if reading.waiting >= ready and batches_full(settings, model, obs, per_replica):
        alpha = 1.0 - 0.5 ** (settings.tick_s / settings.half_life_s)
        cap = per_replica if state.batch_cap is None else (1 - alpha) * state.batch_cap + alpha * per_replica
        return replace(state, batch_cap=max(cap, 1.0))
    if state.batch_cap is not None and per_replica > state.batch_cap:
        return replace(state, batch_cap=per_replica)
    return state


def batches_full(
    settings: calibration.CalibrationSettings, model: CapacityModel, obs: Observation, per_replica: float
) -> bool:
    """Whether a queue on every replica meets a batch limit in sight (`CalibrationSettings.batch_full_share`): the
    running sequences at that share of max-num-seqs, or the engine's KV-cache gauge that full (the fullest pod).
    An engine without the gauge (TGI) counts every such queue: its router queues a request until the batch's token
    budget admits it."""
    share = settings.batch_full_share
    if share is None or obs.kv_usage is None:
        return True
    return per_replica >= share * model.max_num_seqs or obs.kv_usage >= share
