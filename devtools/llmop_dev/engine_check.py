"""Check rendered engine argv/env against the engines' own definitions (TGI launcher facts, vLLM's parser)."""

from __future__ import annotations

import difflib
import functools
import json
import os
import re
import subprocess
from importlib import resources
from pathlib import Path
from typing import Any

from llmop.catalog.engines import ENGINES, Engine

TGI_FACTS_RESOURCE = "tgi_launcher_3_3_7.json"
VLLM_VERSION = ENGINES[Engine.VLLM].pinned_version  # scripts/vllm-venv.sh pins the same (a unit test checks)
VENV_MARKER = ".llmop-vllm-complete"
ARGCHECK_SCRIPT = "vllm_argcheck.py"

# vLLM spellings that people carry over to TGI; used only to word a better error message.
_TGI_HINTS = {
    "tensor-parallel-size": "num-shard",
    "quantization": "quantize",
    "max-model-len": "max-total-tokens",
    "gpu-memory-utilization": "cuda-memory-fraction",
    "host": "hostname",
    "model": "model-id",
    "served-model-name": "model-id",
    "download-dir": "huggingface-hub-cache",
    "max-num-seqs": "max-concurrent-requests",
    "max-num-batched-tokens": "max-batch-prefill-tokens",
}

_FLOAT_RE = re.compile(r"[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?|inf|infinity|nan)", re.I)
_UINT_MAX = {"u8": 2**8 - 1, "u16": 2**16 - 1, "u32": 2**32 - 1, "u64": 2**64 - 1, "usize": 2**64 - 1}
_SHELL_SPECIAL = re.compile(r"[\s*?\[]")


class EngineCheckUnavailable(RuntimeError):
    """The engine's own checker cannot run here (for vLLM: the cached venv is missing)."""


@functools.cache
def tgi_facts() -> dict[str, Any]:
    """The TGI launcher facts extracted from launcher/src/main.rs at the pinned commit."""
    text = resources.files("llmop.catalog").joinpath(TGI_FACTS_RESOURCE).read_text(encoding="utf-8")
    facts: dict[str, Any] = json.loads(text)
    return facts


@functools.cache
def _tgi_flag_index() -> tuple[dict[str, dict[str, Any]], dict[str, list[dict[str, Any]]], dict[str, Any]]:
    facts = tgi_facts()
    by_long = {f["long"]: f for f in facts["flags"] if f["long"]}
    by_short: dict[str, list[dict[str, Any]]] = {}
    for f in facts["flags"]:
        if f["short"]:
            by_short.setdefault(f["short"], []).append(f)
    by_env = {f["env"]: f for f in facts["flags"] if f["env"]}
    return by_long, by_short, by_env


def _rust_inner(rust_type: str) -> str:
    t = rust_type.replace(" ", "")
    while m := re.fullmatch(r"(?:Option|Vec)<(.*)>", t):
        t = m.group(1)
    return t


def _check_tgi_value(flag: dict[str, Any], value: str, where: str) -> list[str]:
    """Validate one value the way clap's value parser for the field's Rust type would."""
    items = value.split(flag["value_delimiter"]) if flag.get("value_delimiter") else [value]
    errors: list[str] = []
    kind = flag["value_kind"]
    inner = _rust_inner(flag["rust_type"])
    name = f"--{flag['long']}"
    for item in items:
        if kind in ("enum", "bool") and flag.get("values"):
            ok = item in flag["values"]
            want = f"one of {', '.join(flag['values'])}"
        elif kind == "unsigned_int":
            ok = bool(re.fullmatch(r"\+?\d+", item)) and int(item) <= _UINT_MAX.get(inner, 2**64 - 1)
            want = f"a non-negative integer ({inner})"
        elif kind == "int":
            ok, want = bool(re.fullmatch(r"[+-]?\d+", item)), f"an integer ({inner})"
        elif kind == "float":
            ok, want = bool(_FLOAT_RE.fullmatch(item)), f"a number ({inner})"
        else:
            ok, want = True, ""
        if not ok:
            errors.append(f"{where}: invalid value {item!r} for {name}; TGI accepts {want}")
    return errors


def _unknown_tgi_flag(name: str, by_long: dict[str, dict[str, Any]]) -> str:
    msg = f"--{name} is not a text-generation-launcher flag (TGI {tgi_facts()['source']['tag']})"
    hint = _TGI_HINTS.get(name) or next(iter(difflib.get_close_matches(name, list(by_long), n=1)), None)
    if name.replace("_", "-") in by_long:
        hint = name.replace("_", "-")
    return msg + (f"; did you mean --{hint}?" if hint else "")


def parse_tgi_argv(args: list[str]) -> tuple[dict[str, list[str]], list[str]]:
    """Parse launcher argv like clap would: returns ({long: [values]}, errors). Flags get value 'true'."""
    by_long, by_short, _ = _tgi_flag_index()
    seen: dict[str, list[str]] = {}
    errors: list[str] = []
    i = 0
    while i < len(args):
        tok = args[i]
        i += 1
        flag: dict[str, Any] | None = None
        inline: str | None = None
        if tok == "--":
            errors.extend(f"unexpected positional argument {a!r} (the launcher takes none)" for a in args[i:])
            break
        if tok.startswith("--"):
            name, eq, rest = tok[2:].partition("=")
            inline = rest if eq else None
            flag = by_long.get(name)
            if flag is None:
                errors.append(_unknown_tgi_flag(name, by_long))
                # Skip the unknown flag's probable value so it is not reported twice.
                if inline is None and i < len(args) and not args[i].startswith("-"):
                    i += 1
                continue
        elif tok.startswith("-") and len(tok) >= 2 and not _FLOAT_RE.fullmatch(tok):
            short, rest = tok[1], tok[2:]
            inline = (rest[1:] if rest.startswith("=") else rest) or None
            owners = by_short.get(short, [])
            if not owners:
                errors.append(f"-{short} is not a text-generation-launcher option")
                continue
            if len(owners) > 1:
                names = " and ".join("--" + o["long"] for o in owners)
                errors.append(f"-{short} is claimed by both {names} in the launcher; use the long form")
                if inline is None and owners[0]["takes_value"]:
                    i += 1
                continue
            flag = owners[0]
        else:
            errors.append(f"unexpected positional argument {tok!r} (the launcher takes none; use --model-id)")
            continue
        long = flag["long"]
        if not flag["takes_value"]:
            if inline is not None:
                errors.append(f"--{long} is a switch and takes no value (got {inline!r})")
            value = "true"
        elif inline is not None:
            value = inline
        elif i < len(args) and (args[i] == "-" or not args[i].startswith("-")):
            # clap (no allow_hyphen_values / allow_negative_numbers here) never takes "-x" as a value.
            value = args[i]
            i += 1
        else:
            errors.append(f"--{long} needs a value")
            continue
        if long in seen and not flag["multiple"]:
            errors.append(f"--{long} is given more than once (clap rejects that)")
        seen.setdefault(long, []).append(value)
        if flag["takes_value"]:
            errors.extend(_check_tgi_value(flag, value, "argv"))
    return seen, errors


def check_tgi_argv(args: list[str], env: dict[str, str], *, via_entrypoint: bool = True) -> list[str]:
    """Errors for a TGI 3.3.7 launcher argv + container env; [] means the launcher and server accept it.

    `via_entrypoint` means the args go through the image's /tgi-entrypoint.sh, whose unquoted `$@`
    re-splits them on whitespace.
    """
    facts = tgi_facts()
    _, _, by_env = _tgi_flag_index()
    seen, errors = parse_tgi_argv(args)
    entry = facts.get("entrypoint", {})
    if via_entrypoint and entry.get("args_word_split"):
        for a in args:
            if a == "" or _SHELL_SPECIAL.search(a):
                errors.append(
                    f"argument {a!r} would be re-split or glob-expanded by {entry['path']} "
                    f"({entry['exec']!r}); avoid whitespace, '*', '?', '[' and empty arguments"
                )

    # Effective values: argv wins over the clap env fallback.
    effective: dict[str, str] = {}
    for name, value in env.items():
        flag = by_env.get(name)
        if flag is None:
            continue
        if not flag["takes_value"]:
            if value not in ("true", "false"):
                errors.append(
                    f"env {name}={value!r}: clap reads this switch's env value with its bool parser, "
                    f"which accepts only 'true' or 'false'"
                )
            elif value == "true":
                effective[flag["long"]] = "true"
            continue
        errors.extend(_check_tgi_value(flag, value, f"env {name}"))
        effective[flag["long"]] = value
    for long, values in seen.items():
        effective[long] = values[-1]

    errors.extend(_tgi_cross_checks(effective, facts))
    errors.extend(_tgi_server_env_checks(env, facts))
    return errors


def _as_int(value: str | None) -> int | None:
    return int(value) if value is not None and re.fullmatch(r"\+?\d+", value) else None


def _tgi_cross_checks(eff: dict[str, str], facts: dict[str, Any]) -> list[str]:
    """Cross-field checks the launcher (main.rs) and server (cli.py) make before loading anything."""
    errors: list[str] = []
    src = f"{facts['source']['path']}@{facts['source']['commit'][:8]}"
    if "max-input-tokens" in eff and "max-input-length" in eff:
        errors.append(f"--max-input-tokens and --max-input-length are both set ({src}: main.rs rejects it)")
    max_in = _as_int(eff.get("max-input-tokens", eff.get("max-input-length")))
    max_total = _as_int(eff.get("max-total-tokens"))
    if max_in is not None and max_total is not None and max_in >= max_total:
        errors.append(f"max_input_tokens ({max_in}) must be < max_total_tokens ({max_total}) ({src})")
    max_batch_total = _as_int(eff.get("max-batch-total-tokens"))
    if max_total is not None and max_batch_total is not None and max_total > max_batch_total:
        errors.append(f"max_total_tokens ({max_total}) must be <= max_batch_total_tokens ({max_batch_total}) ({src})")
    shards = _as_int(eff.get("num-shard"))
    if shards is not None and shards < 1:
        errors.append(f"--num-shard cannot be < 1 ({src})")
    if eff.get("sharded") == "true" and shards is not None and shards <= 1:
        errors.append(f"--sharded true with --num-shard <= 1 ({src})")
    if eff.get("quantize") == "exl2" and shards is not None and shards > 1:
        errors.append(f"--quantize exl2 does not support sharding (num_shard > 1) ({src})")
    if eff.get("validation-workers") == "0":
        errors.append(f"--validation-workers must be > 0 ({src})")
    if eff.get("ngrok") == "true" and not ("ngrok-authtoken" in eff and "ngrok-edge" in eff):
        errors.append(f"--ngrok needs --ngrok-authtoken and --ngrok-edge ({src})")
    cli = facts.get("server_cli")
    quantize = eff.get("quantize")
    if (
        cli
        and "dtype" in eff
        and quantize in facts["quantize_values"]
        and quantize not in cli["dtype_allowed_with_quantize"]
    ):
        errors.append(
            f"--dtype cannot be combined with --quantize {quantize} "
            f"({cli['path']}:{cli['dtype_quantize_line']} allows it only with "
            f"{', '.join(cli['dtype_allowed_with_quantize'])})"
        )
    return errors


def _tgi_server_env_checks(env: dict[str, str], facts: dict[str, Any]) -> list[str]:
    """Checks on env vars the launcher passes through to the Python server shards."""
    errors: list[str] = []
    senv = facts.get("server_env", {})
    att = senv.get("ATTENTION")
    if att and "ATTENTION" in env and env["ATTENTION"] not in att["values"]:
        errors.append(
            f"env ATTENTION={env['ATTENTION']!r}: the server asserts it is one of "
            f"{', '.join(att['values'])} ({att['path']}:{att['line']})"
        )
    pc = senv.get("PREFIX_CACHING")
    if pc and "PREFIX_CACHING" in env:
        val = env["PREFIX_CACHING"].lower()
        if val not in {*pc["true_values"], "0", "false"}:
            errors.append(
                f"env PREFIX_CACHING={env['PREFIX_CACHING']!r}: the server treats anything but "
                f"{'/'.join(pc['true_values'])} as false; use 1/true or 0/false ({pc['path']}:{pc['line']})"
            )
        allowed = pc.get("requires_attention_in") or []
        if val in pc["true_values"] and env.get("ATTENTION") not in (None, *allowed):
            errors.append(
                f"env PREFIX_CACHING={env['PREFIX_CACHING']!r} with ATTENTION={env['ATTENTION']!r}: the server "
                f"raises 'Prefix caching is only supported with flashinfer' ({pc['path']})"
            )
    ufa = senv.get("USE_FLASH_ATTENTION")
    if ufa and "USE_FLASH_ATTENTION" in env and env["USE_FLASH_ATTENTION"].lower() not in ("true", "false"):
        errors.append(
            f"env USE_FLASH_ATTENTION={env['USE_FLASH_ATTENTION']!r} has no effect: only "
            f"{ufa['disable_value']!r} (case-insensitive) is read ({ufa['path']}:{ufa['line']})"
        )
    return errors


# ---------------------------------------------------------------------------------------------- vLLM


def vllm_venv_dir() -> Path:
    """Where scripts/vllm-venv.sh keeps the vLLM venv."""
    default = Path.home() / ".cache" / "llmop" / f"vllm-{VLLM_VERSION}-venv"
    return Path(os.environ.get("LLMOP_VLLM_VENV") or default)


def vllm_venv_python() -> Path | None:
    """The venv's python if scripts/vllm-venv.sh completed, else None."""
    venv = vllm_venv_dir()
    py = venv / "bin" / "python"
    return py if (venv / VENV_MARKER).is_file() and py.exists() else None


def _argcheck_script() -> Path:
    override = os.environ.get("LLMOP_VLLM_ARGCHECK")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[2] / "scripts" / ARGCHECK_SCRIPT


def check_vllm_argv(cases: list[dict[str, Any]], *, timeout: float = 600.0) -> list[dict[str, Any]]:
    """Check argv/env cases with vLLM 0.33.0's own parser and config classes.

    Each case is {"name", "args" (argv after `vllm serve`), "env"}; returns one result per case:
    {"name", "ok", "errors", "parsed"}. Raises EngineCheckUnavailable when the venv is missing.
    """
    py = vllm_venv_python()
    if py is None:
        raise EngineCheckUnavailable(
            f"vLLM {VLLM_VERSION} venv not found at {vllm_venv_dir()} "
            f"(no {VENV_MARKER}); create it with scripts/vllm-venv.sh"
        )
    script = _argcheck_script()
    if not script.is_file():
        raise EngineCheckUnavailable(f"{script} not found (set LLMOP_VLLM_ARGCHECK)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("VLLM_")}
    env["VLLM_TARGET_DEVICE"] = "cpu"
    proc = subprocess.run(
        [str(py), str(script)],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )
    try:
        results: list[dict[str, Any]] = json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        raise RuntimeError(
            f"{script.name} exited {proc.returncode} without JSON output; stderr:\n{proc.stderr[-4000:]}"
        ) from exc
    return results
