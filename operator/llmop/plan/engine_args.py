"""The guard on user engineArgs: owned flags, shell syntax, and the engine version's flag table and rules."""

from __future__ import annotations

import difflib
import json
import re

from llmop.catalog.engines import ENGINES, Engine
from llmop.catalog.versions import Version, parse_version
from llmop.engines import adapter
from llmop.engines.argv import Occurrence, Problem, Trouble, read_argv, repeat_says
from llmop.engines.base import ArgContext, EngineAdapter
from llmop.engines.flags import Flag, FlagTable, value_error
from llmop.plan.types import Finding

_SHELL_METACHARACTERS = re.compile(r"\$\(|`|;|\|\||&&")
_FLAG = re.compile(r"^--?[A-Za-z][A-Za-z0-9_.+-]*(=.*)?$")
_KIND_WORDS = {
    "int": "an integer",
    "uint": "a non-negative integer",
    "float": "a number",
    "human_int": "an integer (4096, 4k and 4K are read)",
    "human_int_or_auto": "an integer (4k, 4K) or auto",
    "json": "a JSON object",
    "bool": "true or false",
    "str": "a value",
}


def _shown(arg: str, limit: int = 80) -> str:
    text = repr(arg)
    return text if len(text) <= limit else f"{text[: limit - 5]}...{text[-1]} ({len(arg)} characters)"


def _wants(flag: Flag) -> str:
    if flag.choices is not None:
        return f"use one of: {', '.join(flag.choices)}"
    return f"{flag.name} takes {_KIND_WORDS.get(flag.kind, 'a value')}"


def check_engine_args(
    engine: Engine,
    engine_args: list[str],
    context: ArgContext | None = None,
    version_text: str | None = None,
) -> list[Finding]:
    """Refuse what the engine's parser would refuse (or read ambiguously) before any pod starts, naming
    spec.engineArgs[i], the value, the engine's words and what would work. `context` adds the cross-flag rules
    against llmop's own values (spec.maxModelLen, the attention kernel)."""
    engine_adapter = adapter(engine)
    info = ENGINES[engine]
    version_text = (version_text or info.pinned_version).lstrip("v")
    try:
        version: Version = parse_version(version_text)
    except ValueError:
        version = parse_version(info.pinned_version)
    table = engine_adapter.flag_table(version)
    label = f"{info.display_name} {table.version}"
    findings: list[Finding] = []
    refused: set[int] = set()
    for index, arg in enumerate(engine_args):
        where = f"spec.engineArgs[{index}]"
        if _SHELL_METACHARACTERS.search(arg):
            findings.append(
                Finding(
                    where,
                    f"{_shown(arg)} contains shell syntax; engine args are passed as an argv, never to a shell",
                )
            )
            refused.add(index)
            continue
        if not arg.startswith("-") or arg == "-":
            continue
        flag = engine_adapter.owned_flag_set_by(arg)
        if flag is not None:
            spelled = arg.split("=", 1)[0]
            read_as = "" if spelled == flag else f" ({_shown(spelled)} is read as {flag})"
            findings.append(
                Finding(
                    where,
                    f"{flag} is set by llmop from the spec and cannot be overridden{read_as}; "
                    f"{_owned_hint(engine_adapter, flag)}",
                )
            )
            refused.add(index)
        elif not _FLAG.match(arg) and not arg[1:].replace(".", "", 1).isdigit():
            findings.append(Finding(where, f"{_shown(arg)} is not a flag of the form --name or --name=value"))
            refused.add(index)
    occurrences, problems = read_argv(table, engine_args, frozenset(refused))
    note = "" if version_text == table.version else f"; llmop checks {info.display_name} {version_text} against it"
    findings += [_problem_finding(engine_adapter, table, label, note, problem) for problem in problems]
    broken: set[str] = set()
    for occurrence in occurrences:
        message = _value_finding(table, label, engine_args, occurrence)
        if message:
            findings.append(Finding(f"spec.engineArgs[{occurrence.index}]", message))
            broken.add(occurrence.flag.dest)
    findings += _repeat_findings(table, label, engine_args, occurrences)
    if context is not None and not findings:
        given = {occurrence.flag.dest: occurrence for occurrence in occurrences if occurrence.flag.dest not in broken}
        for rule in engine_adapter.arg_rules(given, context):
            findings.append(
                Finding(
                    f"spec.engineArgs[{rule.index}]",
                    f"{_shown(rule.written)} is refused by {label} ({rule.engine_says}); {rule.advice}",
                )
            )
    return sorted(findings, key=lambda f: int(f.field.split("[")[1].rstrip("]")) if "[" in f.field else -1)


def _problem_finding(
    engine_adapter: EngineAdapter, table: FlagTable, label: str, note: str, problem: Problem
) -> Finding:
    where = f"spec.engineArgs[{problem.index}]"
    shown, says = _shown(problem.written), problem.engine_says
    if problem.trouble is Trouble.UNKNOWN:
        name = problem.written.split("=", 1)[0]
        return Finding(
            where, f"{_shown(name)} is not a {label} flag ({says}){note}; {_did_you_mean(engine_adapter, table, name)}"
        )
    if problem.trouble is Trouble.AMBIGUOUS:
        listed = ", ".join(problem.candidates[:6]) + (", ..." if len(problem.candidates) > 6 else "")
        return Finding(where, f"{shown} is refused by {label} ({says}); write the whole flag name, one of: {listed}")
    flag = problem.flag
    if problem.trouble is Trouble.NEEDS_VALUE and flag is not None:
        return Finding(
            where,
            f"{shown} needs a value and {label} refuses it without one ({says}); write {flag.name} followed by "
            + (f"one of: {', '.join(flag.choices)}" if flag.choices else _KIND_WORDS.get(flag.kind, "a value")),
        )
    if problem.trouble is Trouble.TAKES_NO_VALUE and flag is not None:
        return Finding(where, f"{shown} is refused by {label} ({says}); {_switch_advice(flag)}")
    if problem.after is not None:
        return Finding(
            where,
            f"{shown} is a value after {problem.after.name}, which takes none; {label} refuses it ({says}); "
            f"{_switch_advice(problem.after)}",
        )
    return Finding(where, f"{shown} is a value with no flag before it ({label}: {says}); write --flag value")


def _switch_advice(flag: Flag) -> str:
    alternatives = " or ".join((flag.name, *flag.negatives[:1]))
    return f"{flag.name} is a switch and takes no value: write {alternatives}"


def _did_you_mean(engine_adapter: EngineAdapter, table: FlagTable, name: str) -> str:
    normalized = name.replace("_", "-") if name.startswith("--") else name
    suggestion = engine_adapter.flag_hints.get(normalized)
    if suggestion is None:
        longs = [spelling for spelling in table.spellings if spelling.startswith("--")]
        suggestion = next(iter(difflib.get_close_matches(normalized, longs, n=1, cutoff=0.75)), None)
    if suggestion is None:
        return "remove it"
    owned = engine_adapter.owned_flag_set_by(suggestion)
    if owned is not None:
        return f"did you mean {suggestion}? llmop sets it: {_owned_hint(engine_adapter, owned)}"
    return f"did you mean {suggestion}?"


def _written(engine_args: list[str], occurrence: Occurrence) -> str:
    token = engine_args[occurrence.index]
    if "=" in token or occurrence.spelled == "-O" or not occurrence.values:
        return token
    if token != occurrence.spelled and token.startswith(occurrence.spelled) and not token.startswith("--"):
        return token  # -qawq: the value is attached
    return " ".join((token, *occurrence.values))


def _value_finding(table: FlagTable, label: str, engine_args: list[str], occurrence: Occurrence) -> str | None:
    flag = occurrence.flag
    values = occurrence.values
    if occurrence.dotted:
        token = engine_args[occurrence.index]
        key = token.split("=", 1)[0].split(".", 1)[1].split(".", 1)[0].rstrip("+")
        if flag.kind == "str" or (flag.kind == "json" and (flag.keys is None or key in flag.keys)):
            return None  # the key's value is checked by vLLM's config class once parsed
        values = (json.dumps({key: values[0]}),)
    for value in values:
        says = value_error(table, flag, value)
        if says:
            return f"{_shown(_written(engine_args, occurrence))} is refused by {label} ({says}); {_wants(flag)}"
    return None


def _repeat_findings(
    table: FlagTable, label: str, engine_args: list[str], occurrences: list[Occurrence]
) -> list[Finding]:
    findings: list[Finding] = []
    first: dict[str, Occurrence] = {}
    for occurrence in occurrences:
        flag = occurrence.flag
        if flag.repeatable:
            continue
        earlier = first.get(flag.dest)
        if earlier is None or (occurrence.dotted and earlier.dotted):
            first.setdefault(flag.dest, occurrence)
            continue
        where = f"spec.engineArgs[{occurrence.index}]"
        shown = _shown(_written(engine_args, occurrence))
        also = f"also at spec.engineArgs[{earlier.index}]"
        if table.repeats_error:
            findings.append(
                Finding(
                    where,
                    f"{shown} sets {flag.name} again ({also}) and {label} refuses that ({repeat_says(table, flag)}); "
                    "give it once",
                )
            )
        else:
            findings.append(
                Finding(
                    where,
                    f"{shown} sets {flag.name} again ({also}); {label} would silently keep the last one, so llmop "
                    "refuses the ambiguity; give it once",
                )
            )
    return findings


def _owned_hint(engine_adapter: EngineAdapter, flag: str) -> str:
    field = engine_adapter.field_for_flag.get(flag)
    return f"set {field} instead" if field else "remove it (llmop derives it from the GPU and the plan)"
