"""Engine catalog rows: vLLM and TGI versions, ports, probes and images per GPU architecture (the rest of what
llmop knows about each engine lives in llmop/engines/)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from llmop.catalog.gpus import GpuArchitecture
from llmop.catalog.versions import Version, parse_version


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


@dataclass(frozen=True)
class ImageBuild:
    """One engine image llmop builds per GPU architecture (images/<engine>/Dockerfile build args)."""

    engine: Engine
    architecture: GpuArchitecture
    variant: str
    cuda_arch_list: str
    flash_attention: str  # "fa3", "fa2", "fa1", "none": the FlashAttention build in the image

    def image(self, version: str, registry: str = DEFAULT_IMAGE_REGISTRY) -> str:
        return f"{registry}/{ENGINES[self.engine].image_repository}:{version}-{self.variant}"


# FlashAttention builds: vLLM's FA2 is one sm_80 build (runs on sm86/sm89), FA3 is sm_90a only, and
# Blackwell uses FlashInfer by default (cuobjdump of the 0.33.0 wheel, engines.md 4.1). TGI ships FA2
# 2.6.1 for sm80+ and an FA1 fork for sm75, and no FA3 (server/Makefile-flash-att*, engines.md 4.2).
IMAGE_BUILDS: tuple[ImageBuild, ...] = (
    ImageBuild(Engine.VLLM, GpuArchitecture.TURING, "sm75", "7.5", "none"),
    ImageBuild(Engine.VLLM, GpuArchitecture.AMPERE, "sm80", "8.0 8.6", "fa2"),
    ImageBuild(Engine.VLLM, GpuArchitecture.ADA, "sm89", "8.9", "fa2"),
    ImageBuild(Engine.VLLM, GpuArchitecture.HOPPER, "sm90", "9.0a", "fa3"),
    ImageBuild(Engine.VLLM, GpuArchitecture.BLACKWELL, "sm100", "10.0", "none"),
    ImageBuild(Engine.TGI, GpuArchitecture.TURING, "sm75", "7.5", "fa1"),
    ImageBuild(Engine.TGI, GpuArchitecture.AMPERE, "sm80", "8.0;8.6", "fa2"),
    ImageBuild(Engine.TGI, GpuArchitecture.ADA, "sm89", "8.9", "fa2"),
    ImageBuild(Engine.TGI, GpuArchitecture.HOPPER, "sm90", "9.0", "fa2"),
)


def image_build(engine: Engine, architecture: GpuArchitecture) -> ImageBuild | None:
    """The image build for this engine and GPU architecture, or None when llmop has none."""
    for build in IMAGE_BUILDS:
        if build.engine == engine and build.architecture == architecture:
            return build
    return None
