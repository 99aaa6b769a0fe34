"""Compare hardware: every engine x GPU x quantization x TP candidate for a spec, ranked by cost per token. Pure."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from llmop.api.spec import GpuSpec, LLMDeploymentSpec
from llmop.autoscale.capacity import DEFAULT_PROMPT_TOKENS, CapacityModel, mean_itl_ms, replicas_for
from llmop.catalog.engines import DEFAULT_IMAGE_REGISTRY, ENGINES, Engine
from llmop.catalog.gpus import GFD_PRODUCT_LABEL, GPU_RESOURCE, GPUS
from llmop.catalog.hf_config import CheckpointLookup
from llmop.catalog.prices import PriceTable
from llmop.catalog.quantization import Quantization
from llmop.plan.memory import TP_CHOICES
from llmop.plan.near import memory_fix
from llmop.plan.planner import plan
from llmop.plan.types import Finding, Plan, PlanErrors

DEFAULT_OUTPUT_TOKENS = 256
MAX_REPLICAS = 1000  # the most replicas a load may need before a candidate counts as unable to carry it
SLO_FIELD = "spec.slo.decodeLatency.targetMs"
# Why a candidate was rejected, from closest to a working plan to farthest (the near-miss order).
NO_SLO = "comparing hardware needs the SLO the candidates must meet: set spec.slo.decodeLatency.targetMs"
KINDS = ("unschedulable", "price", "checkpoint", "capacity", "slo", "memory", "shape", "compat")


@dataclass(frozen=True)
class Workload:
    """The traffic to size for: requests/s (None: each replica at its SLO capacity) and mean lengths."""

    rps: float | None = None
    prompt_tokens: int = DEFAULT_PROMPT_TOKENS
    output_tokens: int = DEFAULT_OUTPUT_TOKENS


@dataclass(frozen=True, order=True)
class Candidate:
    """One combination: GPU type, quantization, GPUs per replica and engine."""

    gpu: str
    quantization: Quantization
    tensor_parallel: int
    engine: Engine

    @property
    def label(self) -> str:
        return f"{self.tensor_parallel} x {self.gpu} {self.quantization.value} {self.engine.value}"

    def to_json(self) -> dict[str, object]:
        return {
            "gpuType": self.gpu,
            "quantization": self.quantization.value,
            "tensorParallel": self.tensor_parallel,
            "engine": self.engine.value,
        }


@dataclass(frozen=True)
class Option:
    """A candidate that meets the SLO, with what it costs at the workload."""

    candidate: Candidate
    plan: Plan
    usd_per_gpu_hour: float
    capacity_rps: float  # what one replica carries with its mean inter-token latency within the SLO
    replicas: int | None  # replicas the workload's rps needs (None without a load)
    usd_per_million_tokens: float  # per million output tokens
    notes: tuple[str, ...] = ()

    @property
    def usd_per_replica_hour(self) -> float:
        return self.candidate.tensor_parallel * self.usd_per_gpu_hour

    @property
    def usd_per_hour(self) -> float | None:
        return None if self.replicas is None else self.replicas * self.usd_per_replica_hour

    def to_json(self) -> dict[str, object]:
        return {
            **self.candidate.to_json(),
            "usdPerMillionOutputTokens": round(self.usd_per_million_tokens, 4),
            "usdPerGpuHour": self.usd_per_gpu_hour,
            "usdPerHour": None if self.usd_per_hour is None else round(self.usd_per_hour, 4),
            "replicas": self.replicas,
            "capacityRpsPerReplica": round(self.capacity_rps, 4),
            "decodeFloorMs": round(self.plan.decode_floor_ms, 2),
            "maxConcurrencyAtSlo": self.plan.max_concurrency_at_slo,
            "startupSeconds": self.plan.startup_seconds,
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class Rejection:
    """Why a candidate cannot be used, and what would change that (`option`: its figures when it meets the SLO)."""

    candidate: Candidate
    kind: str
    reason: str
    fix: str
    usd_per_replica_hour: float | None = None
    option: Option | None = None

    @property
    def closeness(self) -> tuple[int, float, float, Candidate]:
        """Sort key: the kind's place in KINDS, then cost per token, then cost per replica-hour."""
        cost = self.option.usd_per_million_tokens if self.option else math.inf
        hourly = math.inf if self.usd_per_replica_hour is None else self.usd_per_replica_hour
        if self.kind == "memory":  # the most GPUs tried is the closest to fitting
            hourly = -self.candidate.tensor_parallel
        return KINDS.index(self.kind), cost, hourly, self.candidate

    def to_json(self) -> dict[str, object]:
        return {**self.candidate.to_json(), "kind": self.kind, "reason": self.reason, "fix": self.fix}


@dataclass(frozen=True)
class Comparison:
    """Every viable option, cheapest first, and every rejection."""

    options: tuple[Option, ...]
    rejections: tuple[Rejection, ...]
    workload: Workload
    slo_ms: float
    prices: PriceTable

    def representatives(self) -> list[Rejection]:
        """One rejection per engine x GPU x quantization without any viable TP: the closest to working."""
        viable = {_group(option.candidate) for option in self.options}
        best: dict[tuple[str, Quantization, Engine], Rejection] = {}
        for rejection in self.rejections:
            group = _group(rejection.candidate)
            if group in viable:
                continue
            if group not in best or rejection.closeness < best[group].closeness:
                best[group] = rejection
        return sorted(best.values(), key=lambda r: r.closeness)

    def near_miss(self, among: Iterable[Rejection] | None = None, kinds: Iterable[str] = KINDS[:6]) -> Rejection | None:
        """The closest, then cheapest, rejected candidate whose rejection a change of spec or cluster can fix."""
        allowed = set(kinds)
        near = [r for r in (self.rejections if among is None else among) if r.kind in allowed]
        return min(near, key=lambda r: r.closeness, default=None)


def _group(candidate: Candidate) -> tuple[str, Quantization, Engine]:
    return candidate.gpu, candidate.quantization, candidate.engine


def candidate_spec(spec: LLMDeploymentSpec, candidate: Candidate) -> LLMDeploymentSpec:
    """The spec with the candidate's GPU, count, quantization and engine (another engine: its pinned version, no
    engineArgs, which are engine-specific)."""
    same_engine = candidate.engine == spec.engine
    return spec.model_copy(
        update={
            "engine": candidate.engine,
            "engine_version": spec.engine_version if same_engine else None,
            "engine_args": list(spec.engine_args) if same_engine else [],
            "quantization": candidate.quantization,
            "quantization_candidates": None,
            "gpu": GpuSpec(type=candidate.gpu, count=candidate.tensor_parallel),
        }
    )


def capacity_rps(model: CapacityModel, workload: Workload, target_ms: float) -> float:
    """Most requests/s one replica carries with its mean inter-token latency within `target_ms` (bisection)."""
    prompt, output = workload.prompt_tokens, workload.output_tokens

    def within(rps: float) -> bool:
        return mean_itl_ms(model, rps, prompt, output) <= target_ms

    low, high = 0.0, 1.0
    while within(high):
        low, high = high, high * 2
        if high > 1e6:
            return low
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (middle, high) if within(middle) else (low, middle)
    return low


def _tokens_per_hour(rps: float, workload: Workload) -> float:
    return rps * workload.output_tokens * 3600.0


class _Evaluator:
    """Plans and prices one candidate at a time for a spec, SLO, workload and price table."""

    def __init__(
        self,
        spec: LLMDeploymentSpec,
        workload: Workload,
        prices: PriceTable,
        slo_ms: float,
        schedulable: Mapping[str, int] | None,
        require_checkpoint: bool,
        name: str,
        image_registry: str,
        checkpoint: CheckpointLookup | None = None,
    ) -> None:
        self.spec, self.workload, self.prices, self.slo_ms = spec, workload, prices, slo_ms
        self.schedulable, self.require_checkpoint = schedulable, require_checkpoint
        self.name, self.image_registry, self.checkpoint = name, image_registry, checkpoint

    def evaluate(self, candidate: Candidate) -> Option | Rejection:
        price = self.prices.price(candidate.gpu)
        per_gpu = None if price is None else price.for_gpus(candidate.tensor_parallel)
        hourly = None if per_gpu is None else per_gpu * candidate.tensor_parallel
        cspec = candidate_spec(self.spec, candidate)
        result = plan(cspec, self.name, self.image_registry, self.checkpoint)
        if isinstance(result, PlanErrors):
            return self._refused(candidate, cspec, result, hourly)
        floor = result.decode_floor_ms
        if floor > self.slo_ms:
            fix = f"raise {SLO_FIELD} to {math.ceil(floor * 10) / 10:g} or more"
            reason = f"decode floor {floor:.1f} ms is above the {self.slo_ms:g} ms SLO"
            return Rejection(candidate, "slo", reason, fix, hourly)
        model = CapacityModel.from_plan(result)
        capacity = capacity_rps(model, self.workload, self.slo_ms)
        if capacity <= 0:
            reason = (
                f"one sequence at the mean context ({self.workload.prompt_tokens} prompt + "
                f"{self.workload.output_tokens} output tokens) is over the {self.slo_ms:g} ms SLO"
            )
            return Rejection(candidate, "capacity", reason, f"raise {SLO_FIELD} or shorten the prompts", hourly)
        if per_gpu is None:
            reason = f"no price for {candidate.gpu} in the price table"
            return Rejection(candidate, "price", reason, f"give {candidate.gpu}'s price per GPU-hour (--prices)")
        option = self._option(candidate, result, model, capacity, per_gpu)
        if isinstance(option, Rejection):
            return option
        return self._placed(option)

    def _option(
        self, candidate: Candidate, result: Plan, model: CapacityModel, capacity: float, price: float
    ) -> Option | Rejection:
        notes = [str(w.message) for w in result.warnings if w.field == "spec.model.name"][:1]
        workload, tp = self.workload, candidate.tensor_parallel
        replicas: int | None = None
        if workload.rps is None:
            cost = tp * price / _tokens_per_hour(capacity, workload) * 1e6
        else:
            replicas = replicas_for(
                model, workload.rps, workload.prompt_tokens, workload.output_tokens, self.slo_ms, MAX_REPLICAS
            )
            per_replica = workload.rps / replicas
            if mean_itl_ms(model, per_replica, workload.prompt_tokens, workload.output_tokens) > self.slo_ms:
                reason = f"{workload.rps:g} req/s needs more than {MAX_REPLICAS} replicas"
                return Rejection(candidate, "capacity", reason, "a faster candidate", tp * price)
            cost = replicas * tp * price / _tokens_per_hour(workload.rps, workload) * 1e6
            if replicas > self.spec.replicas.max:
                notes.append(f"needs {replicas} replicas; spec.replicas.max is {self.spec.replicas.max}")
        return Option(candidate, result, price, capacity, replicas, cost, tuple(notes))

    def _placed(self, option: Option) -> Option | Rejection:
        candidate = option.candidate
        if self.require_checkpoint and _needs_checkpoint(option.plan):
            method = candidate.quantization.value
            reason = f"{method} loads a pre-quantized checkpoint and spec.model.name does not name one"
            fix = f"set spec.model.name to a {method.upper()} checkpoint of the model"
            return Rejection(candidate, "checkpoint", reason, fix, option.usd_per_replica_hour, option)
        if self.schedulable is None:
            return option
        most = self.schedulable.get(candidate.gpu, 0)
        if most >= candidate.tensor_parallel:
            return option
        product = GPUS[candidate.gpu].gfd_product
        reason = (
            f"no node labelled {GFD_PRODUCT_LABEL}={product} has allocatable {GPU_RESOURCE}"
            if most == 0
            else f"nodes labelled {GFD_PRODUCT_LABEL}={product} have at most {most} allocatable {GPU_RESOURCE}"
        )
        fix = f"add a node labelled {GFD_PRODUCT_LABEL}={product} with {candidate.tensor_parallel} allocatable GPUs"
        return Rejection(candidate, "unschedulable", reason, fix, option.usd_per_replica_hour, option)

    def _refused(
        self, candidate: Candidate, cspec: LLMDeploymentSpec, result: PlanErrors, hourly: float | None
    ) -> Rejection:
        first = result.errors[0]
        if first.field != "spec.gpu.count":
            message = first.message
            fix = message.split("; use ", 1)[1] if "; use " in message else ""
            return Rejection(candidate, "compat", message, fix and f"use {fix}", hourly)
        if "cannot shard" in first.message:
            return Rejection(candidate, "shape", first.message, "another tensor-parallel size", hourly)
        reason, fix = memory_fix(cspec, candidate.tensor_parallel)
        return Rejection(candidate, "memory", reason, fix, hourly)


def _needs_checkpoint(result: Plan) -> bool:
    return any(w.field == "spec.model.name" for w in result.warnings)


def candidates(
    gpus: Iterable[str], quantizations: Iterable[Quantization], engines: Iterable[Engine]
) -> list[Candidate]:
    """Every combination with every tensor-parallel size llmop uses."""
    return [
        Candidate(gpu, quantization, tp, engine)
        for engine in engines
        for gpu in gpus
        for quantization in quantizations
        for tp in TP_CHOICES
    ]


def compare(
    spec: LLMDeploymentSpec,
    workload: Workload,
    prices: PriceTable,
    *,
    gpus: Iterable[str] | None = None,
    quantizations: Iterable[Quantization] | None = None,
    engines: Iterable[Engine] | None = None,
    schedulable: Mapping[str, int] | None = None,
    require_checkpoint: bool = False,
    name: str = "llm",
    image_registry: str = DEFAULT_IMAGE_REGISTRY,
    checkpoint: CheckpointLookup | None = None,
) -> Comparison | PlanErrors:
    """Plan every candidate and rank those that meet the SLO by USD per million output tokens at the workload
    (replicas needed x GPUs per replica x price per GPU-hour; without a load, each replica at its SLO capacity).
    `schedulable` (GPU type -> most allocatable GPUs on one node; None: every type) and `checkpoint` (the model's
    config.json, for a model outside the catalog) come from the shell."""
    slo = spec.slo.decode_latency
    if slo is None:
        return PlanErrors((Finding("spec.slo.decodeLatency", NO_SLO),))
    evaluator = _Evaluator(
        spec, workload, prices, slo.target_ms, schedulable, require_checkpoint, name, image_registry, checkpoint
    )
    engine_order = list(engines) if engines is not None else [spec.engine, *(e for e in ENGINES if e != spec.engine)]
    options: list[Option] = []
    rejections: list[Rejection] = []
    for candidate in candidates(
        list(gpus) if gpus is not None else list(GPUS),
        list(quantizations) if quantizations is not None else list(Quantization),
        engine_order,
    ):
        outcome = evaluator.evaluate(candidate)
        if isinstance(outcome, Option):
            options.append(outcome)
        else:
            rejections.append(outcome)
    options.sort(key=lambda o: (o.usd_per_million_tokens, o.usd_per_replica_hour, o.candidate))
    return Comparison(tuple(options), tuple(rejections), workload, slo.target_ms, prices)
