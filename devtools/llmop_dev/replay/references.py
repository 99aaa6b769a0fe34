"""Reference controllers with perfect knowledge: the reactive frontier (true rate, true capacity) and the
clairvoyant oracle (the future too). They read the simulator's ground truth, never Prometheus."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

from llmop_dev.replay.types import View, Workload

HEADROOMS = (0.0, 0.1, 0.2, 0.3, 0.5)
HOLDS_S = (0.0, 120.0)
LATE_S = 30.0  # the least delay with which a controller reading Prometheus sees a rise (see LateReactiveReference)
LENGTH_STEP = 2 ** (1 / 4)  # mean lengths are rounded to this ratio before the true capacity is looked up

CapacityLookup = Callable[[float, float], float]  # (mean prompt tokens, mean output tokens) -> req/s per replica


def _rounded(tokens: float) -> float:
    """Round to the LENGTH_STEP ladder, so a slowly varying mean re-uses a measured capacity."""
    if tokens <= 1:
        return 1.0
    return round(LENGTH_STEP ** round(math.log(tokens, LENGTH_STEP)), 1)


@dataclass
class Sizer:
    """Replicas the true capacity needs for the true load at time t, with headroom."""

    workload: Workload
    capacity: CapacityLookup
    headroom: float
    min_replicas: int
    max_replicas: int

    def need(self, t: float) -> int:
        rate = self.workload.intensity(t)
        if rate <= 0:
            return self.min_replicas
        prompt = _rounded(self.workload.mean_prompt_tokens(t))
        output = _rounded(self.workload.mean_output_tokens(t))
        per_replica = max(self.capacity(prompt, output), 1e-9)
        needed = math.ceil(rate * (1.0 + self.headroom) / per_replica - 1e-9)
        return max(self.min_replicas, min(self.max_replicas, needed))


class ReactiveReference:
    """Knows the arrival rate of this instant and the per-replica capacity of the simulated GPU (gpu-speed
    included); sizes with `headroom`, scales in only after the need has stayed lower for `hold_s`. It has the
    same start-up delay as everyone."""

    interval_s = 5.0

    def __init__(self, sizer: Sizer, hold_s: float) -> None:
        self.sizer = sizer
        self.hold_s = hold_s
        self.name = f"reactive h={sizer.headroom:g} hold={hold_s:g}s"
        self._lower_since: float | None = None

    def need(self, now: float) -> int:
        return self.sizer.need(now)

    def desired(self, view: View) -> int:
        need = self.need(view.now)
        if need >= view.current:
            self._lower_since = None
            return need
        if self._lower_since is None:
            self._lower_since = view.now
        return need if view.now - self._lower_since >= self.hold_s else view.current


class LateReactiveReference(ReactiveReference):
    """The reactive reference seeing the true load `lag_s` late: what a controller with perfect knowledge of the
    capacity could do when it reads the load from Prometheus. A rise is half seen ~30 s after it at best: vLLM
    counts a request when it finishes (~10 s of decode later), a sample is 7.5 s old on average at a 15 s scrape, and
    rate() over its shortest window (two scrapes, 30 s) shows half a step 15 s in."""

    def __init__(self, sizer: Sizer, hold_s: float, lag_s: float = LATE_S) -> None:
        super().__init__(sizer, hold_s)
        self.lag_s = lag_s
        self.name = f"reactive-late h={sizer.headroom:g} hold={hold_s:g}s lag={lag_s:g}s"

    def need(self, now: float) -> int:
        return self.sizer.need(max(now - self.lag_s, 0.0))


class ClairvoyantOracle:
    """Knows the future: at t it keeps what any moment until t + start-up + one interval will need, so new
    replicas are ready when the load arrives (the ceiling no real controller reaches)."""

    name = "oracle"
    interval_s = 5.0

    def __init__(self, sizer: Sizer, startup_s: float, horizon_step_s: float = 15.0) -> None:
        self.sizer = sizer
        self.startup_s = startup_s
        self.horizon_step_s = horizon_step_s

    def desired(self, view: View) -> int:
        horizon = view.now + self.startup_s + 2 * self.interval_s
        steps = max(int((horizon - view.now) / self.horizon_step_s), 1)
        times = [view.now + i * (horizon - view.now) / steps for i in range(steps + 1)]
        return max(self.sizer.need(t) for t in times)


def frontier(points: list[dict[str, float]], gpu_hours: float) -> float | None:
    """The best SLO-minutes % the frontier reaches at `gpu_hours`: linear between the Pareto points around it
    (running one point's policy part of the time and the other's the rest), flat beyond the dearest, and below
    the cheapest on the line from (0 GPU-hours, 0 %) to it (a mixture of that point and no replicas at all), so a
    policy that saves GPU-hours by missing the SLO is still judged. None without points."""
    pareto = sorted((p["gpu_hours"], p["slo_minutes_pct"]) for p in points)
    best: list[tuple[float, float]] = []
    for hours, slo in pareto:
        if not best or slo > best[-1][1]:
            best.append((hours, slo))
    if not best:
        return None
    if gpu_hours < best[0][0]:
        return best[0][1] * max(gpu_hours, 0.0) / best[0][0] if best[0][0] > 0 else best[0][1]
    for (h0, s0), (h1, s1) in itertools.pairwise(best):
        if h0 <= gpu_hours <= h1:
            return s0 + (s1 - s0) * (gpu_hours - h0) / (h1 - h0) if h1 > h0 else max(s0, s1)
    return best[-1][1]
