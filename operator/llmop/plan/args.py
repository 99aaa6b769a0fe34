"""Engine command lines: the operator-owned flags per engine, and the guard on user engineArgs."""

from __future__ import annotations

import re
from dataclasses import dataclass

from llmop.catalog.engines import ENGINES, AttentionChoice, Engine
from llmop.plan.types import Finding

MODEL_CACHE_PATH = "/models"

# Flags llmop decides; a user may not override them through engineArgs (aliases included).
OWNED_FLAGS: dict[Engine, frozenset[str]] = {
    Engine.VLLM: frozenset(
        {
            "--model",
            "--quantization",
            "-q",
            "--tensor-parallel-size",
            "-tp",
            "--pipeline-parallel-size",
            "-pp",
            "--data-parallel-size",
            "-dp",
            "--port",
            "--host",
            "--uds",
            "--dtype",
            "--max-model-len",
            "--revision",
            "--attention-backend",
            "--attention-config",
            "-ac",
            "--gpu-memory-utilization",
            "--device-memory-utilization",
            "--download-dir",
            "--load-format",
            "--config",  # a YAML file of options could set any owned flag
            "--headless",
        }
    ),
    Engine.TGI: frozenset(
        {
            "--model-id",
            "--quantize",
            "--num-shard",
            "--sharded",
            "--port",
            "-p",
            "--hostname",
            "--dtype",
            "--max-total-tokens",
            "--max-input-tokens",
            "--max-input-length",
            "--revision",
            "--huggingface-hub-cache",
            "--prometheus-port",
        }
    ),
}

_SHELL_METACHARACTERS = re.compile(r"\$\(|`|;|\|\||&&")
_FLAG = re.compile(r"^--?[A-Za-z][A-Za-z0-9_.-]*(=.*)?$")


@dataclass(frozen=True)
class EngineLaunch:
    """Inputs to the engine command line that the planner has decided."""

    engine: Engine
    model: str
    revision: str | None
    tensor_parallel: int
    max_model_len: int
    dtype: str
    quantization_flag: str | None
    attention: AttentionChoice
    gpu_memory_utilization: float


# How the engines' parsers read a flag, so that no spelling of an owned flag gets through:
# vLLM 0.33 (FlexibleArgumentParser over argparse) turns `_` into `-` in flag names (`--tensor_parallel_size`), reads
# `--attention-config.backend=X` and `-ac.backend=X` as keys of `--attention-config`, takes an unambiguous prefix of a
# flag for the flag (allow_abbrev: `--tensor-parallel 4`, `-t 4`) and a one-letter short flag with its value attached
# (`-qawq`). TGI's launcher (clap 4) takes a short flag with its value attached (`-p9000`) and clusters of short
# flags (`-ep9000`: --env, then --port 9000).
_TGI_SHORT_FLAGS_WITHOUT_VALUE = frozenset({"e"})  # --env; a cluster goes on after it


def owned_flag_set_by(engine: Engine, arg: str) -> str | None:
    """The operator-owned flag that the engine's parser would set from `arg`, or None."""
    owned = OWNED_FLAGS[engine]
    name = arg.split("=", 1)[0]
    if name in owned:
        return name
    if not name.startswith("-") or len(name) < 2:
        return None
    if engine == Engine.VLLM:
        if name.startswith("--"):
            long = "--" + name[2:].split(".", 1)[0].replace("_", "-")
            if len(long) <= 2:
                return None
            return next((flag for flag in sorted(owned) if flag.startswith("--") and flag.startswith(long)), None)
        short = name.split(".", 1)[0]
        for flag in sorted(owned):
            if flag.startswith("--"):
                continue
            if flag.startswith(short) or (len(flag) == 2 and short.startswith(flag)):
                return flag
        return None
    if name.startswith("--"):
        return None
    for letter in arg[1:]:
        if f"-{letter}" in owned:
            return f"-{letter}"
        if letter not in _TGI_SHORT_FLAGS_WITHOUT_VALUE:
            return None
    return None


def _shown(arg: str, limit: int = 80) -> str:
    text = repr(arg)
    return text if len(text) <= limit else f"{text[: limit - 5]}...{text[-1]} ({len(arg)} characters)"


def check_engine_args(engine: Engine, engine_args: list[str]) -> list[Finding]:
    """Refuse owned flags (in any spelling the engine accepts), shell metacharacters and stray positionals."""
    findings: list[Finding] = []
    previous_was_flag = False
    for index, arg in enumerate(engine_args):
        where = f"spec.engineArgs[{index}]"
        if _SHELL_METACHARACTERS.search(arg):
            findings.append(
                Finding(
                    where,
                    f"{_shown(arg)} contains shell syntax; engine args are passed as an argv, never to a shell",
                )
            )
            previous_was_flag = False
            continue
        if arg.startswith("-"):
            if not _FLAG.match(arg):
                findings.append(Finding(where, f"{_shown(arg)} is not a flag of the form --name or --name=value"))
            flag = owned_flag_set_by(engine, arg)
            if flag is not None:
                spelled = arg.split("=", 1)[0]
                read_as = "" if spelled == flag else f" ({_shown(spelled)} is read as {flag})"
                findings.append(
                    Finding(
                        where,
                        f"{flag} is set by llmop from the spec and cannot be overridden{read_as}; {_owned_hint(flag)}",
                    )
                )
            previous_was_flag = "=" not in arg
            continue
        if not previous_was_flag:
            findings.append(Finding(where, f"{_shown(arg)} is a value with no flag before it; write --flag value"))
        previous_was_flag = False
    return findings


_FIELD_FOR_FLAG = {
    "--quantization": "spec.quantization",
    "-q": "spec.quantization",
    "--quantize": "spec.quantization",
    "--tensor-parallel-size": "spec.gpu.count",
    "-tp": "spec.gpu.count",
    "--num-shard": "spec.gpu.count",
    "--sharded": "spec.gpu.count",
    "--max-model-len": "spec.maxModelLen",
    "--max-total-tokens": "spec.maxModelLen",
    "--max-input-tokens": "spec.maxModelLen",
    "--max-input-length": "spec.maxModelLen",
    "--model": "spec.model.name",
    "--model-id": "spec.model.name",
    "--revision": "spec.model.revision",
}


def _owned_hint(flag: str) -> str:
    field = _FIELD_FOR_FLAG.get(flag)
    return f"set {field} instead" if field else "remove it (llmop derives it from the GPU and the plan)"


def build_command(launch: EngineLaunch) -> tuple[tuple[str, ...], tuple[str, ...], dict[str, str]]:
    """Container command, args and env for the engine (before user engineArgs are appended)."""
    info = ENGINES[launch.engine]
    env = {"HF_HOME": MODEL_CACHE_PATH, **dict(launch.attention.env)}
    if launch.engine == Engine.VLLM:
        args = [launch.model]
        if launch.revision:
            args += ["--revision", launch.revision]
        args += [
            "--host",
            "0.0.0.0",
            "--port",
            str(info.port),
            "--tensor-parallel-size",
            str(launch.tensor_parallel),
            "--max-model-len",
            str(launch.max_model_len),
            "--dtype",
            launch.dtype,
            "--gpu-memory-utilization",
            f"{launch.gpu_memory_utilization:.2f}",
        ]
        if launch.quantization_flag:
            args += ["--quantization", launch.quantization_flag]
        args += list(launch.attention.args)
        return info.command, tuple(args), env
    args = ["--model-id", launch.model]
    if launch.revision:
        args += ["--revision", launch.revision]
    args += [
        "--hostname",
        "0.0.0.0",
        "--port",
        str(info.port),
        "--num-shard",
        str(launch.tensor_parallel),
        "--max-input-tokens",
        str(launch.max_model_len - 1),
        "--max-total-tokens",
        str(launch.max_model_len),
    ]
    # TGI: `--dtype` "cannot be used with --quantize" (launcher/src/main.rs Args docs).
    if launch.quantization_flag:
        args += ["--quantize", launch.quantization_flag]
    else:
        args += ["--dtype", launch.dtype]
    args += list(launch.attention.args)
    return info.command, tuple(args), env
