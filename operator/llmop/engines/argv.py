"""How an engine's parser (argparse as vLLM extends it, clap for TGI) reads an argv against its flag table."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from llmop.engines.flags import Arity, Flag, FlagTable, Style, is_negative_number


class Trouble(StrEnum):
    UNKNOWN = "unknown"
    AMBIGUOUS = "ambiguous"
    NEEDS_VALUE = "needs_value"
    TAKES_NO_VALUE = "takes_no_value"
    STRAY = "stray"


@dataclass(frozen=True)
class Occurrence:
    """One flag set by the argv: where, as spelled, and the values the parser hands it."""

    index: int
    flag: Flag
    spelled: str
    values: tuple[str, ...]
    dotted: bool = False  # vLLM --json-flag.key=value (merged with the flag's other keys)


@dataclass(frozen=True)
class Problem:
    """An element the parser would refuse before any value is checked."""

    index: int
    trouble: Trouble
    written: str  # the element(s) as the user wrote them
    engine_says: str
    flag: Flag | None = None
    candidates: tuple[str, ...] = ()
    after: Flag | None = None  # STRAY: the switch it follows, if any


@dataclass(frozen=True)
class _Match:
    flag: Flag
    spelled: str
    explicit: str | None
    dotted: bool = False


_Resolved = list[_Match] | tuple[str, ...]  # matches, or the ambiguous candidates (empty: unknown)


def _lookup(table: FlagTable, name: str, token: str) -> list[_Match] | tuple[str, ...]:
    """argparse _parse_optional/_get_option_tuples for one option name (without its `=value`)."""
    flag = table.get(name)
    if flag is not None:
        return [_Match(flag, name, None)]
    if name.startswith("--"):
        if not table.abbreviations:
            return ()
        candidates = tuple(s for s in table.spellings if s.startswith(name))
    else:  # a one-dash option: `-qawq` is -q with `awq`; a prefix of a longer one-dash option names it
        tuples: list[tuple[str, str | None]] = [(s, token[2:]) for s in table.spellings if s == token[:2]]
        tuples += [(s, None) for s in table.spellings if s.startswith(token) and s != token[:2]]
        if len(tuples) == 1:
            spelled, explicit = tuples[0]
            found = table.get(spelled)
            assert found is not None
            return [_Match(found, spelled, explicit or None)]
        candidates = tuple(s for s, _ in tuples)
    if len(candidates) == 1:
        found = table.get(candidates[0])
        assert found is not None
        return [_Match(found, candidates[0], None)]
    return candidates


def _resolve_argparse(table: FlagTable, token: str) -> _Resolved:
    optimization = table.get("--optimization-level")
    if token.startswith("-O") and token != "-O" and optimization is not None:  # FlexibleArgumentParser: -O3
        return [_Match(optimization, "-O", token[3:] if token[2:3] == "=" else token[2:])]
    name, eq, value = token.partition("=")
    explicit = value if eq else None
    if name.startswith("--") and table.underscores:
        head, dot, tail = name[2:].partition(".")
        name = "--" + head.replace("_", "-") + dot + tail
    if table.dotted_keys and "." in name:
        base = name.split(".", 1)[0]
        found = _lookup(table, base, base)
        if isinstance(found, list):
            return [_Match(found[0].flag, found[0].spelled, explicit, dotted=True)]
        return found
    if table.get(name) is not None:
        return [_Match(table.get(name), name, explicit)]  # type: ignore[arg-type]
    found = _lookup(table, name, token if not token.startswith("--") else name)
    if isinstance(found, list) and explicit is not None:
        return [_Match(found[0].flag, found[0].spelled, explicit)]
    return found


def _resolve_clap(table: FlagTable, token: str) -> _Resolved:
    if token.startswith("--"):
        name, eq, value = token.partition("=")
        flag = table.get(name)
        return [_Match(flag, name, value if eq else None)] if flag else ()
    matches: list[_Match] = []
    letters = token[1:]
    for position, letter in enumerate(letters):  # a cluster: switches, then one flag that takes the rest
        flag = table.get(f"-{letter}")
        if flag is None:
            return ()
        if flag.arity is Arity.NONE:
            matches.append(_Match(flag, f"-{letter}", None))
            continue
        rest = letters[position + 1 :]
        matches.append(_Match(flag, f"-{letter}", (rest[1:] if rest.startswith("=") else rest) or None))
        break
    return matches


def resolve(table: FlagTable, token: str) -> _Resolved:
    """The flag(s) `token` sets, or the candidates an abbreviation could mean (empty: not a flag)."""
    if table.style is Style.CLAP:
        return _resolve_clap(table, token)
    return _resolve_argparse(table, token)


def is_value(table: FlagTable, token: str) -> bool:
    """Whether the parser reads `token` as a value rather than as a flag."""
    if not token.startswith("-") or token == "-":
        return True
    if table.style is Style.CLAP:
        return False
    if table.negative_values and is_negative_number(token) and "." not in token:
        return True
    return " " in token and not resolve(table, token)


def unknown_says(table: FlagTable, token: str) -> str:
    if table.style is Style.CLAP:
        return f"unexpected argument '{token.split('=', 1)[0]}' found"
    return f"unrecognized arguments: {token}"


def repeat_says(table: FlagTable, flag: Flag) -> str:
    return f"the argument '{flag.shown}' cannot be used multiple times"


def _needs_value_says(table: FlagTable, flag: Flag) -> str:
    if table.style is Style.CLAP:
        return f"a value is required for '{flag.shown}' but none was supplied"
    many = "at least one argument" if flag.arity is Arity.MANY else "one argument"
    return f"argument {flag.shown}: expected {many}"


def _no_value_says(table: FlagTable, flag: Flag, value: str) -> str:
    if table.style is Style.CLAP:
        return f"unexpected value '{value}' for '{flag.name}' found; no more were expected"
    return f"argument {flag.shown}: ignored explicit argument {value!r}"


def read_argv(
    table: FlagTable, args: list[str], skip: frozenset[int] = frozenset()
) -> tuple[list[Occurrence], list[Problem]]:
    """Walk `args` as the engine's parser would. Indices in `skip` (already refused) are passed over, with the
    values that follow them."""
    occurrences: list[Occurrence] = []
    problems: list[Problem] = []
    index = 0
    last_switch: Flag | None = None
    while index < len(args):
        token = args[index]
        if index in skip:
            index += 1
            while index < len(args) and index not in skip and is_value(table, args[index]):
                index += 1
            last_switch = None
            continue
        if is_value(table, token):
            problems.append(Problem(index, Trouble.STRAY, token, unknown_says(table, token), after=last_switch))
            index += 1
            continue
        last_switch = None
        found = resolve(table, token)
        if not isinstance(found, list):
            trouble = Trouble.AMBIGUOUS if found else Trouble.UNKNOWN
            says = f"ambiguous option: {token} could match {', '.join(found)}" if found else unknown_says(table, token)
            problems.append(Problem(index, trouble, token, says, candidates=found))
            index += 1
            while index < len(args) and index not in skip and is_value(table, args[index]):
                index += 1
            continue
        start = index
        index += 1
        for match in found:
            flag = match.flag
            if match.dotted:  # FlexibleArgumentParser takes the next element whatever it is
                if match.explicit is None and index >= len(args):
                    problems.append(Problem(start, Trouble.NEEDS_VALUE, token, _needs_value_says(table, flag), flag))
                    continue
                value = match.explicit if match.explicit is not None else args[index]
                index += 0 if match.explicit is not None else 1
                occurrences.append(Occurrence(start, flag, match.spelled, (value,), dotted=True))
                continue
            if flag.arity is Arity.NONE:
                if match.explicit is not None:
                    says = _no_value_says(table, flag, match.explicit)
                    problems.append(Problem(start, Trouble.TAKES_NO_VALUE, token, says, flag))
                    continue
                occurrences.append(Occurrence(start, flag, match.spelled, ()))
                last_switch = flag
                continue
            if match.explicit is not None:
                occurrences.append(Occurrence(start, flag, match.spelled, (match.explicit,)))
                continue
            values: list[str] = []
            while index < len(args) and index not in skip and is_value(table, args[index]):
                values.append(args[index])
                index += 1
                if flag.arity is not Arity.MANY:
                    break
            if not values and flag.arity is not Arity.OPTIONAL:
                problems.append(Problem(start, Trouble.NEEDS_VALUE, token, _needs_value_says(table, flag), flag))
                continue
            occurrences.append(Occurrence(start, flag, match.spelled, tuple(values)))
    return occurrences, problems
