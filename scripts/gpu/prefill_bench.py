"""Measure chunked-prefill forward time on one GPU for Llama-3-8B shapes (random bf16 weights): needs torch + CUDA.

Usage: python scripts/gpu/prefill_bench.py OUT.json

One forward of a prompt chunk of T tokens after c tokens already in the KV cache, as an engine's chunked prefill
runs it: fused QKV and gate-up projections, RMSNorm, rotary embedding, grouped-query attention over the cache plus
the chunk (causal), the KV cache written, the LM head for the chunk's last token only. Reports the median of 10
timed runs after 3 warm-ups, eager and replayed from a CUDA graph, the FLOPs done (linear layers at 2 x weights
per token, attention at 4 x layers x heads x head dim per (query, key) pair) and the share of the GPU's dense peak
they reach (MFU). Also the linear layers alone in fp8 e4m3 (per-tensor scales, torch._scaled_mm) against bf16.
Not a test: a measurement whose figures go to docs/prefill-calibration.md.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from typing import Any

import torch
import torch.nn.functional as F

LAYERS, HIDDEN, HEADS, KV_HEADS, HEAD_DIM, FFN, VOCAB = 32, 4096, 32, 8, 128, 14336, 128256
PARAMETERS = 8.03e9  # Llama-3-8B, embeddings and LM head included (what 2 x parameters counts)
LINEAR_FLOPS_PER_TOKEN = 2 * LAYERS * HIDDEN * ((HEADS + 2 * KV_HEADS) * HEAD_DIM + HEADS * HEAD_DIM + 3 * FFN)
ATTENTION_FLOPS_PER_PAIR = 4 * LAYERS * HEADS * HEAD_DIM
CASES = [(128, 0), (512, 0), (1024, 0), (2048, 0), (4096, 0), (8192, 0), (512, 7680), (2048, 2048), (2048, 6144),
         (2048, 14336)]  # fmt: skip
MAX_CONTEXT = 16384


def rms_norm(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    variance = x.float().pow(2).mean(-1, keepdim=True)
    return (x.float() * torch.rsqrt(variance + 1e-5)).to(x.dtype) * weight


def rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos + rotated * sin


class Model:
    """Random weights in Llama-3-8B's shapes, the KV cache for MAX_CONTEXT tokens, and one chunked forward."""

    def __init__(self, device: torch.device) -> None:
        def weight(*shape: int) -> torch.Tensor:
            return torch.randn(*shape, device=device, dtype=torch.bfloat16) * 0.02

        self.layers = [
            {
                "qkv": weight((HEADS + 2 * KV_HEADS) * HEAD_DIM, HIDDEN),
                "o": weight(HIDDEN, HEADS * HEAD_DIM),
                "gate_up": weight(2 * FFN, HIDDEN),
                "down": weight(HIDDEN, FFN),
                "norm1": torch.ones(HIDDEN, device=device, dtype=torch.bfloat16),
                "norm2": torch.ones(HIDDEN, device=device, dtype=torch.bfloat16),
            }
            for _ in range(LAYERS)
        ]
        self.lm_head = weight(VOCAB, HIDDEN)
        self.final_norm = torch.ones(HIDDEN, device=device, dtype=torch.bfloat16)
        shape = (LAYERS, 1, KV_HEADS, MAX_CONTEXT, HEAD_DIM)
        self.cache_k = torch.zeros(shape, device=device, dtype=torch.bfloat16)
        self.cache_v = torch.zeros(shape, device=device, dtype=torch.bfloat16)
        inv = 1.0 / (500000.0 ** (torch.arange(0, HEAD_DIM, 2, device=device).float() / HEAD_DIM))
        angles = torch.outer(torch.arange(MAX_CONTEXT, device=device).float(), inv)
        angles = torch.cat((angles, angles), dim=-1)
        self.cos, self.sin = angles.cos().to(torch.bfloat16), angles.sin().to(torch.bfloat16)

    def forward(self, x: torch.Tensor, context: int) -> torch.Tensor:
        tokens = x.shape[0]
        cos, sin = self.cos[context : context + tokens], self.sin[context : context + tokens]
        mask = None
        if context:
            rows = torch.arange(tokens, device=x.device).unsqueeze(1) + context
            mask = torch.arange(context + tokens, device=x.device).unsqueeze(0) <= rows
        for index, layer in enumerate(self.layers):
            h = rms_norm(x, layer["norm1"])
            qkv = F.linear(h, layer["qkv"])
            q, k, v = qkv.split([HEADS * HEAD_DIM, KV_HEADS * HEAD_DIM, KV_HEADS * HEAD_DIM], dim=-1)
            q = rotary(q.view(tokens, HEADS, HEAD_DIM), cos[:, None], sin[:, None]).transpose(0, 1)[None]
            k = rotary(k.view(tokens, KV_HEADS, HEAD_DIM), cos[:, None], sin[:, None]).transpose(0, 1)[None]
            v = v.view(tokens, KV_HEADS, HEAD_DIM).transpose(0, 1)[None]
            self.cache_k[index, :, :, context : context + tokens] = k
            self.cache_v[index, :, :, context : context + tokens] = v
            keys = self.cache_k[index, :, :, : context + tokens].repeat_interleave(HEADS // KV_HEADS, dim=1)
            values = self.cache_v[index, :, :, : context + tokens].repeat_interleave(HEADS // KV_HEADS, dim=1)
            if mask is None:
                attention = F.scaled_dot_product_attention(q, keys, values, is_causal=True)
            else:
                attention = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask)
            x = x + F.linear(attention[0].transpose(0, 1).reshape(tokens, HEADS * HEAD_DIM), layer["o"])
            h = rms_norm(x, layer["norm2"])
            gate, up = F.linear(h, layer["gate_up"]).chunk(2, dim=-1)
            x = x + F.linear(F.silu(gate) * up, layer["down"])
        return F.linear(rms_norm(x[-1:], self.final_norm), self.lm_head)


def timed(run: Any, repeats: int = 10, warmups: int = 3) -> list[float]:
    for _ in range(warmups):
        run()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        run()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return times


def graphed(model: Model, x: torch.Tensor, context: int) -> Any:
    """`model.forward(x, context)` captured in a CUDA graph; returns its replay."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.inference_mode(), torch.cuda.stream(side):
        for _ in range(2):
            model.forward(x, context)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.inference_mode(), torch.cuda.graph(graph):
        model.forward(x, context)
    return graph.replay


def fp8_linear_layers(device: torch.device, tokens: int) -> dict[str, Any]:
    """The 32 layers' linear GEMMs alone, bf16 against fp8 e4m3 with per-tensor scales (activations quantized)."""
    shapes = [((HEADS + 2 * KV_HEADS) * HEAD_DIM, HIDDEN), (HIDDEN, HEADS * HEAD_DIM), (2 * FFN, HIDDEN), (HIDDEN, FFN)]
    bf16 = [torch.randn(*s, device=device, dtype=torch.bfloat16) * 0.02 for s in shapes]
    fp8 = [w.to(torch.float8_e4m3fn) for w in bf16]
    scale = torch.ones((), device=device, dtype=torch.float32)
    inputs = [torch.randn(tokens, s[1], device=device, dtype=torch.bfloat16) for s in shapes]

    def run_bf16() -> None:
        for _ in range(LAYERS):
            for x, w in zip(inputs, bf16, strict=True):
                F.linear(x, w)

    def run_fp8() -> None:
        for _ in range(LAYERS):
            for x, w in zip(inputs, fp8, strict=True):
                torch._scaled_mm(x.to(torch.float8_e4m3fn), w.t(), scale_a=scale, scale_b=scale,
                                 out_dtype=torch.bfloat16)  # fmt: skip

    return {
        "tokens": tokens,
        "bf16_ms": statistics.median(timed(run_bf16)),
        "fp8_ms": statistics.median(timed(run_fp8)),
        "linear_flops": LINEAR_FLOPS_PER_TOKEN * tokens,
    }


def main() -> int:
    out = sys.argv[1] if len(sys.argv) > 1 else "prefill.json"
    device = torch.device("cuda")
    properties = torch.cuda.get_device_properties(device)
    peak = 989e12 if "H100" in properties.name or "H200" in properties.name else float("nan")
    began = time.time()
    model = Model(device)
    rows: list[dict[str, Any]] = []
    for tokens, context in CASES:
        x = torch.randn(tokens, HIDDEN, device=device, dtype=torch.bfloat16)
        try:
            with torch.inference_mode():
                times = timed(lambda x=x, context=context: model.forward(x, context))
        except Exception as error:  # one case failing (memory, a kernel) must not lose the others
            rows.append({"tokens": tokens, "context": context, "error": f"{type(error).__name__}: {error}"[:300]})
            continue
        try:  # the same forward replayed from a CUDA graph: the GPU's time without Python's launch overhead
            graph_times = timed(graphed(model, x, context))
        except Exception as error:
            graph_times = []
            print(f"graph {tokens}/{context}: {type(error).__name__}: {error}"[:300], flush=True)
        pairs = tokens * (context + tokens / 2)
        flops = LINEAR_FLOPS_PER_TOKEN * tokens + ATTENTION_FLOPS_PER_PAIR * pairs + 2 * HIDDEN * VOCAB
        flops_2p = 2 * PARAMETERS * tokens + ATTENTION_FLOPS_PER_PAIR * pairs  # as the simulator and planner count
        row: dict[str, Any] = {"tokens": tokens, "context": context}
        for name, measured in (("eager", times), ("graph", graph_times)):
            if not measured:
                continue
            ms = statistics.median(measured)
            row[name] = {
                "ms": round(ms, 3), "min_ms": round(min(measured), 3), "max_ms": round(max(measured), 3),
                "tokens_per_s": round(tokens / ms * 1000), "mfu": round(flops / (ms / 1000) / peak, 4),
                "mfu_2p": round(flops_2p / (ms / 1000) / peak, 4),
            }  # fmt: skip
        rows.append(row)
        print(json.dumps(rows[-1]), flush=True)
    fp8 = []
    for tokens in (512, 2048, 8192):
        try:
            fp8.append(fp8_linear_layers(device, tokens))
        except Exception as error:
            fp8.append({"tokens": tokens, "error": f"{type(error).__name__}: {error}"[:300]})
        print(json.dumps(fp8[-1]), flush=True)
    result = {
        "gpu": properties.name,
        "memory_gib": round(properties.total_memory / 2**30, 1),
        "sm_count": properties.multi_processor_count,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "dense_bf16_peak_tflops": peak / 1e12,
        "model": "Llama-3-8B shapes, random bf16 weights",
        "rows": rows,
        "fp8_linear": fp8,
        "seconds": round(time.time() - began, 1),
    }
    with open(out, "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
