"""What every engine module provides: the launch inputs, the attention choice and the EngineAdapter protocol."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from llmop.catalog.engines import Engine, EngineInfo
from llmop.catalog.gpus import GPU
from llmop.catalog.versions import Version
from llmop.engines.argv import Occurrence
from llmop.engines.flags import FlagTable
from llmop.engines.promql import Query

MODEL_CACHE_PATH = "/models"


class AttentionKernel(StrEnum):
    """The attention implementation a plan runs (reported in status and `llmop plan`)."""

    FLASH_ATTENTION_3 = "flash-attention-3"
    FLASH_ATTENTION_2 = "flash-attention-2"
    FLASHINFER = "flashinfer"
    TRITON = "triton"
    FLEX = "flex-attention"
    PAGED = "paged"


@dataclass(frozen=True)
class AttentionChoice:
    """The attention kernel for a GPU and how to ask the engine for it."""

    kernel: AttentionKernel
    args: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    note: str | None = None


@dataclass(frozen=True)
class EngineLaunch:
    """Inputs to the engine command line that the planner has decided."""

    model: str
    revision: str | None
    tensor_parallel: int
    max_model_len: int
    dtype: str
    quantization_flag: str | None
    attention: AttentionChoice
    gpu_memory_utilization: float
    engine_args: tuple[str, ...] = ()  # the user's, appended after llmop's flags (some defaults depend on them)
    version: tuple[int, int, int] | None = None  # the engine version (None: the newest llmop knows)


Command = tuple[tuple[str, ...], tuple[str, ...], dict[str, str]]  # container command, args, env


@dataclass(frozen=True)
class ArgContext:
    """What llmop itself decided that user engineArgs are checked against (cross-flag rules)."""

    max_model_len: int
    attention: AttentionKernel


@dataclass(frozen=True)
class RuleBreak:
    """A cross-flag rule of the engine that user engineArgs break: where, the engine's words, what would work."""

    index: int
    written: str
    engine_says: str
    advice: str


class EngineAdapter(Protocol):
    """One engine's knowledge, behind one interface (engines/vllm.py, engines/tgi.py)."""

    engine: Engine
    info: EngineInfo
    owned_flags: frozenset[str]  # flags llmop sets; engineArgs may not override them (aliases included)
    field_for_flag: Mapping[str, str]  # owned flag -> the spec field that sets it (for refusal messages)
    default_max_num_seqs: int  # sequences the engine batches at most when no flag says otherwise
    flag_hints: Mapping[str, str]  # another engine's spelling -> this engine's flag (for "did you mean")
    gauges_need_traffic: bool  # the running/waiting gauges appear only after a pod's first request (TGI)

    def flag_table(self, version: Version) -> FlagTable:
        """Every flag the engine's own parser accepts at `version` (catalog JSON)."""
        ...

    def arg_rules(self, given: Mapping[str, Occurrence], context: ArgContext) -> list[RuleBreak]:
        """Cross-flag rules the engine checks before serving, over the user's flags (dest -> last occurrence)."""
        ...

    def owned_flag_set_by(self, arg: str) -> str | None:
        """The owned flag that the engine's own parser would set from `arg`, or None."""
        ...

    def command(self, launch: EngineLaunch) -> Command:
        """Container command, args and env (before user engineArgs are appended)."""
        ...

    def attention(self, gpu: GPU, version: Version) -> AttentionChoice: ...

    def memory_fraction(self, version: Version) -> float:
        """Share of GPU memory the engine takes for weights, activations and KV cache."""
        ...

    def queries(self, version: Version | None) -> tuple[Query, ...]:
        """The PromQL set the autoscaler, dashboards and alerts read (None: the newest version)."""
        ...

    def latency_buckets_s(self, version: tuple[int, int, int] | None = None) -> tuple[float, ...]:
        """Upper bounds of the decode-latency histogram the queries read, as llmop launches that version."""
        ...

    def slo_resolution_warning(self, target_ms: float, version: tuple[int, int, int] | None = None) -> str | None:
        """A warning when the decode-latency histogram cannot resolve `target_ms` exactly."""
        ...

    def stream_tokens(
        self, endpoint: str, prompt: str, max_tokens: int, model: str | None, timeout_s: float
    ) -> TokenStream:
        """Stream a short generation through the engine's API and time it."""
        ...


@dataclass(frozen=True)
class TokenStream:
    """A timed streaming generation: `time.perf_counter()` when the request was sent and at each chunk that carried
    text, and how many tokens the engine generated (its own count where it gives one: a busy server merges
    several tokens into one chunk)."""

    sent: float
    arrivals: tuple[float, ...]
    tokens: int


EXACT_WITHIN_MS = 0.5  # a target this close to a bucket edge is read at that edge


def exact_edge(edges_s: Iterable[float], target_ms: float) -> float | None:
    """The histogram edge (s) nearest a latency target among those within EXACT_WITHIN_MS of it, else None."""
    near = [edge for edge in edges_s if abs(target_ms - edge * 1000) <= EXACT_WITHIN_MS]
    return min(near, key=lambda edge: abs(edge * 1000 - target_ms)) if near else None


def bucket_around(edges_s: tuple[float, ...], target_ms: float) -> tuple[float | None, float | None] | None:
    """The histogram bucket a latency target falls in, as (edge below, edge above) in ms (None past either end);
    None when an edge lies within EXACT_WITHIN_MS of the target, so the percentile is read there exactly."""
    if exact_edge(edges_s, target_ms) is not None:
        return None
    edges_ms = [edge * 1000 for edge in edges_s]
    lower = max((edge for edge in edges_ms if edge < target_ms), default=None)
    upper = min((edge for edge in edges_ms if edge > target_ms), default=None)
    return lower, upper
