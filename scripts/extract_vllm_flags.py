#!/usr/bin/env python3
"""Walk vLLM's own `vllm serve` argument parser and write its flag table (option strings, arity, types) as JSON."""

# Runs inside the venv made by scripts/vllm-venv.sh (vllm==0.33.0); it must not import llmop. Regenerate with:
#   VLLM_TARGET_DEVICE=cpu "$(bash scripts/vllm-venv.sh)" scripts/extract_vllm_flags.py \
#       -o operator/llmop/catalog/vllm_0_33_0.json
# The parser is built as scripts/vllm_argcheck.py builds it:
# make_arg_parser(FlexibleArgumentParser(prog="vllm serve")) under VLLM_TARGET_DEVICE=cpu.

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import inspect
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

os.environ["VLLM_TARGET_DEVICE"] = "cpu"
os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")

_BUILTIN_TYPES = {int: "int", float: "float", str: "str"}


def _closure(func: Any) -> dict[str, Any]:
    cells = func.__closure__ or ()
    return {name: cell.cell_contents for name, cell in zip(func.__code__.co_freevars, cells, strict=True)}


def describe_type(func: Any) -> dict[str, Any]:
    """The value kind of an action's `type` callable: int/float/str/json/human_int(_or_auto), how vLLM wraps it
    (`optional`: "" and "None" mean None; `parse`: a ValueError becomes "Value x cannot be converted to ...") and a
    normalisation applied before `choices` are checked. Unknown helpers stop the extraction (map them here)."""
    from vllm.utils import argparse_utils

    if func is None:
        return {"type": "str", "converter": "str"}
    if func in _BUILTIN_TYPES:
        return {"type": _BUILTIN_TYPES[func], "converter": _BUILTIN_TYPES[func]}
    if func is json.loads:
        return {"type": "json", "converter": "json.loads"}
    if func is argparse_utils.human_readable_int:
        return {"type": "human_int", "converter": "human_readable_int"}
    if func is argparse_utils.human_readable_int_or_auto:
        return {"type": "human_int_or_auto", "converter": "human_readable_int_or_auto"}
    name = getattr(func, "__qualname__", repr(func))
    if name.endswith(("optional_type.<locals>._optional_type", "parse_type.<locals>._parse_type")):
        inner = describe_type(_closure(func)["return_type"])
        wrapper = "optional" if "optional_type" in name else "parse"
        out = {**inner, "converter": f"{wrapper}({inner['converter']})"}
        if wrapper == "optional":
            out["none_ok"] = True
        return out
    if name.endswith("parse_dataclass"):  # pydantic TypeAdapter(config).validate_json: unknown keys are refused
        config = (func.__defaults__ or (None,))[0]
        keys = sorted(f.name for f in dataclasses.fields(config) if f.init)
        return {"type": "json", "converter": "parse_dataclass", "config": config.__name__, "keys": keys}
    if name == "union_dict_and_str":
        return {"type": "str", "converter": "union_dict_and_str"}  # a JSON object when it looks like one
    if name == "parse_reasoning_parser":
        return {"type": "str", "converter": "parse_reasoning_parser"}
    if name.endswith("<lambda>"):
        source = inspect.getsource(func)
        if 's.lower().replace("-", "_")' in source:
            return {"type": "str", "converter": "lower_snake", "normalize": "lower_snake"}
        if "device_id" in source:
            return {"type": "str", "converter": "device_ids"}
    raise SystemExit(f"unknown type callable {name} ({getattr(func, '__module__', '?')}); map it in describe_type")


def _action_kind(action: argparse.Action) -> str:
    kinds = {
        argparse._StoreAction: "store",
        argparse._StoreTrueAction: "store_true",
        argparse._StoreFalseAction: "store_false",
        argparse._AppendAction: "append",
        argparse.BooleanOptionalAction: "boolean_optional",
    }
    for cls, kind in kinds.items():
        if type(action) is cls:
            return kind
    if isinstance(action, argparse.BooleanOptionalAction):
        return "boolean_optional"  # vLLM's EnableDisableAction: --enable-x/--disable-x (and hidden --no-...)
    return type(action).__name__


def extract(parser: argparse.ArgumentParser, version: str) -> dict[str, Any]:
    """Every option string the parser registers (hidden ones included), grouped by action."""
    by_action: dict[int, list[str]] = {}
    for option, action in parser._option_string_actions.items():
        by_action.setdefault(id(action), []).append(option)
    deprecated = {id(a) for a in getattr(parser, "_deprecated", ())}
    flags: list[dict[str, Any]] = []
    for action in parser._actions:
        if not action.option_strings or isinstance(action, argparse._HelpAction):
            continue
        options = by_action[id(action)]
        kind = _action_kind(action)
        switch = action.nargs == 0
        flag: dict[str, Any] = {
            "options": list(action.option_strings),  # as argparse names the flag in its errors
            "hidden_options": [o for o in options if o not in action.option_strings],  # accepted, not in --help
            "dest": action.dest,
            "action": kind,
            "nargs": action.nargs,
            "switch": switch,
            "repeatable": kind == "append",
        }
        if not switch:
            flag.update(describe_type(action.type))
        else:
            flag["type"] = "bool"
        if isinstance(action, argparse.BooleanOptionalAction):
            negative = getattr(action, "negative_option_strings", None)
            if negative is None:
                negative = {o for o in options if o.startswith("--no-")}
            flag["negative_options"] = sorted(negative)
        if action.choices is not None:
            flag["choices"] = [str(c) for c in action.choices if c is not None]
        if id(action) in deprecated or getattr(action, "deprecated", False):
            flag["deprecated"] = True
        flags.append(flag)
    return {
        "source": {
            "engine": "vllm",
            "version": version,
            "parser": 'vllm.entrypoints.common.cli_args.make_arg_parser(FlexibleArgumentParser(prog="vllm serve"))',
            "python": ".".join(map(str, sys.version_info[:3])),
            "extractor": "scripts/extract_vllm_flags.py",
            "command": 'VLLM_TARGET_DEVICE=cpu "$(bash scripts/vllm-venv.sh)" scripts/extract_vllm_flags.py '
            "-o operator/llmop/catalog/vllm_0_33_0.json",
        },
        "parser": {
            "allow_abbrev": parser.allow_abbrev,
            "underscores_to_dashes": True,  # FlexibleArgumentParser.parse_args: `_` -> `-` before the first `.`
            "dotted_json_keys": True,  # --json-arg.key=value becomes --json-arg '{"key": value}'
            "negative_numbers_as_values": not parser._has_negative_number_optionals,
            "repeated": "last",  # argparse store: the last occurrence wins, silently
        },
        "flags": flags,
    }


def dumps(doc: dict[str, Any]) -> str:
    """JSON with one line per flag (reviewable diffs when the version changes)."""
    head = {k: v for k, v in doc.items() if k != "flags"}
    text = json.dumps(head, indent=1)[:-2]
    rows = ",\n".join("  " + json.dumps(flag) for flag in doc["flags"])
    return f'{text},\n "flags": [\n{rows}\n ]\n}}\n'


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("-o", "--output", help="write JSON here instead of stdout")
    ns = ap.parse_args(argv)
    logging.disable(logging.WARNING)
    with contextlib.redirect_stdout(sys.stderr):
        import vllm
        from vllm.entrypoints.common.cli_args import make_arg_parser
        from vllm.utils.argparse_utils import FlexibleArgumentParser

        parser = make_arg_parser(FlexibleArgumentParser(prog="vllm serve"))
    doc = extract(parser, vllm.__version__)
    out = dumps(doc)
    if ns.output:
        Path(ns.output).write_text(out)
    else:
        sys.stdout.write(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
