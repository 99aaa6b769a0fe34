"""Engine catalog: vLLM and TGI versions, ports, probes, images per GPU architecture, attention kernels."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from llmop.catalog.gpus import GPU, Architecture
from llmop.catalog.versions import Version, in_range, parse_version


class Engine(StrEnum):
    """Inference engines llmop can launch."""

    VLLM = "vllm"
    TGI = "tgi"


@dataclass(frozen=True)
class EngineInfo:
    """What llmop needs to launch and watch one engine."""

    engine: Engine
    display_name: str
    pinned_version: str
    oldest_supported: str
    newest_supported: str
    command: tuple[str, ...]
    port: int
    health_path: str
    metrics_path: str
    image_repository: str

    def supports(self, version: Version) -> bool:
        return parse_version(self.oldest_supported) <= version <= parse_version(self.newest_supported)


# vLLM: image ENTRYPOINT is ["vllm", "serve"]; port 8000 (FrontendArgs.port); GET /health is 200 when the
# engine is alive and 503 on EngineDeadError; /metrics on the same port (engines.md 1.7).
# TGI: the launcher listens on --port (image default PORT=80); /health and /metrics on the same port
# (router/src/server.rs, engines.md 3.5). TGI is in maintenance mode; v3.3.7 is its last release.
ENGINES: dict[Engine, EngineInfo] = {
    Engine.VLLM: EngineInfo(
        engine=Engine.VLLM,
        display_name="vLLM",
        pinned_version="0.33.0",
        oldest_supported="0.11.0",
        newest_supported="0.33.0",
        command=("vllm", "serve"),
        port=8000,
        health_path="/health",
        metrics_path="/metrics",
        image_repository="vllm",
    ),
    Engine.TGI: EngineInfo(
        engine=Engine.TGI,
        display_name="TGI",
        pinned_version="3.3.7",
        oldest_supported="3.0.0",
        newest_supported="3.3.7",
        command=("text-generation-launcher",),
        port=8080,
        health_path="/health",
        metrics_path="/metrics",
        image_repository="tgi",
    ),
}

DEFAULT_IMAGE_REGISTRY = "ghcr.io/llmop"


class AttentionKernel(StrEnum):
    """The attention implementation a plan runs (reported in status and `llmop plan`)."""

    FLASH_ATTENTION_3 = "flash-attention-3"
    FLASH_ATTENTION_2 = "flash-attention-2"
    FLASHINFER = "flashinfer"
    TRITON = "triton"
    FLEX = "flex-attention"
    PAGED = "paged"


@dataclass(frozen=True)
class ImageBuild:
    """One engine image llmop builds per GPU architecture (images/<engine>/Dockerfile build args)."""

    engine: Engine
    architecture: Architecture
    variant: str
    cuda_arch_list: str
    flash_attention: str  # "fa3", "fa2", "fa1", "none": the FlashAttention build in the image

    def image(self, version: str, registry: str = DEFAULT_IMAGE_REGISTRY) -> str:
        return f"{registry}/{ENGINES[self.engine].image_repository}:{version}-{self.variant}"


# FlashAttention builds: vLLM's FA2 is one sm_80 build (runs on sm86/sm89), FA3 is sm_90a only, and
# Blackwell uses FlashInfer by default (cuobjdump of the 0.33.0 wheel, engines.md 4.1). TGI ships FA2
# 2.6.1 for sm80+ and an FA1 fork for sm75, and no FA3 (server/Makefile-flash-att*, engines.md 4.2).
IMAGE_BUILDS: tuple[ImageBuild, ...] = (
    ImageBuild(Engine.VLLM, Architecture.TURING, "sm75", "7.5", "none"),
    ImageBuild(Engine.VLLM, Architecture.AMPERE, "sm80", "8.0 8.6", "fa2"),
    ImageBuild(Engine.VLLM, Architecture.ADA, "sm89", "8.9", "fa2"),
    ImageBuild(Engine.VLLM, Architecture.HOPPER, "sm90", "9.0a", "fa3"),
    ImageBuild(Engine.VLLM, Architecture.BLACKWELL, "sm100", "10.0", "none"),
    ImageBuild(Engine.TGI, Architecture.TURING, "sm75", "7.5", "fa1"),
    ImageBuild(Engine.TGI, Architecture.AMPERE, "sm80", "8.0;8.6", "fa2"),
    ImageBuild(Engine.TGI, Architecture.ADA, "sm89", "8.9", "fa2"),
    ImageBuild(Engine.TGI, Architecture.HOPPER, "sm90", "9.0", "fa2"),
)


def image_build(engine: Engine, architecture: Architecture) -> ImageBuild | None:
    """The image build for this engine and GPU architecture, or None when llmop has none."""
    for build in IMAGE_BUILDS:
        if build.engine == engine and build.architecture == architecture:
            return build
    return None


@dataclass(frozen=True)
class AttentionChoice:
    """The attention kernel for a GPU and how to ask the engine for it."""

    kernel: AttentionKernel
    args: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    note: str | None = None


def vllm_attention(gpu: GPU, version: Version) -> AttentionChoice:
    """vLLM's backend for a dense decoder on this GPU, and the flag or env var for this version.

    0.33 picks the first of FLASH_ATTN, FLASHINFER, TRITON_ATTN that supports the GPU, except FlashInfer
    first on cc 10.x; FLASH_ATTN needs cc >= 8.0 and runs FA3 on sm9x, FA2 otherwise
    (platforms/cuda.py _get_backend_priorities, fa_utils.get_flash_attn_version). 0.11 used
    FlexAttention below cc 8.0. `--attention-backend` exists from 0.13.0; `VLLM_ATTENTION_BACKEND` was
    removed in 0.15.0, so versions before 0.13 get the env var.
    """
    if gpu.cc >= 100:
        kernel, backend = AttentionKernel.FLASHINFER, "FLASHINFER"
    elif gpu.cc >= 90:
        kernel, backend = AttentionKernel.FLASH_ATTENTION_3, "FLASH_ATTN"
    elif gpu.cc >= 80:
        kernel, backend = AttentionKernel.FLASH_ATTENTION_2, "FLASH_ATTN"
    elif in_range(version, None, "0.13.0"):
        kernel, backend = AttentionKernel.FLEX, "FLEX_ATTENTION"
    else:
        kernel, backend = AttentionKernel.TRITON, "TRITON_ATTN"
    note = None
    if gpu.cc < 80:
        note = (
            f"{gpu.name} (cc {gpu.cc_text}) cannot run FlashAttention-2 (needs cc 8.0); "
            f"vLLM uses {backend} instead, with slower prefill"
        )
    if in_range(version, "0.13.0", None):
        return AttentionChoice(kernel, ("--attention-backend", backend), (), note)
    return AttentionChoice(kernel, (), (("VLLM_ATTENTION_BACKEND", backend),), note)


def tgi_attention(gpu: GPU) -> AttentionChoice:
    """TGI's attention for this GPU: FlashInfer decode with FA2 prefill from cc 8.0, paged below.

    The launcher defaults ATTENTION to flashinfer and falls back to paged for cc < 8
    (launcher/src/main.rs resolve_attention); prefix caching is only supported with flashinfer or
    flashdecoding, so paged attention also sets PREFIX_CACHING=0.
    """
    if gpu.cc >= 80:
        return AttentionChoice(AttentionKernel.FLASHINFER, (), (("ATTENTION", "flashinfer"),))
    return AttentionChoice(
        AttentionKernel.PAGED,
        (),
        (("ATTENTION", "paged"), ("PREFIX_CACHING", "0")),
        f"{gpu.name} (cc {gpu.cc_text}) cannot run FlashAttention-2 (needs cc 8.0); "
        "TGI uses paged attention with the FlashAttention-1 prefill build",
    )


def gpu_memory_utilization(engine: Engine, version: Version) -> float:
    """Fraction of GPU memory the engine takes: vLLM 0.9 up to 0.19, 0.92 from 0.20; TGI's 0.90 wiggle room."""
    if engine == Engine.VLLM:
        return 0.92 if in_range(version, "0.20.0", None) else 0.9
    return 0.9
