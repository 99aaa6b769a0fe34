"""What each quantization method costs in output quality, stated with its sources (not measured by llmop)."""

from __future__ import annotations

from dataclasses import dataclass

from llmop.catalog.quantization import Quantization


@dataclass(frozen=True)
class QualityNote:
    """A short accuracy note for one method and the papers or reports it rests on."""

    summary: str
    sources: tuple[str, ...]

    def text(self) -> str:
        return f"{self.summary} [{'; '.join(self.sources)}]"


_KURTIC = "Kurtic et al. 2024, 'Give Me BF16 or Give Me Death?', arXiv:2411.02355"

# Sources as summarised in ../shared/reference/engines.md section 7 and the papers' abstracts. llmop runs no
# accuracy evaluation: check the checkpoint's own model card and your task before relying on a 4-bit method.
QUALITY: dict[Quantization, QualityNote] = {
    Quantization.NONE: QualityNote("the reference: 16-bit weights, no quantization loss", ("-",)),
    Quantization.FP8: QualityNote(
        "8-bit float (e4m3) weights: close to 16-bit; FP8 W8A8 was found essentially lossless across model sizes",
        ("Micikevicius et al. 2022, 'FP8 Formats for Deep Learning', arXiv:2209.05433", _KURTIC),
    ),
    Quantization.AWQ: QualityNote(
        "weight-only INT4 (group 128), activation-aware: small accuracy loss on large models, larger on small "
        "ones and on hard tasks (code, math, long context); needs a pre-quantized checkpoint",
        ("Lin et al. 2023, 'AWQ', arXiv:2306.00978", _KURTIC),
    ),
    Quantization.GPTQ: QualityNote(
        "weight-only INT4 (group 128), second-order error correction: like AWQ, a small loss on large models that "
        "grows on small ones; quality depends on the calibration set; needs a pre-quantized checkpoint",
        ("Frantar et al. 2022, 'GPTQ', arXiv:2210.17323", _KURTIC),
    ),
    Quantization.INT8: QualityNote(
        "LLM.int8() keeps outlier features in 16 bits: no degradation reported up to 175B, but decodes slower "
        "than 16-bit",
        ("Dettmers et al. 2022, 'LLM.int8()', arXiv:2208.07339",),
    ),
    Quantization.NF4: QualityNote(
        "4-bit NormalFloat quantized on load, no calibration: better than FP4 on normally distributed weights, "
        "generally below calibrated INT4 (AWQ/GPTQ) for serving; slow bitsandbytes kernels",
        ("Dettmers et al. 2023, 'QLoRA', arXiv:2305.14314",),
    ),
    Quantization.FP4: QualityNote(
        "bitsandbytes 4-bit float quantized on load: below NF4 in the same study; slow bitsandbytes kernels",
        ("Dettmers et al. 2023, 'QLoRA', arXiv:2305.14314",),
    ),
}
