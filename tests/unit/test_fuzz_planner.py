"""Fuzz: 10,000 generated LLMDeployment specs through parse_spec + plan + render: no exception, explained refusals."""

from __future__ import annotations

import argparse
import copy
import json
import math
import re
import time
import unicodedata
from collections import Counter
from collections.abc import Sequence
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from llmop.catalog.engines import Engine
from llmop.catalog.gpus import GPU_RESOURCE, GPUS
from llmop.engines import adapter
from llmop.plan.memory import AUTO_MIN_SEQUENCES, TP_CHOICES
from llmop.plan.parse import parse_spec
from llmop.plan.planner import plan, resolve_architecture
from llmop.plan.types import Finding, Plan, PlanErrors
from llmop.render.manifests import Owner, render

EXAMPLES = 10_000
TIME_LIMIT_S = 120.0  # measured 41-44 s on 2 busy shared cores; fail loudly long before a CI job times out
ENGINE_BINARIES = {"vllm": ("vllm", "serve"), "tgi": ("text-generation-launcher",)}
SHELLS = {"sh", "bash", "dash", "zsh", "/bin/sh", "/bin/bash", "-c", "env"}
SHELL_SYNTAX = ("$(", "`", ";", "&&", "||")
REFUSED_CATEGORIES = {"Cc", "Cf", "Zl", "Zp", "Cs"}
SECRET_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")

# ---- strategies -------------------------------------------------------------------------------------------------
# A spec is a valid core (each field drawn from values that work, or absent) plus 0-3 mutations, each putting a
# hostile value at one path. Few draws per example keep 10,000 examples fast; the valid core keeps enough of them
# accepted to exercise the plan invariants.

ABSENT = object()
HOSTILE_TEXT = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "x" * 300,
    "🦙",
    "llama-🦙/model",
    "\u202emeta-llama/Llama",
    "\u200b",
    "line\nbreak",
    "tab\there",
    "nel\x85",
    "para\u2029",
    "$(id)",
    "`id`",
    "a; rm -rf /",
    "a && b",
    "../../etc/passwd",
    "Ω≈ç√",
    "ﷺ",
    "-1",
    "1e308",
    "NaN",
    "null",
    "auto",
]
HUGE_NUMBERS = [0, -1, -(2**31), 2**31, 2**63, 2**64, 10**9, 10**12, 10**30, 1e308, -1e308, 0.5, 1.5, -0.0]
HOSTILE_VALUES: list[Any] = [
    *HOSTILE_TEXT,
    *HUGE_NUMBERS,
    math.inf,
    -math.inf,
    math.nan,
    None,
    True,
    False,
    [],
    {},
    {"a": 1},
    ["--enable-prefix-caching"] * 100,
    ["--long=" + "y" * 2000],
]
# ASCII, C0/C1 controls, bidi and zero-width format characters, separators, emoji, CJK, RTL scripts.
_ALPHABET = st.characters(codec="utf-8", categories=("L", "M", "N", "P", "S", "Z", "Cc", "Cf"))
hostile_value = st.one_of(st.sampled_from(HOSTILE_VALUES), st.text(_ALPHABET, max_size=16), st.integers())


def _vllm_spellings(flag: str) -> list[str]:
    """Ways vLLM's parser reads as `flag`: underscores, unambiguous prefixes, dotted JSON keys, attached values."""
    if flag.startswith("--"):
        return [flag, flag + "=1", "--" + flag[2:].replace("-", "_"), flag[:-1], flag + ".key=1"]
    return [flag, flag + "=1", flag + "1", flag[:-1] if len(flag) > 2 else flag + "x", flag + ".key=1"]


OWNED_SPELLINGS = sorted(
    {s for flag in adapter(Engine.VLLM).owned_flags for s in _vllm_spellings(flag)}
    | {s for flag in adapter(Engine.TGI).owned_flags for s in (flag, flag + "=1")}
    | {"-p9000", "-ep9000", "-e", "-g5"}
)
BENIGN_ARGS = [
    "--enable-prefix-caching",
    "--enforce-eager",
    "--max-num-seqs",
    "--served-model-name",
    "--max-batch-size=4",
    "--compilation-config.mode=3",
    "-O3",
    "-dpl",
    "--trust-remote-code",
    "--kv-cache-dtype=fp8",
    "8",
    "0.5",
    "my model",
    '{"temperature": 0.5}',
    "*",
    "~",
    "'quoted'",
]
SHELLISH = ["a;b", "$(id)", "`id`", "x && y", "a || b", "--x=$(reboot)", "--y=`id`", "--z=a\nb"]
engine_arg = st.one_of(
    st.sampled_from(BENIGN_ARGS + OWNED_SPELLINGS + SHELLISH + HOSTILE_TEXT),
    st.text(_ALPHABET, max_size=16).map(lambda t: "--x=" + t),
)

EXPLICIT_ARCHITECTURES = [
    # heads/kvHeads shapes that rule out some tensor-parallel sizes (40/8, 6/2, 12/3, 96/8)
    {"parameters": 13_000_000_000, "layers": 40, "hiddenSize": 5120, "attentionHeads": 40, "kvHeads": 8,
     "headDim": 128, "vocabSize": 32000, "maxPositionEmbeddings": 32768},
    {"parameters": 1_100_000_000, "layers": 22, "hiddenSize": 2048, "attentionHeads": 6, "kvHeads": 2,
     "headDim": 64, "vocabSize": 32000, "maxPositionEmbeddings": 2048, "tiedEmbeddings": True},
    {"parameters": 3_000_000_000, "layers": 28, "hiddenSize": 3072, "attentionHeads": 12, "kvHeads": 3,
     "headDim": 256, "vocabSize": 151_936, "maxPositionEmbeddings": 131_072},
    {"parameters": 180_000_000_000, "layers": 96, "hiddenSize": 12288, "attentionHeads": 96, "kvHeads": 8,
     "headDim": 128, "vocabSize": 128_256, "maxPositionEmbeddings": 131_072},
]  # fmt: skip
MODELS_AND_ARCHITECTURES: list[tuple[str, Any]] = [
    ("meta-llama/Llama-3.1-8B-Instruct", ABSENT),
    ("meta-llama/Llama-3.1-70B-Instruct", ABSENT),
    ("hugging-quants/Meta-Llama-3.1-70B-Instruct-AWQ-INT4", ABSENT),
    ("Qwen/Qwen2.5-72B-Instruct", ABSENT),
    ("Qwen/Qwen2.5-7B-Instruct-GPTQ-Int4", ABSENT),
    ("mistralai/Mistral-7B-Instruct-v0.3", ABSENT),
    ("org/private-model", "llama-3.1-8b"),
    ("org/private-model-awq", "qwen2.5-72b"),
    *(("org/custom-" + str(i), arch) for i, arch in enumerate(EXPLICIT_ARCHITECTURES)),
    ("org/unknown-model", ABSENT),
]
CORE: dict[tuple[str, ...], list[Any]] = {
    ("gpu", "type"): list(GPUS),
    ("gpu", "count"): [ABSENT, "auto", 1, 2, 4, 8],
    ("engine",): [ABSENT, "vllm", "tgi"],
    ("engineVersion",): [ABSENT, ABSENT, "0.33.0", "0.20.0", "0.11.0", "v0.27", "3.3.7", "3.0.0"],
    ("quantization",): [ABSENT, "none", "fp8", "awq", "gptq", "int8", "nf4", "fp4"],
    ("maxModelLen",): [ABSENT, 128, 2048, 8192, 32768, 131_072],
    ("replicas",): [ABSENT, {"min": 1, "max": 1}, {"min": 0, "max": 3}, {"min": 2, "max": 8}],
    ("slo",): [
        ABSENT,
        {"decodeLatency": {"targetMs": 40}},
        {"decodeLatency": {"targetMs": 5, "percentile": 99, "window": "30s"}},
        {"decodeLatency": {"targetMs": 250.5, "percentile": 50, "window": "1h30m"}},
    ],
    ("autoscaling",): [
        ABSENT,
        {"enabled": False},
        {"prometheusUrl": "http://127.0.0.1:9"},
        {"scaleUpStabilization": "1m", "scaleDownStabilization": "10m"},
    ],
    ("engineArgs",): [
        ABSENT,
        [],
        ["--enable-prefix-caching"],
        ["--max-num-seqs", "8"],
        ["--served-model-name", "my model"],
        ["-e"],
        ["--max-batch-size=4"],
    ],
    ("model", "revision"): [ABSENT, "main", "a" * 40],
    ("model", "tokenSecretRef"): [ABSENT, {"name": "hf-token"}, {"name": "tokens.hf", "key": "HF_TOKEN"}],
}
MUTABLE_PATHS: list[tuple[str, ...]] = [
    *CORE,
    (),
    ("model",),
    ("model", "name"),
    ("model", "architecture"),
    ("model", "architecture", "layers"),
    ("model", "architecture", "attentionHeads"),
    ("model", "architecture", "parameters"),
    ("model", "tokenSecretRef", "name"),
    ("model", "tokenSecretRef", "key"),
    ("gpu",),
    ("replicas", "min"),
    ("replicas", "max"),
    ("slo", "decodeLatency"),
    ("slo", "decodeLatency", "targetMs"),
    ("slo", "decodeLatency", "percentile"),
    ("slo", "decodeLatency", "window"),
    ("autoscaling", "enabled"),
    ("autoscaling", "scaleUpStabilization"),
    ("autoscaling", "prometheusUrl"),
    ("unknownField",),
]
APPEND_ARG = ("engineArgs", "+")


def _put(spec: dict[str, Any], path: tuple[str, ...], value: Any) -> Any:
    """Set `value` at `path`, creating (or replacing non-mapping) parents; the root path replaces the spec."""
    if not path:
        return value
    node = spec
    for key in path[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[path[-1]] = value
    return spec


def _assemble(model: tuple[str, Any], core: tuple[Any, ...], mutations: list[tuple[tuple[str, ...], Any]]) -> Any:
    spec: dict[str, Any] = {"model": {"name": model[0]}}
    if model[1] is not ABSENT:
        spec["model"]["architecture"] = copy.deepcopy(model[1])
    for path, value in zip(CORE, core, strict=True):
        if value is not ABSENT:
            _put(spec, path, copy.deepcopy(value))
    result: Any = spec
    for path, value in mutations:
        if not isinstance(result, dict):
            break
        if path == APPEND_ARG:
            args = result.get("engineArgs")
            result["engineArgs"] = [*(args if isinstance(args, list) else []), value]
        else:
            result = _put(result, path, value)
    return result


mutation = st.one_of(
    st.tuples(st.sampled_from(MUTABLE_PATHS), hostile_value),
    st.tuples(st.just(APPEND_ARG), engine_arg),
)
spec_strategy: st.SearchStrategy[Any] = st.builds(
    _assemble,
    st.sampled_from(MODELS_AND_ARCHITECTURES),
    st.tuples(*(st.sampled_from(values) for values in CORE.values())),
    st.lists(mutation, max_size=3),
)

# ---- independent models of how each engine reads its argv --------------------------------------------------------

VLLM_OWNED = {
    "model": ["--model"],
    "quantization": ["--quantization", "-q"],
    "tensor_parallel": ["--tensor-parallel-size", "-tp"],
    "pipeline_parallel": ["--pipeline-parallel-size", "-pp"],
    "data_parallel": ["--data-parallel-size", "-dp"],
    "port": ["--port"],
    "host": ["--host"],
    "uds": ["--uds"],
    "dtype": ["--dtype"],
    "max_model_len": ["--max-model-len"],
    "revision": ["--revision"],
    "attention_backend": ["--attention-backend"],
    "attention_config": ["--attention-config", "-ac"],
    "gpu_memory_utilization": ["--gpu-memory-utilization"],
    "device_memory_utilization": ["--device-memory-utilization"],
    "download_dir": ["--download-dir"],
    "load_format": ["--load-format"],
    "headless": ["--headless"],
    "config": ["--config"],
    "custom_histogram_buckets": ["--custom-histogram-buckets"],
}
TGI_OWNED_LONG = {flag for flag in adapter(Engine.TGI).owned_flags if flag.startswith("--")}
TGI_SHORTS_WITHOUT_VALUE = {"e"}  # clap: --env is a switch, so a short cluster like -ep9000 goes on after it


class _ParseError(Exception):
    pass


class _CountingParser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse exits on errors; raise instead
        raise _ParseError(message)


def _vllm_parser() -> _CountingParser:
    """argparse with vLLM's owned options (allow_abbrev on, as in vLLM 0.33), recording each time one is set."""
    parser = _CountingParser(add_help=False, allow_abbrev=True, exit_on_error=False)
    for dest, spellings in VLLM_OWNED.items():
        if dest == "headless":
            parser.add_argument(*spellings, dest=dest, action="append_const", const=True)
        else:
            parser.add_argument(*spellings, dest=dest, action="append")
    return parser


VLLM_PARSER = _vllm_parser()
_UNDERSCORES = re.compile(r"(?<=--)[^.]*")


def _vllm_normalized(args: Sequence[str]) -> list[str]:
    """What FlexibleArgumentParser hands argparse: `_` -> `-` in long names, `--a.b=v` -> `--a {json}`."""
    out: list[str] = []
    skip = False
    for index, arg in enumerate(args):
        if skip:
            skip = False
            continue
        if arg.startswith("--"):
            name, eq, value = arg.partition("=")
            arg = _UNDERSCORES.sub(lambda m: m.group(0).replace("_", "-"), name, count=1) + eq + value
        name = arg.partition("=")[0]
        if arg.startswith("-") and "." in name:
            out += [name.split(".", 1)[0], "{}"]
            skip = "=" not in arg and index + 1 < len(args)
            continue
        out.append(arg)
    return out


def vllm_owned_counts(args: Sequence[str]) -> Counter[str]:
    try:
        namespace, _ = VLLM_PARSER.parse_known_args(_vllm_normalized(args))
    except (argparse.ArgumentError, _ParseError) as error:  # e.g. an owned flag smuggled in without its value
        raise AssertionError(f"vLLM would misread {list(args)}: {error}") from error
    return Counter({dest: len(getattr(namespace, dest) or []) for dest in VLLM_OWNED})


def tgi_owned_counts(args: Sequence[str]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for arg in args:
        if arg.startswith("--"):
            name = arg.partition("=")[0]
            if name in TGI_OWNED_LONG:
                counts[name] += 1
        elif arg.startswith("-") and len(arg) > 1:
            for letter in arg[1:]:
                if letter == "p":
                    counts["--port"] += 1  # -p is --port (and, a TGI quirk, --prometheus-port too)
                    break
                if letter not in TGI_SHORTS_WITHOUT_VALUE:
                    break
    return counts


def test_owned_flag_models_cover_the_owned_sets() -> None:
    assert {s for spellings in VLLM_OWNED.values() for s in spellings} == adapter(Engine.VLLM).owned_flags
    assert TGI_OWNED_LONG | {"-p"} == adapter(Engine.TGI).owned_flags
    # the models see through the spellings the engines accept
    assert vllm_owned_counts(["m", "-tp", "1", "--tensor_parallel_size=4"])["tensor_parallel"] == 2
    assert vllm_owned_counts(["m", "--tensor-parallel", "4", "-qawq", "-t", "2"])["tensor_parallel"] == 2
    assert vllm_owned_counts(["m", "--attention-config.backend=X", "-qawq"])["attention_config"] == 1
    assert vllm_owned_counts(["m", "-qawq"])["quantization"] == 1
    assert vllm_owned_counts(["m", "-dpl", "1", "--enforce-eager", "-O3"]).total() == 0
    assert tgi_owned_counts(["--port", "80", "-ep9000", "-p=1"])["--port"] == 3
    assert tgi_owned_counts(["-e", "-g5p", "--max-batch-size=4"]).total() == 0


# ---- the invariants ---------------------------------------------------------------------------------------------


def _check_refusal(result: PlanErrors) -> None:
    assert result.errors, "a refusal must say why"
    for finding in result.errors + result.warnings:
        assert finding.field.startswith("spec"), finding
        assert isinstance(finding.message, str) and finding.message.strip(), finding
    json.dumps([f.to_dict() for f in result.errors])  # status and events can carry it


def _check_plan(spec_dict: dict[str, Any], result: Plan) -> None:
    parsed = parse_spec(spec_dict)
    assert not isinstance(parsed, PlanErrors)
    architecture = resolve_architecture(parsed)
    assert not isinstance(architecture, Finding), architecture
    tp = result.tensor_parallel
    assert tp in TP_CHOICES
    assert architecture.attention_heads % tp == 0
    kv = architecture.kv_heads
    assert kv % tp == 0 or tp % kv == 0
    if parsed.gpu.count != "auto":
        assert tp == parsed.gpu.count
    # memory: the weights fit with room for full-length sequences (4 of them when the planner chose the count)
    assert result.max_model_len <= architecture.max_position_embeddings
    assert result.weights_gib / tp < result.memory_per_gpu_gib
    assert result.kv_cache_gib > 0 and result.kv_cache_tokens >= result.max_model_len
    if parsed.gpu.count == "auto":
        assert result.kv_cache_tokens >= AUTO_MIN_SEQUENCES * result.max_model_len
    assert result.decode_floor_ms > 0 and math.isfinite(result.decode_floor_ms)
    # argv: the engine binary, never a shell; user args appended verbatim, one element each
    assert result.command == ENGINE_BINARIES[result.engine]
    assert not SHELLS & set(result.command)
    user = list(parsed.engine_args)
    assert list(result.args[len(result.args) - len(user) :]) == user
    for element in (*result.command, *result.args):
        assert isinstance(element, str)
        bad = [ch for ch in element if unicodedata.category(ch) in REFUSED_CATEGORIES]
        assert not bad, (element, bad)
    for element in user:
        assert not any(token in element for token in SHELL_SYNTAX), element
    counts = vllm_owned_counts(result.args) if result.engine == "vllm" else tgi_owned_counts(result.args)
    assert all(count <= 1 for count in counts.values()), (counts, user)
    if result.engine == "tgi":
        assert counts["--port"] == 1
    if result.token_secret:
        assert SECRET_NAME.match(result.token_secret[0]), result.token_secret
    # rendering works and keeps the argv intact; the token is only ever a secretKeyRef
    deployment = render(result, Owner("fuzz", "ns", "uid-1"))[0]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert container["command"] == list(result.command) and container["args"] == list(result.args)
    assert container["resources"]["limits"][GPU_RESOURCE] == str(tp)
    for env in container["env"]:
        if env["name"] == "HF_TOKEN":
            assert set(env) == {"name", "valueFrom"} and set(env["valueFrom"]) == {"secretKeyRef"}
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False and security["capabilities"] == {"drop": ["ALL"]}


def check(spec: Any) -> str:
    """Run one spec through parse_spec + plan (+ render); return 'accepted' or 'refused'."""
    parsed = parse_spec(spec)
    result = parsed if isinstance(parsed, PlanErrors) else plan(parsed, "fuzz")
    assert isinstance(result, Plan | PlanErrors), type(result)
    if isinstance(result, PlanErrors):
        _check_refusal(result)
        return "refused"
    _check_plan(spec, result)
    return "accepted"


def test_fuzz_10000_specs_through_the_planner() -> None:
    stats: Counter[str] = Counter()

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=(Phase.explicit, Phase.generate, Phase.shrink),
    )
    @given(spec_strategy)
    def run(spec: dict[str, Any]) -> None:
        stats[check(spec)] += 1

    started = time.monotonic()
    run()
    elapsed = time.monotonic() - started
    print(f"fuzz: {stats.total()} specs in {elapsed:.1f} s: {dict(stats)}")
    assert stats.total() >= EXAMPLES
    # the generator reaches both sides: enough accepted plans to exercise the plan invariants, and refusals
    assert stats["accepted"] >= EXAMPLES // 20, stats
    assert stats["refused"] >= EXAMPLES // 4, stats
    assert elapsed < TIME_LIMIT_S, f"{elapsed:.0f} s"


def test_known_smuggling_spellings_are_refused() -> None:
    base = {"model": {"name": "meta-llama/Llama-3.1-8B-Instruct"}, "gpu": {"type": "H100-80GB"}}
    vllm = [
        ["--tensor_parallel_size=4"],
        ["--tensor-parallel", "4"],
        ["-t", "4"],
        ["-qawq"],
        ["--max_model_len", "100"],
        ["--por", "9999"],
        ["--attention-config.backend=FLASHINFER"],
        ["-ac.backend=FLASHINFER"],
        ["--gpu_memory_utilization=0.99"],
    ]
    for args in vllm:
        result = plan(parse_spec({**base, "engineArgs": args}), "x")  # type: ignore[arg-type]
        assert isinstance(result, PlanErrors), args
        assert result.errors[0].field == "spec.engineArgs[0]" and "cannot be overridden" in result.errors[0].message
    for args in (["-p9000"], ["-ep9000"], ["-p=9000"]):
        result = plan(parse_spec({**base, "engine": "tgi", "engineArgs": args}), "x")  # type: ignore[arg-type]
        assert isinstance(result, PlanErrors), args
    for args in (["-dpl", "1"], ["-O3"], ["--compilation-config.mode=3"], ["-e"], ["--enable-prefix-caching"]):
        engine = "tgi" if args == ["-e"] else "vllm"
        result = plan(parse_spec({**base, "engine": engine, "engineArgs": args}), "x")  # type: ignore[arg-type]
        assert isinstance(result, Plan), (args, result)


def test_object_names_that_cannot_name_a_service_are_refused() -> None:
    spec = parse_spec({"model": {"name": "meta-llama/Llama-3.1-8B-Instruct"}, "gpu": {"type": "H100-80GB"}})
    for name in ("a" * 64, "dotted.name", "1abc", "UPPER", "trailing-"):
        result = plan(spec, name)  # type: ignore[arg-type]
        assert isinstance(result, PlanErrors) and result.errors[0].field == "metadata.name", name
    assert isinstance(plan(spec, "a" * 63), Plan)  # type: ignore[arg-type]
