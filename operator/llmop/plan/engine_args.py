"""The guard on user engineArgs: owned flags in any spelling the engine accepts, shell syntax, stray values."""

from __future__ import annotations

import re

from llmop.catalog.engines import Engine
from llmop.engines import adapter
from llmop.plan.types import Finding

_SHELL_METACHARACTERS = re.compile(r"\$\(|`|;|\|\||&&")
_FLAG = re.compile(r"^--?[A-Za-z][A-Za-z0-9_.-]*(=.*)?$")


def _shown(arg: str, limit: int = 80) -> str:
    text = repr(arg)
    return text if len(text) <= limit else f"{text[: limit - 5]}...{text[-1]} ({len(arg)} characters)"


def check_engine_args(engine: Engine, engine_args: list[str]) -> list[Finding]:
    """Refuse owned flags (in any spelling the engine accepts), shell metacharacters and stray positionals."""
    engine_adapter = adapter(engine)
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
            flag = engine_adapter.owned_flag_set_by(arg)
            if flag is not None:
                spelled = arg.split("=", 1)[0]
                read_as = "" if spelled == flag else f" ({_shown(spelled)} is read as {flag})"
                findings.append(
                    Finding(
                        where,
                        f"{flag} is set by llmop from the spec and cannot be overridden{read_as}; "
                        f"{_owned_hint(engine, flag)}",
                    )
                )
            previous_was_flag = "=" not in arg
            continue
        if not previous_was_flag:
            findings.append(Finding(where, f"{_shown(arg)} is a value with no flag before it; write --flag value"))
        previous_was_flag = False
    return findings


def _owned_hint(engine: Engine, flag: str) -> str:
    field = adapter(engine).field_for_flag.get(flag)
    return f"set {field} instead" if field else "remove it (llmop derives it from the GPU and the plan)"
