"""Engine flag tables: every flag an engine version's own parser accepts, its arity, type and choices (catalog JSON)."""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from enum import StrEnum
from importlib import resources
from typing import Any


class Style(StrEnum):
    """The parser library an engine uses; it decides spellings, value rules and error wording."""

    ARGPARSE = "argparse"  # vLLM (FlexibleArgumentParser)
    CLAP = "clap"  # TGI's text-generation-launcher (clap 4 derive)


class Arity(StrEnum):
    NONE = "none"  # a switch
    ONE = "one"
    OPTIONAL = "optional"  # argparse nargs='?'
    MANY = "many"  # argparse nargs='+'


@dataclass(frozen=True)
class Flag:
    """One flag of an engine's parser."""

    name: str  # the canonical spelling, e.g. --max-num-seqs
    options: tuple[str, ...]  # spellings as the parser names the flag in errors (e.g. --x/--no-x)
    spellings: tuple[str, ...]  # every option string the parser accepts (hidden ones included)
    dest: str
    arity: Arity
    kind: str  # int | uint | float | str | bool | json | human_int | human_int_or_auto | enum
    choices: tuple[str, ...] | None = None
    repeatable: bool = False  # argparse append / clap Vec: may be given more than once
    delimiter: str | None = None  # clap value_delimiter: each item is checked
    converter: str = ""  # the type callable, for argparse's wording
    none_ok: bool = False  # vLLM optional_type: "" and "None" mean None
    normalize: str | None = None  # "lower_snake": vLLM lower-cases and turns - into _ before choices
    int_max: int | None = None  # clap: the Rust integer type's range
    value_name: str = ""  # clap's <VALUE_NAME>
    negatives: tuple[str, ...] = ()  # --no-x / --disable-x spellings of a switch
    config: str = ""  # vLLM: the config class a JSON value is validated against
    keys: tuple[str, ...] | None = None  # ... and the keys it takes (pydantic refuses others)

    @property
    def shown(self) -> str:
        """How the engine's parser names the flag in its messages."""
        if self.arity is Arity.NONE or not self.value_name:
            return "/".join(self.options)
        return f"{self.name} <{self.value_name}>"


@dataclass(frozen=True)
class FlagTable:
    """The flags of one engine version, from its own parser (catalog/*.json)."""

    engine: str
    version: str
    style: Style
    flags: tuple[Flag, ...]
    source: str
    abbreviations: bool = False  # argparse allow_abbrev: an unambiguous prefix names the flag
    underscores: bool = False  # FlexibleArgumentParser reads `_` as `-` in long names
    dotted_keys: bool = False  # --json-flag.key=value
    negative_values: bool = False  # argparse: "-1" is a value, not a flag
    repeats_error: bool = False  # clap refuses a repeated flag; argparse keeps the last value
    _by_spelling: dict[str, Flag] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for flag in self.flags:
            for spelling in flag.spellings:
                self._by_spelling[spelling] = flag

    def get(self, spelling: str) -> Flag | None:
        return self._by_spelling.get(spelling)

    @property
    def spellings(self) -> tuple[str, ...]:
        return tuple(self._by_spelling)

    def by_dest(self, dest: str) -> Flag | None:
        return next((flag for flag in self.flags if flag.dest == dest), None)


_NEGATIVE_NUMBER = re.compile(r"^-\d+$|^-\d*\.\d+$")
_RUST_INT_MAX = {"u8": 2**8 - 1, "u16": 2**16 - 1, "u32": 2**32 - 1, "u64": 2**64 - 1, "usize": 2**64 - 1}
_RUST_FLOAT = re.compile(r"[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?|inf|infinity|nan)", re.I)
_HUMAN_INT = re.compile(r"(\d+(?:\.\d+)?)([kKmMgGtT])")


def is_negative_number(arg: str) -> bool:
    return bool(_NEGATIVE_NUMBER.match(arg))


def human_int(value: str) -> int | None:
    """vLLM's human_readable_int: 25.6k -> 25600, 1K -> 1024 (no decimals with binary suffixes), else int()."""
    text = value.strip()
    match = _HUMAN_INT.fullmatch(text)
    if match:
        number, suffix = str(match.group(1)), str(match.group(2))
        if suffix in "kmgt":
            return int(float(number) * 10 ** (3 * ("kmgt".index(suffix) + 1)))
        if "." in number:
            return None
        return int(number) << (10 * ("KMGT".index(suffix) + 1))
    try:
        return int(text)
    except ValueError:
        return None


def value_error(table: FlagTable, flag: Flag, value: str) -> str | None:
    """The engine's own complaint about `value` for `flag`, or None when its parser takes it."""
    if table.style is Style.CLAP:
        items = value.split(flag.delimiter) if flag.delimiter else [value]
        return next((error for item in items if (error := _clap_item_error(flag, item))), None)
    return _argparse_error(flag, value)


def _clap_item_error(flag: Flag, item: str) -> str | None:
    head = f"invalid value '{item}' for '{flag.shown}'"
    if flag.choices is not None and item not in flag.choices:
        return f"{head} [possible values: {', '.join(flag.choices)}]"
    if flag.kind == "uint":
        if item == "":
            return f"{head}: cannot parse integer from empty string"
        if not re.fullmatch(r"\+?\d+", item):
            return f"{head}: invalid digit found in string"
        if flag.int_max is not None and int(item) > flag.int_max:
            return f"{head}: {int(item)} is not in 0..={flag.int_max}"
    if flag.kind == "int" and not re.fullmatch(r"[+-]?\d+", item):
        return f"{head}: invalid digit found in string"
    if flag.kind == "float" and not _RUST_FLOAT.fullmatch(item):
        return f"{head}: invalid float literal"
    return None


def _argparse_error(flag: Flag, value: str) -> str | None:
    head = f"argument {flag.shown}:"
    if flag.none_ok and value in ("", "None"):
        return None
    converted: Any = value
    ok = True
    if flag.kind == "int":
        try:
            converted = int(value)
        except ValueError:
            ok = False
    elif flag.kind == "float":
        try:
            converted = float(value)
        except ValueError:
            ok = False
    elif flag.kind in ("human_int", "human_int_or_auto"):
        auto = flag.kind == "human_int_or_auto" and value.strip().lower() in ("auto", "-1")
        converted = -1 if auto else human_int(value)
        ok = converted is not None
    elif flag.kind == "json":
        ok = _json_ok(value)
        unknown = _unknown_key(flag, value) if ok else None
        if unknown:
            return f"{head} 1 validation error for {flag.config} | {unknown} | Unexpected keyword argument"
    if not ok:
        base = flag.converter.removeprefix("optional(").removeprefix("parse(").rstrip(")")
        if flag.converter in ("int", "float"):
            return f"{head} invalid {flag.converter} value: '{value}'"
        if flag.kind in ("int", "float"):
            return f"{head} Value {value} cannot be converted to <class '{flag.kind}'>."
        if flag.kind == "json":
            return f"{head} invalid JSON value: '{value}' ({base})"
        return f"{head} invalid {base} value: '{value}'"
    if flag.choices is not None:
        shown = str(converted)
        if flag.normalize == "lower_snake":
            shown = value.lower().replace("-", "_")
        if shown not in flag.choices:
            listed = ", ".join(repr(choice) for choice in flag.choices)
            return f"{head} invalid choice: {shown!r} (choose from {listed})"
    return None


def _unknown_key(flag: Flag, value: str) -> str | None:
    """The first top-level key of a JSON object that the flag's config class does not have."""
    if flag.keys is None:
        return None
    try:
        parsed = json.loads(value)
    except ValueError:
        return None
    if not isinstance(parsed, dict):
        return None
    return next((str(key) for key in parsed if key not in flag.keys), None)


def _json_ok(value: str) -> bool:
    """vLLM expands 80m / 2K inside JSON before parsing (arg_utils._expand_json_human_readable_numbers)."""
    parts = re.split(r'("(?:[^"\\]|\\.)*")', value)
    for index in range(0, len(parts), 2):
        parts[index] = re.sub(r"\b\d+(?:\.\d+)?[kKmMgGtT]\b", lambda m: str(human_int(m.group()) or 0), parts[index])
    try:
        json.loads("".join(parts))
    except ValueError:
        return False
    return True


def _argparse_flag(row: dict[str, Any]) -> Flag:
    nargs = row["nargs"]
    arity = {0: Arity.NONE, None: Arity.ONE, "?": Arity.OPTIONAL, "+": Arity.MANY}.get(nargs, Arity.MANY)
    options = tuple(row["options"])
    return Flag(
        name=next((o for o in options if o.startswith("--")), options[0]),
        options=options,
        spellings=options + tuple(row.get("hidden_options", ())),
        dest=row["dest"],
        arity=arity,
        kind=row["type"],
        choices=tuple(row["choices"]) if "choices" in row else None,
        repeatable=bool(row.get("repeatable")),
        converter=row.get("converter", ""),
        none_ok=bool(row.get("none_ok")),
        normalize=row.get("normalize"),
        negatives=tuple(row.get("negative_options", ())),
        config=row.get("config", ""),
        keys=tuple(row["keys"]) if "keys" in row else None,
    )


def _clap_flag(row: dict[str, Any]) -> Flag:
    inner = re.sub(r"^(?:Option<|Vec<)+|>+$", "", row["rust_type"].replace(" ", ""))
    kind = {"unsigned_int": "uint", "string": "str"}.get(row["value_kind"], row["value_kind"])
    long = f"--{row['long']}"
    spellings = (long, f"-{row['short']}") if row["short"] else (long,)
    return Flag(
        name=long,
        options=(long,),
        spellings=spellings,
        dest=row["field"],
        arity=Arity.ONE if row["takes_value"] else Arity.NONE,
        kind=kind,
        choices=tuple(row["values"]) if row["values"] else None,
        repeatable=bool(row["multiple"]),
        delimiter=row["value_delimiter"],
        converter=inner,
        int_max=_RUST_INT_MAX.get(inner),
        value_name=row["field"].upper() if row["takes_value"] else "",
    )


def _resource(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(resources.files("llmop.catalog").joinpath(name).read_text(encoding="utf-8"))
    return doc


@functools.cache
def argparse_table(resource: str) -> FlagTable:
    """A table written by scripts/extract_vllm_flags.py from vLLM's own parser."""
    doc = _resource(resource)
    source, parser = doc["source"], doc["parser"]
    return FlagTable(
        engine=source["engine"],
        version=source["version"],
        style=Style.ARGPARSE,
        flags=tuple(_argparse_flag(row) for row in doc["flags"]),
        source=f"{resource} ({source['extractor']})",
        abbreviations=bool(parser["allow_abbrev"]),
        underscores=bool(parser["underscores_to_dashes"]),
        dotted_keys=bool(parser["dotted_json_keys"]),
        negative_values=bool(parser["negative_numbers_as_values"]),
        repeats_error=parser["repeated"] != "last",
    )


@functools.cache
def clap_table(resource: str) -> FlagTable:
    """A table written by scripts/extract_tgi_launcher_flags.py from TGI's launcher/src/main.rs."""
    doc = _resource(resource)
    source = doc["source"]
    return FlagTable(
        engine="tgi",
        version=str(source["tag"]).lstrip("v"),
        style=Style.CLAP,
        flags=tuple(_clap_flag(row) for row in doc["flags"]),
        source=f"{resource} ({source['extractor']} at {source['commit'][:8]})",
        repeats_error=True,
    )
