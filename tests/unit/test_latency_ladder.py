"""vLLM's fine latency ladder: rendered through --custom-histogram-buckets where the version has it, read back as
vLLM reads it, and the conservative warning where it has not."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

from llmop.engines import buckets_for
from llmop.engines.vllm import FINE_ITL_BUCKETS_S, FINE_TTFT_BUCKETS_S, ITL_BUCKETS_S
from llmop_dev.replay.exporter import vllm_buckets_from_args
from llmop_dev.specs import load_spec

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "examples" / "llama31-8b-h100-fp8-vllm.yaml"


def _with_version(tmp_path: Path, version: str) -> Path:
    text = SPEC.read_text().replace("  engine: vllm\n", f'  engine: vllm\n  engineVersion: "{version}"\n')
    path = tmp_path / f"vllm-{version}.yaml"
    path.write_text(text)
    return path


def test_the_ladder_reads_any_target_within_a_millisecond_to_50_ms_and_keeps_the_default_edges() -> None:
    assert FINE_ITL_BUCKETS_S[:50] == tuple(round(i / 1000, 6) for i in range(1, 51))
    steps = [b - a for a, b in itertools.pairwise(FINE_ITL_BUCKETS_S[49:90])]
    assert max(steps) <= 0.0025 + 1e-9 and FINE_ITL_BUCKETS_S[89] == 0.15
    assert set(ITL_BUCKETS_S) <= set(FINE_ITL_BUCKETS_S) and len(FINE_ITL_BUCKETS_S) == 111
    assert len(FINE_TTFT_BUCKETS_S) == 61 and 2.0 in FINE_TTFT_BUCKETS_S


def test_vllm_0_33_is_launched_with_the_ladder_and_the_simulator_reads_it_back(tmp_path: Path) -> None:
    _, plan = load_spec(str(SPEC))
    args = list(plan.args)
    value = json.loads(args[args.index("--custom-histogram-buckets") + 1])
    assert value == {"inter_token_latency": list(FINE_ITL_BUCKETS_S), "time_to_first_token": list(FINE_TTFT_BUCKETS_S)}
    assert vllm_buckets_from_args(plan.args) == {
        "inter_token_latency": FINE_ITL_BUCKETS_S,
        "time_to_first_token": FINE_TTFT_BUCKETS_S,
    }
    assert buckets_for("vllm", (0, 33, 0)) == FINE_ITL_BUCKETS_S
    assert not any("inter-token-latency bucket" in w.message for w in plan.warnings)


def test_older_vllm_keeps_its_default_buckets_and_is_told_the_read_is_conservative(tmp_path: Path) -> None:
    _, plan = load_spec(str(_with_version(tmp_path, "0.30.0")))
    assert "--custom-histogram-buckets" not in plan.args
    assert buckets_for("vllm", (0, 30, 0)) == ITL_BUCKETS_S
    assert any(
        "SLO 40 ms falls inside vLLM's 25-50 ms inter-token-latency bucket (this version has no "
        "--custom-histogram-buckets); the autoscaler judges it conservatively" in w.message
        for w in plan.warnings
    ), plan.warnings
