"""TGI 3.3.7: llmop's launcher argv/env must be accepted by text-generation-launcher's own clap definitions."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from llmop_dev.engine_check import check_tgi_argv, parse_tgi_argv, tgi_facts

REPO = Path(__file__).resolve().parents[2]
TGI_COMMIT = "dfb3fbe78e0d1d69251bd33065591c61bafdfaa8"

GOOD_ARGS = [
    "--model-id",
    "meta-llama/Llama-3.1-8B-Instruct",
    "--hostname",
    "0.0.0.0",
    "--port",
    "8080",
    "--num-shard",
    "2",
    "--max-input-tokens",
    "8191",
    "--max-total-tokens",
    "8192",
    "--max-batch-prefill-tokens",
    "8242",
    "--quantize",
    "fp8",
    "--kv-cache-dtype",
    "fp8_e4m3fn",
    "--cuda-memory-fraction",
    "0.9",
    "--revision",
    "main",
    "--huggingface-hub-cache",
    "/models",
    "--json-output",
]
GOOD_ENV = {"HF_HOME": "/models", "ATTENTION": "flashinfer", "PREFIX_CACHING": "1"}


# ------------------------------------------------------------------------------------- fact file


def test_fact_file_is_pinned_to_the_release() -> None:
    src = tgi_facts()["source"]
    assert src["repo"] == "huggingface/text-generation-inference"
    assert src["commit"] == TGI_COMMIT
    assert src["tag"] == "v3.3.7"
    assert src["path"] == "launcher/src/main.rs"


def test_fact_file_enums() -> None:
    facts = tgi_facts()
    assert set(facts["quantize_values"]) == {
        "awq",
        "compressed-tensors",
        "eetq",
        "exl2",
        "gptq",
        "marlin",
        "bitsandbytes",
        "bitsandbytes-nf4",
        "bitsandbytes-fp4",
        "fp8",
    }
    assert facts["dtype_values"] == ["float16", "bfloat16"]
    assert facts["kv_cache_dtype_values"] == ["fp8_e4m3fn", "fp8_e5m2"]
    assert set(facts["server_env"]["ATTENTION"]["values"]) == {
        "paged",
        "flashdecoding",
        "flashdecoding-ipex",
        "flashinfer",
    }


def test_fact_file_flags_llmop_relies_on() -> None:
    by_long = {f["long"]: f for f in tgi_facts()["flags"]}
    for name in (
        "model-id",
        "max-input-tokens",
        "max-total-tokens",
        "num-shard",
        "port",
        "hostname",
        "prometheus-port",
        "cuda-memory-fraction",
        "max-batch-prefill-tokens",
        "revision",
        "huggingface-hub-cache",
        "json-output",
    ):
        assert name in by_long, name
    assert by_long["port"]["default"] == "3000"
    assert by_long["port"]["env"] == "PORT"
    assert by_long["json-output"]["takes_value"] is False
    assert "tensor-parallel-size" not in by_long


def test_extractor_reproduces_fact_file_from_main_rs_alone(tmp_path: Path) -> None:
    """The committed JSON's launcher part is what the extractor produces (main.rs-only mode, self-check)."""
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import extract_tgi_launcher_flags as ex
    finally:
        sys.path.pop(0)
    facts = tgi_facts()
    # Rebuild a main.rs-shaped snippet from the facts and re-extract it: guards the parser's conventions.
    assert ex.kebab_case("BitsandbytesNf4") == "bitsandbytes-nf4"
    assert ex.kebab_case("CompressedTensors") == "compressed-tensors"
    assert ex.kebab_case("max_batch_prefill_tokens") == "max-batch-prefill-tokens"
    snippet = (
        "#[derive(Clone, Copy, Debug, ValueEnum)]\nenum Dtype {\n    Float16,\n"
        '    #[clap(name = "bfloat16")]\n    BFloat16,\n}\n'
        "#[derive(Clone, Copy, Debug, ValueEnum)]\nenum Quantization {\n    Awq,\n    BitsandbytesNf4,\n}\n"
        "#[derive(Clone, Copy, Debug, ValueEnum)]\nenum KVCacheDtype {\n"
        '    #[clap(name = "fp8_e5m2")]\n    Fp8e5m2,\n}\n'
        "struct Args {\n"
        '    #[clap(default_value = "bigscience/bloom-560m", long, env)]\n    model_id: String,\n'
        "    #[clap(long, env, value_enum)]\n    quantize: Option<Quantization>,\n"
        "    #[clap(long, env, value_enum)]\n    dtype: Option<Dtype>,\n"
        "    #[clap(long, env, value_enum)]\n    kv_cache_dtype: Option<KVCacheDtype>,\n"
        '    #[clap(default_value = "3000", long, short, env)]\n    port: u16,\n'
        "    #[clap(long, env)]\n    json_output: bool,\n"
        "}\n"
    )
    main_rs = tmp_path / "main.rs"
    main_rs.write_text(snippet)
    out = tmp_path / "out.json"
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "extract_tgi_launcher_flags.py"), str(main_rs), "-o", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    assert doc["quantize_values"] == ["awq", "bitsandbytes-nf4"]
    assert doc["dtype_values"] == ["float16", "bfloat16"]
    flags = {f["long"]: f for f in doc["flags"]}
    assert flags["port"]["short"] == "p" and flags["port"]["env"] == "PORT"
    assert flags["json-output"]["takes_value"] is False
    # Same conventions as the committed facts for the same fields.
    committed = {f["long"]: f for f in facts["flags"]}
    for name in ("model-id", "port", "json-output"):
        for key in ("long", "env", "takes_value", "default", "value_kind"):
            assert flags[name][key] == committed[name][key], (name, key)


# ------------------------------------------------------------------------------- llmop's own argv


def test_tgi_examples_accepted(tgi_example: tuple[str, dict[str, Any]]) -> None:
    _, doc = tgi_example
    assert "_error" not in doc, doc.get("_error")
    plan = doc["plan"]
    command = plan.get("command") or []
    assert command in ([], ["text-generation-launcher"]), f"unexpected TGI command {command}"
    errors = check_tgi_argv(plan["args"], plan.get("env") or {}, via_entrypoint=not command)
    assert errors == [], "\n".join(errors)


# ------------------------------------------------------------------------------ hand-written argv


def test_realistic_argv_accepted() -> None:
    assert check_tgi_argv(GOOD_ARGS, GOOD_ENV) == []


@pytest.mark.parametrize(
    "args",
    [
        ["--quantize=awq"],
        ["--quantize", "bitsandbytes-nf4", "--dtype", "bfloat16"],
        ["--cuda-graphs", "1,2,4,8"],
        ["--sharded", "true", "--num-shard", "2"],
        ["--rope-scaling", "dynamic", "--rope-factor", "2.0"],
        ["--cors-allow-origin", "a", "--cors-allow-origin", "b"],
        ["--prometheus-port", "9000", "--usage-stats", "off"],
    ],
)
def test_other_valid_argv_accepted(args: list[str]) -> None:
    assert check_tgi_argv(args, {}) == []


@pytest.mark.parametrize(
    ("args", "env", "needle"),
    [
        (["--quantize", "gguf"], {}, "invalid value 'gguf' for --quantize"),
        (["--tensor-parallel-size", "2"], {}, "--tensor-parallel-size is not a text-generation-launcher flag"),
        ([], {"ATTENTION": "flash"}, "ATTENTION='flash'"),
        (["--dtype", "half"], {}, "invalid value 'half' for --dtype"),
        (["--kv-cache-dtype", "fp8"], {}, "invalid value 'fp8' for --kv-cache-dtype"),
        (["--num_shard", "2"], {}, "did you mean --num-shard"),
        (["--port", "70000"], {}, "--port"),
        (["--json-output", "true"], {}, "unexpected positional argument 'true'"),
        (["--json-output=true"], {}, "takes no value"),
        (["--port"], {}, "--port needs a value"),
        (["--port", "80", "--port", "81"], {}, "more than once"),
        (["-p", "80"], {}, "claimed by both --port and --prometheus-port"),
        (["meta-llama/Llama-3.1-8B"], {}, "positional"),
        (["--max-input-tokens", "8192", "--max-total-tokens", "8192"], {}, "must be <"),
        (["--max-input-tokens", "10", "--max-input-length", "10"], {}, "both set"),
        (["--quantize", "exl2", "--num-shard", "2"], {}, "exl2"),
        (["--quantize", "awq", "--dtype", "float16"], {}, "--dtype cannot be combined"),
        (["--model-id", "my model"], {}, "re-split"),
        ([], {"QUANTIZE": "gguf"}, "env QUANTIZE"),
        ([], {"JSON_OUTPUT": "1"}, "JSON_OUTPUT"),
        ([], {"PREFIX_CACHING": "yes"}, "PREFIX_CACHING='yes'"),
        ([], {"ATTENTION": "paged", "PREFIX_CACHING": "1"}, "only supported with flashinfer"),
        ([], {"USE_FLASH_ATTENTION": "0"}, "USE_FLASH_ATTENTION='0' has no effect"),
    ],
)
def test_invalid_argv_rejected(args: list[str], env: dict[str, str], needle: str) -> None:
    errors = check_tgi_argv(args, env)
    assert errors, f"{args} {env} should be rejected"
    assert any(needle in e for e in errors), errors


def test_parse_collects_values() -> None:
    seen, errors = parse_tgi_argv(["--port=8080", "--json-output", "--cuda-graphs", "1,2"])
    assert errors == []
    assert seen == {"port": ["8080"], "json-output": ["true"], "cuda-graphs": ["1,2"]}


# ---------------------------------------------------- the planner's verdicts against the launcher facts


def _tgi_plan(args: list[str], **extra: Any) -> Any:
    from llmop.plan.parse import parse_spec
    from llmop.plan.planner import plan

    spec = {"model": {"name": "meta-llama/Llama-3.1-8B-Instruct"}, "engine": "tgi", "gpu": {"type": "H100-80GB"}}
    return plan(parse_spec({**spec, "engineArgs": args, **extra}))  # type: ignore[arg-type]


def test_planner_accepted_engine_args_pass_the_launcher() -> None:
    """Every TGI argv the planner accepts for the unit corpus (and the T4 prefill budget) passes the launcher."""
    from llmop.plan.types import Plan
    from support.engine_args_corpus import TGI_ACCEPTED

    plans = [_tgi_plan(args) for args in TGI_ACCEPTED]
    plans.append(_tgi_plan([], quantization="nf4", gpu={"type": "T4"}, maxModelLen=8192))
    for result in plans:
        assert isinstance(result, Plan), result
        assert check_tgi_argv(list(result.args), result.env, via_entrypoint=False) == []


def test_planner_refused_engine_args_fail_the_launcher() -> None:
    """The nine engineArgs TGI 3.3.7's real launcher rejected are refused by the planner and by the launcher facts."""
    from llmop.plan.types import PlanErrors
    from support.engine_args_corpus import TGI_REFUSED

    base = _tgi_plan([])
    for args, _, _ in TGI_REFUSED:
        assert isinstance(_tgi_plan(args), PlanErrors), args
        assert check_tgi_argv([*base.args, *args], base.env, via_entrypoint=False), args
