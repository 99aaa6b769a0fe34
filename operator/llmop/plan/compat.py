"""Compatibility: does the engine version run this quantization, kernel and dtype on this GPU."""

from __future__ import annotations

from llmop.catalog.engines import ENGINES, Engine, image_build
from llmop.catalog.gpus import GPU, GPUS
from llmop.catalog.quantization import METHODS, EngineRule, Quantization
from llmop.catalog.versions import Version, in_range, parse_version
from llmop.plan.types import Finding


def _other_engines(engine: Engine) -> list[Engine]:
    return [other for other in Engine if other != engine]


def _methods_that_work(engine: Engine, version: Version, gpu: GPU) -> list[str]:
    return [
        method.name.value
        for method in METHODS.values()
        if method.name != Quantization.NONE and _matching_rule(method.rules_for(engine), version, gpu)
    ]


def _matching_rule(rules: tuple[EngineRule, ...], version: Version, gpu: GPU) -> EngineRule | None:
    for rule in rules:
        if not in_range(version, rule.since, rule.until):
            continue
        if gpu.cc < rule.min_cc or (rule.max_cc is not None and gpu.cc > rule.max_cc):
            continue
        return rule
    return None


def _gpus_for(engine: Engine, rules: tuple[EngineRule, ...], version: Version) -> list[str]:
    return [
        gpu.name
        for gpu in GPUS.values()
        if _matching_rule(rules, version, gpu) and image_build(engine, gpu.architecture) is not None
    ]


def resolve_quantization(
    quantization: Quantization, engine: Engine, version: Version, version_text: str, gpu: GPU
) -> EngineRule | Finding:
    """The engine rule that runs this method on this GPU, or a finding that explains what would work."""
    method = METHODS[quantization]
    rules = method.rules_for(engine)
    rule = _matching_rule(rules, version, gpu)
    if rule is not None:
        return rule
    name = ENGINES[engine].display_name
    alternatives = _methods_that_work(engine, version, gpu)
    suggestions = [
        f"engine {other.value}"
        for other in _other_engines(engine)
        if _matching_rule(method.rules_for(other), _pinned(other), gpu)
    ]
    if alternatives:
        suggestions.append("quantization " + "/".join(alternatives))
    hint = f"; use {', or '.join(suggestions)}" if suggestions else ""
    if not rules:
        return Finding("spec.quantization", f"quantization {quantization.value} is not available in {name}{hint}")
    in_version = [r for r in rules if in_range(version, r.since, r.until)]
    if not in_version:
        return Finding(
            "spec.quantization",
            f"quantization {quantization.value} is not available in {name} {version_text} "
            f"({_version_bounds(rules, version)}){hint}",
        )
    floor = min(r.min_cc for r in in_version)
    gpus = _gpus_for(engine, rules, version)
    return Finding(
        "spec.gpu.type",
        f"quantization {quantization.value} on {name} {version_text} needs compute capability "
        f"{floor // 10}.{floor % 10} or newer; {gpu.name} is {gpu.cc_text}. "
        f"GPUs that run it: {', '.join(gpus) or 'none'}{hint}",
    )


def _version_bounds(rules: tuple[EngineRule, ...], version: Version) -> str:
    """Why no rule covers this version: the release that removed or added the method."""
    parts = set()
    for rule in rules:
        if rule.until and not in_range(version, None, rule.until):
            parts.add(f"removed in {rule.until}")
        if rule.since and in_range(version, None, rule.since):
            parts.add(f"added in {rule.since}")
    return ", ".join(sorted(parts))


def _pinned(engine: Engine) -> Version:
    return parse_version(ENGINES[engine].pinned_version)


def engine_gpu_finding(engine: Engine, gpu: GPU) -> Finding | None:
    """Refuse GPUs for which llmop has no engine build (no FlashAttention-capable image, no kernels)."""
    if image_build(engine, gpu.architecture) is not None:
        return None
    builds = [g.name for g in GPUS.values() if image_build(engine, g.architecture)]
    engines = [other.value for other in _other_engines(engine) if image_build(other, gpu.architecture)]
    use = f"Use engine {'/'.join(engines)}, or gpu.type" if engines else "Use gpu.type"
    return Finding(
        "spec.gpu.type",
        f"{ENGINES[engine].display_name} has no build for {gpu.name} ({gpu.architecture.value}, sm{gpu.cc}): "
        f"its images target CUDA 12.4 and sm75-sm90. {use} {'/'.join(builds)}",
    )


def choose_dtype(gpu: GPU) -> str:
    """bfloat16 where the GPU has it (cc >= 8.0), float16 below (vLLM refuses explicit bf16 there)."""
    return "bfloat16" if gpu.bf16 else "float16"
