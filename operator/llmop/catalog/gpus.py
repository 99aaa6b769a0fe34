"""GPU catalog: memory, bandwidth, compute capability and the node labels each GPU type carries."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

# Sources: ../shared/reference/engines.md section 6 (datasheet figures as reproduced by third parties,
# GFD `nvidia.com/gpu.product` values from NVIDIA/k8s-device-plugin@1b826ac, nvidia-smi on an H200).
# memory_mib is what the driver reports (GFD `nvidia.com/gpu.memory`), not the marketing figure.


class GpuArchitecture(StrEnum):
    """NVIDIA GPU architecture family; decides which kernels (and FlashAttention build) can run."""

    TURING = "turing"  # sm75
    AMPERE = "ampere"  # sm80, sm86
    ADA = "ada"  # sm89
    HOPPER = "hopper"  # sm90
    BLACKWELL = "blackwell"  # sm100


@dataclass(frozen=True)
class GPU:
    """One GPU type as the planner and the renderer see it."""

    name: str
    memory_mib: int
    bandwidth_gbs: float
    compute_capability: tuple[int, int]
    fp16_tflops: float
    gfd_product: str

    @property
    def cc(self) -> int:
        """Compute capability as an integer, e.g. 89 for 8.9 (vLLM's get_min_capability form)."""
        return self.compute_capability[0] * 10 + self.compute_capability[1]

    @property
    def cc_text(self) -> str:
        return f"{self.compute_capability[0]}.{self.compute_capability[1]}"

    @property
    def memory_gib(self) -> float:
        return self.memory_mib / 1024

    @property
    def bf16(self) -> bool:
        """bfloat16 needs Ampere (cc 8.0); vLLM raises on an explicit bfloat16 below it."""
        return self.cc >= 80

    @property
    def native_fp8(self) -> bool:
        """FP8 tensor cores (W8A8) need cc 8.9 (Ada) or newer; below it engines use weight-only FP8."""
        return self.cc >= 89

    @property
    def architecture(self) -> GpuArchitecture:
        major = self.compute_capability[0]
        if major >= 10:
            return GpuArchitecture.BLACKWELL
        if major == 9:
            return GpuArchitecture.HOPPER
        if self.cc >= 89:
            return GpuArchitecture.ADA
        if major == 8:
            return GpuArchitecture.AMPERE
        return GpuArchitecture.TURING


_GPUS = (
    GPU("T4", 15360, 320, (7, 5), 65, "Tesla-T4"),
    GPU("A10G", 23028, 600, (8, 6), 70, "NVIDIA-A10G"),
    GPU("L4", 23034, 300, (8, 9), 121, "NVIDIA-L4"),
    GPU("L40S", 46068, 864, (8, 9), 362, "NVIDIA-L40S"),
    GPU("A100-40GB", 40960, 1555, (8, 0), 312, "NVIDIA-A100-SXM4-40GB"),
    GPU("A100-80GB", 81920, 2039, (8, 0), 312, "NVIDIA-A100-SXM4-80GB"),
    GPU("H100-80GB", 81559, 3350, (9, 0), 989, "NVIDIA-H100-80GB-HBM3"),
    GPU("H100-PCIe", 81559, 2000, (9, 0), 756, "NVIDIA-H100-PCIe"),
    GPU("H200", 143771, 4800, (9, 0), 989, "NVIDIA-H200"),
    GPU("B200", 183359, 7700, (10, 0), 2250, "NVIDIA-B200"),
)

GPUS: dict[str, GPU] = {gpu.name: gpu for gpu in _GPUS}

# Node labels written by NVIDIA GPU Feature Discovery; the renderer selects on the product label.
GFD_PRODUCT_LABEL = "nvidia.com/gpu.product"
GFD_COUNT_LABEL = "nvidia.com/gpu.count"
GFD_MEMORY_LABEL = "nvidia.com/gpu.memory"
GFD_CC_MAJOR_LABEL = "nvidia.com/gpu.compute.major"
GFD_CC_MINOR_LABEL = "nvidia.com/gpu.compute.minor"
GPU_RESOURCE = "nvidia.com/gpu"


def node_labels(gpu: GPU, count: int) -> dict[str, str]:
    """The GFD labels a node with `count` GPUs of this type carries."""
    return {
        GFD_PRODUCT_LABEL: gpu.gfd_product,
        GFD_COUNT_LABEL: str(count),
        GFD_MEMORY_LABEL: str(gpu.memory_mib),
        GFD_CC_MAJOR_LABEL: str(gpu.compute_capability[0]),
        GFD_CC_MINOR_LABEL: str(gpu.compute_capability[1]),
        "nvidia.com/gpu.present": "true",
    }
