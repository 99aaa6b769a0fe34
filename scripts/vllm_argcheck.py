#!/usr/bin/env python3
"""Validate `vllm serve` argv/env cases (JSON on stdin) with vLLM's own parser and config classes."""

# Runs inside the venv made by scripts/vllm-venv.sh (vllm==0.33.0); it must not import llmop.
# stdin:  [{"name": str, "args": [argv after `vllm serve`], "env": {str: str}}]
# stdout: [{"name", "ok", "errors": [str], "parsed": {...}}]; exit 0 iff every case is ok.

from __future__ import annotations

import contextlib
import copy
import enum
import io
import json
import logging
import os
import sys
from typing import Any

# Without a GPU vLLM cannot infer a platform and building the parser fails; the CPU platform
# builds every config class the checks below need (engines.md section 1.2).
os.environ["VLLM_TARGET_DEVICE"] = "cpu"
os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")
os.environ.pop("HF_HUB_OFFLINE", None)

PARSED_KEYS = (
    "model",
    "served_model_name",
    "revision",
    "download_dir",
    "load_format",
    "quantization",
    "dtype",
    "kv_cache_dtype",
    "attention_backend",
    "flash_attn_version",
    "tensor_parallel_size",
    "pipeline_parallel_size",
    "max_model_len",
    "max_num_seqs",
    "max_num_batched_tokens",
    "gpu_memory_utilization",
    "enable_prefix_caching",
    "enforce_eager",
    "trust_remote_code",
    "host",
    "port",
    "uvicorn_log_level",
    "quantization_min_capability",
    "custom_histogram_buckets",
)


def _msg(exc: BaseException) -> str:
    """One-line message; pydantic's multi-line errors are squeezed and its help link dropped."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip() and "errors.pydantic.dev" not in ln]
    return " | ".join(lines) or type(exc).__name__


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)


class Checker:
    """Holds the parser and vLLM modules; builds them once for all cases."""

    def __init__(self) -> None:
        with contextlib.redirect_stdout(sys.stderr):
            import vllm
            import vllm.envs as envs
            from vllm.config import AttentionConfig, CacheConfig
            from vllm.engine.arg_utils import AsyncEngineArgs
            from vllm.entrypoints.common.cli_args import make_arg_parser, validate_parsed_serve_args
            from vllm.model_executor.layers import quantization as quant
            from vllm.model_executor.model_loader import _LOAD_FORMAT_TO_MODEL_LOADER
            from vllm.utils.argparse_utils import FlexibleArgumentParser

            self.version: str = vllm.__version__
            self.envs = envs
            self.AttentionConfig = AttentionConfig
            self.CacheConfig = CacheConfig
            self.AsyncEngineArgs = AsyncEngineArgs
            self.validate_parsed_serve_args = validate_parsed_serve_args
            self.quant = quant
            self.load_formats = sorted(_LOAD_FORMAT_TO_MODEL_LOADER)
            self.parser = make_arg_parser(FlexibleArgumentParser(prog="vllm serve"))

    # ------------------------------------------------------------------------------------- env

    def check_env(self, env: dict[str, str]) -> list[str]:
        """Every VLLM_* var must be one vLLM knows, and its getter must accept the value."""
        errors: list[str] = []
        known = self.envs.environment_variables
        for name, value in sorted(env.items()):
            if not name.startswith("VLLM_"):
                continue
            if name not in known:
                errors.append(
                    f"env {name}: unknown vLLM environment variable in vLLM {self.version} "
                    f"(vllm serve warns; --fail-on-environ-validation makes it fatal)"
                )
                continue
            saved = os.environ.get(name)
            os.environ[name] = value
            try:
                known[name]()
            except Exception as exc:
                errors.append(f"env {name}={value!r}: rejected by vllm.envs ({type(exc).__name__}: {_msg(exc)})")
            finally:
                if saved is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = saved
        return errors

    # ------------------------------------------------------------------------------------ argv

    def parse(self, args: list[str]) -> tuple[Any, list[str]]:
        err = io.StringIO()
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(err):
                ns = self.parser.parse_args(list(args))
        except SystemExit:
            lines = [ln.strip() for ln in err.getvalue().splitlines() if ln.strip()]
            first = next((i for i, ln in enumerate(lines) if "error:" in ln), max(len(lines) - 1, 0))
            kept = [ln for ln in lines[first:] if "errors.pydantic.dev" not in ln]
            return None, ["argparse: " + (" | ".join(kept) or "parse error")]
        except Exception as exc:
            return None, [f"argparse: {type(exc).__name__}: {_msg(exc)}"]
        return ns, []

    def check_values(self, ns: Any) -> tuple[list[str], dict[str, Any]]:
        """Checks that vLLM makes only after parsing (the parser takes any string for these)."""
        errors: list[str] = []
        extra: dict[str, Any] = {}

        try:
            self.validate_parsed_serve_args(ns)
        except Exception as exc:
            errors.append(f"serve args: {_msg(exc)}")

        if getattr(ns, "model_tag", None) is not None:
            ns.model = ns.model_tag
        try:
            with contextlib.redirect_stdout(sys.stderr):
                engine_args = self.AsyncEngineArgs.from_cli_args(ns)
        except Exception as exc:
            errors.append(f"engine args: {type(exc).__name__}: {_msg(exc)}")
            return errors, extra

        q = engine_args.quantization
        if q is not None:
            try:
                qcls = self.quant.get_quantization_config(q)
            except Exception as exc:
                errors.append(f"--quantization {q!r}: {_msg(exc)}")
            else:
                errors += self._check_quant_dtype(q, qcls, engine_args.dtype, extra)
                if q in self.quant.DEPRECATED_QUANTIZATION_METHODS and not engine_args.allow_deprecated_quantization:
                    errors.append(
                        f"--quantization {q!r} is deprecated in vLLM {self.version} and needs "
                        f"--allow-deprecated-quantization (ModelConfig raises otherwise)"
                    )

        try:
            self.CacheConfig(
                block_size=engine_args.block_size,
                gpu_memory_utilization=engine_args.gpu_memory_utilization,
                kv_cache_memory_bytes=engine_args.kv_cache_memory_bytes,
                cache_dtype=engine_args.kv_cache_dtype,
                num_gpu_blocks_override=engine_args.num_gpu_blocks_override,
                enable_prefix_caching=(
                    True if engine_args.enable_prefix_caching is None else engine_args.enable_prefix_caching
                ),
                prefix_caching_hash_algo=engine_args.prefix_caching_hash_algo,
            )
        except Exception as exc:
            errors.append(f"cache config (--kv-cache-dtype {engine_args.kv_cache_dtype!r}, ...): {_msg(exc)}")

        if getattr(engine_args, "custom_histogram_buckets", None) is not None:
            try:  # the validators EngineArgs.create_engine_config runs on it (known families, increasing bounds)
                from vllm.config.observability import ObservabilityConfig

                ObservabilityConfig(custom_histogram_buckets=engine_args.custom_histogram_buckets)
            except Exception as exc:
                errors.append(f"--custom-histogram-buckets: {_msg(exc)}")

        # Same merge as EngineArgs.create_engine_config (vllm/engine/arg_utils.py, "Attention config overrides").
        attention = copy.deepcopy(engine_args.attention_config)
        try:
            if engine_args.attention_backend is not None:
                if attention.backend is not None:
                    raise ValueError("attention_backend and attention_config.backend are mutually exclusive")
                attention.backend = self.AttentionConfig.validate_backend_before(engine_args.attention_backend)
            fields = {
                k: getattr(attention, k)
                for k in type(attention).__dataclass_fields__
                if type(attention).__dataclass_fields__[k].init
            }
            attention = self.AttentionConfig(**fields)
            extra["attention_backend"] = attention.backend
            extra["flash_attn_version"] = attention.flash_attn_version
        except Exception as exc:
            errors.append(f"attention config (--attention-backend {engine_args.attention_backend!r}): {_msg(exc)}")

        load_format = engine_args.load_format
        if isinstance(load_format, str) and load_format not in self.load_formats:
            errors.append(
                f"--load-format {load_format!r} is not a vLLM {self.version} model loader "
                f"(known: {', '.join(self.load_formats)})"
            )
        return errors, extra

    def _check_quant_dtype(self, q: str, qcls: Any, dtype: Any, extra: dict[str, Any]) -> list[str]:
        """VllmConfig._get_quantization_config's dtype check, and the method's minimum GPU capability."""
        from vllm.config.model import str_dtype_to_torch_dtype

        try:
            extra["quantization_min_capability"] = qcls.get_min_capability()
            supported = qcls.get_supported_act_dtypes()
        except Exception:  # configs that need a checkpoint to answer
            return []
        want = str_dtype_to_torch_dtype(dtype) if isinstance(dtype, str) else None
        if want is not None and want not in supported:
            names = ", ".join(str(d).removeprefix("torch.") for d in supported)
            return [f"--dtype {dtype} is not supported for --quantization {q} (supported: {names})"]
        return []

    def check_case(self, case: dict[str, Any]) -> dict[str, Any]:
        name = str(case.get("name", ""))
        args = case.get("args") or []
        env = case.get("env") or {}
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            return {"name": name, "ok": False, "errors": ["args must be a list of strings"], "parsed": {}}
        errors = self.check_env({str(k): str(v) for k, v in env.items()})
        ns, parse_errors = self.parse(args)
        errors += parse_errors
        parsed: dict[str, Any] = {}
        if ns is not None:
            value_errors, extra = self.check_values(ns)
            errors += value_errors
            raw = vars(ns)
            for key in PARSED_KEYS:
                if key in extra:
                    parsed[key] = _jsonable(extra[key])
                elif key in raw:
                    parsed[key] = _jsonable(raw[key])
        return {"name": name, "ok": not errors, "errors": errors, "parsed": parsed}


def main() -> int:
    """Read cases from stdin, print results, exit 0 iff all are ok."""
    cases = json.load(sys.stdin)
    if not isinstance(cases, list):
        print(json.dumps({"error": "stdin must be a JSON list of cases"}))
        return 2
    logging.disable(logging.WARNING)
    checker = Checker()
    results = [checker.check_case(c) for c in cases]
    json.dump(results, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
