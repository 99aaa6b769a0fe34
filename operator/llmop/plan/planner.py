"""The planner: Spec -> Plan | PlanErrors. Pure: no cluster, no network, no clock."""

from __future__ import annotations

import re
from collections.abc import Callable

from llmop.api.spec import AUTO, ArchitectureSpec, LLMDeploymentSpec
from llmop.catalog.engines import DEFAULT_IMAGE_REGISTRY, ENGINES, Engine, image_build
from llmop.catalog.gpus import GFD_PRODUCT_LABEL, GPU, GPUS
from llmop.catalog.hf_config import CheckpointInfo, CheckpointLookup, HubFailure
from llmop.catalog.models import MODELS, Architecture, resolve_model
from llmop.catalog.quantization import METHODS, EngineRule, Quantization
from llmop.catalog.versions import parse_version
from llmop.engines import adapter
from llmop.engines.base import ArgContext, AttentionChoice, EngineLaunch
from llmop.plan.checkpoint import hub_architecture, quantization_finding
from llmop.plan.compat import choose_dtype, engine_gpu_finding, resolve_quantization
from llmop.plan.engine_args import check_engine_args
from llmop.plan.latency import DecodeModel
from llmop.plan.memory import AUTO_MIN_SEQUENCES, GIB, TP_CHOICES, MemoryFit, fit, tp_divides_heads
from llmop.plan.suggest import did_you_mean
from llmop.plan.types import Finding, Plan, PlanErrors

# Start-up: engine init and CUDA graph capture, then weights read from the cache volume per GPU.
STARTUP_BASE_SECONDS = 30
LOAD_BYTES_PER_SECOND_PER_GPU = 0.18e9
# Sequences are, on average, half-way to maxModelLen when the SLO is judged.
MEAN_CONTEXT_SHARE = 0.5
MAX_BATCH = 1024
# The engine's Deployment, Service and PodDisruptionBudget are named after the LLMDeployment and its pods carry the
# name as a label value: a Service name is a DNS-1035 label, a label value at most 63 characters.
OBJECT_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
MAX_OBJECT_NAME = 63


def resolve_architecture(spec: LLMDeploymentSpec, checkpoint: CheckpointLookup | None = None) -> Architecture | Finding:
    """The spec's numbers, a catalog key, the catalog model its name resolves to, or the hub's config.json."""
    arch = spec.model.architecture
    if isinstance(arch, ArchitectureSpec):
        return Architecture(
            parameters=arch.parameters,
            layers=arch.layers,
            hidden_size=arch.hidden_size,
            attention_heads=arch.attention_heads,
            kv_heads=arch.kv_heads,
            head_dim=arch.head_dim,
            vocab_size=arch.vocab_size,
            max_position_embeddings=arch.max_position_embeddings,
            tied_embeddings=arch.tied_embeddings,
        )
    if isinstance(arch, str):
        model = MODELS.get(arch.strip().lower())
        if model is None:
            return Finding(
                "spec.model.architecture",
                f"{arch!r} is not a catalog key{did_you_mean(arch, MODELS, ' (did you mean {}?)')}; use one of "
                f"{', '.join(MODELS)} or give the numbers (parameters, layers, hiddenSize, attentionHeads, kvHeads, "
                "headDim, vocabSize, maxPositionEmbeddings)",
            )
        return model.architecture
    model = resolve_model(spec.model.name)
    if model is None:
        return hub_architecture(spec, checkpoint)
    return model.architecture


def _attention(engine: Engine, gpu: GPU, version: tuple[int, int, int]) -> AttentionChoice:
    return adapter(engine).attention(gpu, version)


def _decode_model(gpu: GPU, architecture: Architecture, memory: MemoryFit, tp: int, efficiency: float) -> DecodeModel:
    return DecodeModel(
        gpu=gpu,
        weight_bytes=memory.weight_bytes,
        kv_bytes_per_token=architecture.kv_bytes_per_token(),
        flops_per_token=2 * architecture.parameters,
        layers=architecture.layers,
        tensor_parallel=tp,
        kernel_efficiency=efficiency,
    )


def _choose_tensor_parallel(
    spec: LLMDeploymentSpec,
    gpu: GPU,
    architecture: Architecture,
    fit_for: Callable[[int], MemoryFit],
    efficiency: float,
) -> tuple[int, list[Finding]] | Finding:
    """Explicit count: check it. auto: the smallest TP that fits with room and meets the SLO floor."""
    count = spec.gpu.count
    length = spec.max_model_len
    fits = {tp: fit_for(tp) for tp in TP_CHOICES}
    weights_gib = fits[1].weight_bytes / GIB
    if count != "auto":
        tp = int(count)
        if not tp_divides_heads(architecture, tp):
            return Finding(
                "spec.gpu.count",
                f"{tp} GPUs cannot shard {architecture.attention_heads} attention heads and "
                f"{architecture.kv_heads} KV heads evenly; use "
                f"{'/'.join(str(t) for t in TP_CHOICES if tp_divides_heads(architecture, t))} or auto",
            )
        memory = fit_for(tp)
        if memory.sequences(length) < 1:
            need = _smallest_fitting(fits, length, 1)
            hint = f"use gpu.count {need} or auto" if need else "use a bigger GPU or a smaller quantization"
            return Finding(
                "spec.gpu.count",
                f"{tp} x {gpu.name} cannot hold {weights_gib:.1f} GiB of weights plus the KV cache of one "
                f"{length}-token sequence ({memory.kv_budget_bytes / GIB:.1f} GiB left for KV cache); {hint}, "
                "or lower spec.maxModelLen",
            )
        return tp, []
    candidates = [
        tp
        for tp in TP_CHOICES
        if tp_divides_heads(architecture, tp) and fits[tp].sequences(length) >= AUTO_MIN_SEQUENCES
    ]
    if not candidates:
        largest = max(tp for tp in TP_CHOICES if tp_divides_heads(architecture, tp))
        return Finding(
            "spec.gpu.count",
            f"{weights_gib:.1f} GiB of weights plus KV cache for {AUTO_MIN_SEQUENCES} sequences of {length} tokens "
            f"do not fit on up to {largest} x {gpu.name} ({gpu.memory_gib:.0f} GiB each); use a GPU with more "
            "memory, a 4-bit quantization (awq/gptq), or a smaller spec.maxModelLen",
        )
    slo = spec.slo.decode_latency
    if slo is not None:
        for tp in candidates:
            if _decode_model(gpu, architecture, fits[tp], tp, efficiency).floor_ms() <= slo.target_ms:
                return tp, []
    return candidates[0], []


def _smallest_fitting(fits: dict[int, MemoryFit], length: int, sequences: int) -> int | None:
    return next((tp for tp in TP_CHOICES if fits[tp].sequences(length) >= sequences), None)


def plan(
    spec: LLMDeploymentSpec,
    name: str = "llm",
    image_registry: str = DEFAULT_IMAGE_REGISTRY,
    checkpoint: CheckpointLookup | None = None,
) -> Plan | PlanErrors:
    """Decide engine flags, image, tensor parallelism and latency estimates, or say why it cannot work.
    `checkpoint`: the model's config.json as the shell read it (or why it could not), for models outside the
    catalog without spec.model.architecture."""
    errors: list[Finding] = []
    warnings: list[Finding] = []
    if spec.gpu.type == AUTO or not isinstance(spec.quantization, Quantization):
        field = "spec.gpu.type" if spec.gpu.type == AUTO else "spec.quantization"
        return PlanErrors((Finding(field, "auto is resolved by llmop's chooser (sizing/choose.py) before planning"),))
    if len(name) > MAX_OBJECT_NAME or not OBJECT_NAME.match(name):
        shown = repr(name) if len(name) <= 80 else f"{name[:70]!r}... ({len(name)} characters)"
        errors.append(
            Finding(
                "metadata.name",
                f"{shown} cannot name the engine's Service and label its pods; use at most {MAX_OBJECT_NAME} "
                "lower-case letters, digits and '-', starting with a letter (a DNS-1035 label)",
            )
        )
    engine = spec.engine
    info = ENGINES[engine]
    version_text = (spec.engine_version or info.pinned_version).lstrip("v")
    version = parse_version(version_text)
    if not info.supports(version):
        errors.append(
            Finding(
                "spec.engineVersion",
                f"{info.display_name} {version_text} is not supported; llmop supports {info.display_name} "
                f"{info.oldest_supported} to {info.newest_supported} (default {info.pinned_version})",
            )
        )
    gpu = GPUS[spec.gpu.type]
    architecture = resolve_architecture(spec, checkpoint)
    if isinstance(architecture, Finding):
        errors.append(architecture)
    elif spec.max_model_len > architecture.max_position_embeddings:
        errors.append(
            Finding(
                "spec.maxModelLen",
                f"{spec.max_model_len} is longer than the model's context ({architecture.max_position_embeddings} "
                f"tokens); use at most {architecture.max_position_embeddings}",
            )
        )
    build_finding = engine_gpu_finding(engine, gpu)
    if build_finding:
        errors.append(build_finding)
    rule = resolve_quantization(spec.quantization, engine, version, version_text, gpu)
    if isinstance(rule, Finding):
        errors.append(rule)
    elif isinstance(checkpoint, CheckpointInfo) and not isinstance(architecture, Finding):
        mismatch = quantization_finding(spec, rule, checkpoint)
        if mismatch:
            errors.append(mismatch)
    context = ArgContext(spec.max_model_len, _attention(engine, gpu, version).kernel)
    errors.extend(check_engine_args(engine, spec.engine_args, context, version_text))
    if spec.autoscaling.enabled and spec.replicas.min > spec.replicas.max:  # disabled: min is the count
        errors.append(
            Finding("spec.replicas", f"min {spec.replicas.min} is above max {spec.replicas.max}; set min <= max")
        )
    if errors or isinstance(architecture, Finding) or isinstance(rule, Finding):
        reason = checkpoint.reason if isinstance(checkpoint, HubFailure) and isinstance(architecture, Finding) else None
        return PlanErrors(tuple(errors), tuple(warnings), *([reason] if reason else []))
    known = isinstance(checkpoint, CheckpointInfo)
    return _accepted_plan(spec, name, image_registry, version_text, version, gpu, architecture, rule, warnings, known)


def _accepted_plan(
    spec: LLMDeploymentSpec,
    name: str,
    image_registry: str,
    version_text: str,
    version: tuple[int, int, int],
    gpu: GPU,
    architecture: Architecture,
    rule: EngineRule,
    warnings: list[Finding],
    checkpoint_known: bool = False,
) -> Plan | PlanErrors:
    engine = spec.engine
    info = ENGINES[engine]
    method = METHODS[Quantization(spec.quantization)]
    if rule.warning:
        warnings.append(Finding("spec.quantization", rule.warning))
    if rule.prequantized and method.checkpoint_hint and not checkpoint_known:
        lowered = spec.model.name.lower()
        if not any(hint in lowered for hint in method.checkpoint_hint):
            warnings.append(
                Finding(
                    "spec.model.name",
                    f"quantization {method.name.value} loads a pre-quantized checkpoint; {spec.model.name!r} "
                    f"does not look like one (no {'/'.join(method.checkpoint_hint)} in its name). "
                    "The pod fails at start-up if the checkpoint has no matching quantization_config",
                )
            )
    attention = _attention(engine, gpu, version)
    if attention.note:
        warnings.append(Finding("spec.gpu.type", attention.note))
    dtype = choose_dtype(gpu)
    if not gpu.bf16:
        warnings.append(Finding("spec.gpu.type", f"{gpu.name} has no bfloat16 (needs cc 8.0); serving in float16"))
    utilization = adapter(engine).memory_fraction(version)

    def fit_for(tp: int) -> MemoryFit:
        return fit(architecture, method, gpu, utilization, tp)

    chosen = _choose_tensor_parallel(spec, gpu, architecture, fit_for, method.kernel_efficiency)
    if isinstance(chosen, Finding):
        return PlanErrors((chosen,), tuple(warnings))
    tp, tp_warnings = chosen
    warnings.extend(tp_warnings)
    memory = fit_for(tp)
    model = _decode_model(gpu, architecture, memory, tp, method.kernel_efficiency)
    floor = model.floor_ms()
    slo = spec.slo.decode_latency
    context = spec.max_model_len * MEAN_CONTEXT_SHARE
    kv_limit = max(int(memory.kv_tokens // max(context, 1)), 1)
    concurrency: int | None = None
    step_at_target: float | None = None
    if slo is not None:
        concurrency = model.max_batch_within(slo.target_ms, context, min(kv_limit, MAX_BATCH))
        if floor > slo.target_ms:
            warnings.append(
                Finding(
                    "spec.slo.decodeLatency.targetMs",
                    f"SLO {slo.target_ms:g} ms is below the decode floor of {floor:.1f} ms per token for "
                    f"{spec.model.name} on {tp} x {gpu.name} ({method.name.value}); no number of replicas "
                    "can meet it. Raise the target, quantize, or use more GPUs per replica",
                )
            )
        elif concurrency:
            step_at_target = model.step_ms(concurrency, context)
        resolution = adapter(engine).slo_resolution_warning(slo.target_ms, version)
        if resolution:
            warnings.append(Finding("spec.slo.decodeLatency.targetMs", resolution))
    build = image_build(engine, gpu.architecture)
    assert build is not None  # engine_gpu_finding refused GPUs without a build
    command, args, env = adapter(engine).command(
        EngineLaunch(
            model=spec.model.name,
            revision=spec.model.revision,
            tensor_parallel=tp,
            max_model_len=spec.max_model_len,
            dtype=dtype,
            quantization_flag=rule.flag,
            attention=attention,
            gpu_memory_utilization=utilization,
            engine_args=tuple(spec.engine_args),
            version=version,
        )
    )
    token = spec.model.token_secret_ref
    return Plan(
        name=name,
        engine=engine,
        engine_version=version_text,
        image=build.image(version_text, image_registry),
        gpu_type=gpu.name,
        tensor_parallel=tp,
        command=command,
        args=args + tuple(spec.engine_args),
        env=env,
        dtype=dtype,
        attention_backend=attention.kernel.value,
        quantization=method.name.value,
        quantization_flag=rule.flag,
        model_name=spec.model.name,
        model_revision=spec.model.revision,
        token_secret=(token.name, token.key) if token else None,
        max_model_len=spec.max_model_len,
        port=info.port,
        health_path=info.health_path,
        metrics_path=info.metrics_path,
        node_selector={GFD_PRODUCT_LABEL: gpu.gfd_product},
        weights_gib=memory.weight_bytes / GIB,
        kv_cache_gib=memory.kv_budget_bytes / GIB,
        kv_cache_tokens=memory.kv_tokens,
        memory_per_gpu_gib=memory.usable_bytes_per_gpu / GIB,
        decode_floor_ms=floor,
        step_ms_at_target_concurrency=step_at_target,
        max_concurrency_at_slo=concurrency,
        slo_target_ms=slo.target_ms if slo else None,
        min_replicas=spec.replicas.min,
        max_replicas=max(spec.replicas.max, spec.replicas.min),
        startup_seconds=int(STARTUP_BASE_SECONDS + memory.weight_bytes / tp / LOAD_BYTES_PER_SECOND_PER_GPU),
        decode_model=model,
        mean_context_tokens=context,
        warnings=tuple(warnings),
    )
