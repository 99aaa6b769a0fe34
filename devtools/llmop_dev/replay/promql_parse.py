"""A PromQL parser for the subset the replay's emulated Prometheus evaluates; anything else raises PromQLError."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field


class PromQLError(ValueError):
    """Unsupported or malformed PromQL (never answered with made-up data)."""


@dataclass(frozen=True)
class Matcher:
    name: str
    op: str  # = != =~ !~
    value: str
    regex: re.Pattern[str] | None = None

    def matches(self, value: str) -> bool:
        if self.op == "=":
            return value == self.value
        if self.op == "!=":
            return value != self.value
        assert self.regex is not None
        found = self.regex.fullmatch(value) is not None
        return found if self.op == "=~" else not found


@dataclass(frozen=True)
class Number:
    value: float


@dataclass(frozen=True)
class Selector:
    name: str | None
    matchers: tuple[Matcher, ...]


@dataclass(frozen=True)
class RangeSelector:
    selector: Selector
    range_s: float


@dataclass(frozen=True)
class Call:
    func: str
    args: tuple[Node, ...]


@dataclass(frozen=True)
class Aggregate:
    op: str
    expr: Node
    grouping: tuple[str, ...] = ()
    without: bool = False
    grouped: bool = False  # a by/without clause was given


@dataclass(frozen=True)
class Binary:
    op: str
    lhs: Node
    rhs: Node
    on: bool = False  # on(...) was given (else ignoring(...) or nothing)
    labels: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class Negate:
    expr: Node


Node = Number | Selector | RangeSelector | Call | Aggregate | Binary | Negate

AGGREGATIONS = frozenset({"sum", "min", "max", "avg", "count"})
UNSUPPORTED_AGGREGATIONS = frozenset({"stddev", "stdvar", "topk", "bottomk", "quantile", "count_values", "group"})
FUNCTIONS: dict[str, tuple[str, ...]] = {  # argument kinds: r = range vector, v = instant vector, s = scalar
    "rate": ("r",),
    "increase": ("r",),
    "delta": ("r",),
    "irate": ("r",),
    "deriv": ("r",),
    "avg_over_time": ("r",),
    "max_over_time": ("r",),
    "min_over_time": ("r",),
    "sum_over_time": ("r",),
    "count_over_time": ("r",),
    "histogram_quantile": ("s", "v"),
    "abs": ("v",),
    "sqrt": ("v",),
    "clamp_min": ("v", "s"),
    "clamp_max": ("v", "s"),
}
PRECEDENCE = {"or": 1, "and": 2, "unless": 2, "+": 4, "-": 4, "*": 5, "/": 5, "%": 5}
UNSUPPORTED_OPERATORS = frozenset({"==", "!=", "<", ">", "<=", ">=", "^", "atan2"})
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0, "y": 31536000.0}
_DURATION = re.compile(r"(?:\d+(?:ms|s|m|h|d|w|y))+")
_DURATION_PART = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_TOKEN = re.compile(
    r"""\s*(?:
    (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<range>\[[^\]]*\])
  | (?P<op>=~|!~|!=|==|<=|>=|[-+*/%^=<>(){},@])
    )""",
    re.VERBOSE,
)
_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'"}


def parse_duration(text: str) -> float:
    if not _DURATION.fullmatch(text):
        raise PromQLError(f"bad duration {text!r}")
    return sum(int(count) * _UNITS[unit] for count, unit in _DURATION_PART.findall(text))


def _unquote(text: str) -> str:
    body, out, index = text[1:-1], [], 0
    while index < len(body):
        char = body[index]
        if char == "\\" and index + 1 < len(body):
            nxt = body[index + 1]
            if nxt not in _ESCAPES:
                raise PromQLError(f"unsupported escape \\{nxt} in {text}")
            out.append(_ESCAPES[nxt])
            index += 2
            continue
        out.append(char)
        index += 1
    return "".join(out)


def _tokenize(expr: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(expr):
        if expr[pos:].strip() == "":
            break
        match = _TOKEN.match(expr, pos)
        if match is None or match.lastgroup is None:
            raise PromQLError(f"unexpected character {expr[pos:].lstrip()[:1]!r} at {pos} in {expr!r}")
        tokens.append((match.lastgroup, match.group(match.lastgroup)))
        pos = match.end()
    tokens.append(("eof", ""))
    return tokens


class _Parser:
    def __init__(self, expr: str) -> None:
        self.expr = expr
        self.tokens = _tokenize(expr)
        self.pos = 0

    def peek(self, offset: int = 0) -> tuple[str, str]:
        return self.tokens[min(self.pos + offset, len(self.tokens) - 1)]

    def take(self) -> tuple[str, str]:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def expect(self, value: str) -> None:
        kind, text = self.take()
        if text != value or kind not in ("op", "ident"):
            raise PromQLError(f"expected {value!r}, got {text or 'end of input'!r} in {self.expr!r}")

    def fail(self, what: str) -> PromQLError:
        return PromQLError(f"unsupported PromQL ({what}) in {self.expr!r}")

    def parse(self) -> Node:
        node = self.binary(0)
        if self.peek()[0] != "eof":
            raise PromQLError(f"unexpected {self.peek()[1]!r} in {self.expr!r}")
        return node

    def _operator(self) -> str | None:
        kind, text = self.peek()
        if kind == "op" and text in PRECEDENCE:
            return text
        if kind == "ident" and text.lower() in ("or", "and", "unless"):
            return text.lower()
        if (kind == "op" and text in UNSUPPORTED_OPERATORS) or (kind == "ident" and text.lower() == "atan2"):
            raise self.fail(f"operator {text}")
        return None

    def binary(self, min_precedence: int) -> Node:
        lhs = self.unary()
        while True:
            op = self._operator()
            if op is None or PRECEDENCE[op] < min_precedence:
                return lhs
            self.take()
            on, labels = False, ()
            kind, text = self.peek()
            if kind == "ident" and text == "bool":
                raise self.fail("bool modifier")
            if kind == "ident" and text in ("on", "ignoring"):
                self.take()
                on, labels = text == "on", self.label_list()
            if self.peek()[1] in ("group_left", "group_right"):
                raise self.fail("many-to-one matching")
            rhs = self.binary(PRECEDENCE[op] + 1)
            lhs = _fold(Binary(op, lhs, rhs, on, labels))

    def unary(self) -> Node:
        kind, text = self.peek()
        if kind == "op" and text in ("-", "+"):
            self.take()
            inner = self.binary(PRECEDENCE["*"])  # unary binds tighter than + - but looser than ^
            return inner if text == "+" else _fold(Negate(inner))
        return self.postfix(self.primary())

    def postfix(self, node: Node) -> Node:
        kind, text = self.peek()
        if kind == "range":
            self.take()
            if not isinstance(node, Selector):
                raise self.fail("subquery or range of a non-selector")
            body = text[1:-1].strip()
            if ":" in body:
                raise self.fail("subquery")
            node = RangeSelector(node, parse_duration(body))
            kind, text = self.peek()
        if (kind == "ident" and text == "offset") or text == "@":
            raise self.fail("offset / @ modifier")
        return node

    def primary(self) -> Node:
        kind, text = self.take()
        if kind == "number":
            return Number(float(text))
        if kind == "op" and text == "(":
            node = self.binary(0)
            self.expect(")")
            return node
        if kind == "op" and text == "{":
            return self.selector(None)
        if kind == "ident":
            lowered = text.lower()
            if lowered in ("inf", "nan") and self.peek()[1] not in ("{", "("):
                return Number(math.inf if lowered == "inf" else math.nan)
            if text in AGGREGATIONS:
                return self.aggregate(text)
            if text in UNSUPPORTED_AGGREGATIONS:
                raise self.fail(f"aggregation {text}")
            if self.peek()[1] == "(":
                return self.call(text)
            if self.peek()[1] == "{":
                self.take()
                return self.selector(text)
            return _selector(text, [])
        raise PromQLError(f"unexpected {text or 'end of input'!r} in {self.expr!r}")

    def label_list(self) -> tuple[str, ...]:
        self.expect("(")
        names: list[str] = []
        while self.peek()[1] != ")":
            kind, text = self.take()
            if kind != "ident":
                raise PromQLError(f"expected a label name, got {text!r} in {self.expr!r}")
            names.append(text)
            if self.peek()[1] == ",":
                self.take()
        self.take()
        return tuple(names)

    def aggregate(self, op: str) -> Node:
        grouping: tuple[str, ...] = ()
        without = grouped = False
        if self.peek()[1] in ("by", "without"):
            without, grouped = self.take()[1] == "without", True
            grouping = self.label_list()
        self.expect("(")
        expr = self.binary(0)
        if self.peek()[1] == ",":
            raise self.fail(f"parameter to {op}")
        self.expect(")")
        if self.peek()[1] in ("by", "without"):
            if grouped:
                raise PromQLError(f"two grouping clauses in {self.expr!r}")
            without, grouped = self.take()[1] == "without", True
            grouping = self.label_list()
        return Aggregate(op, expr, grouping, without, grouped)

    def call(self, func: str) -> Node:
        if func not in FUNCTIONS:
            raise self.fail(f"function {func}")
        self.expect("(")
        args: list[Node] = []
        while self.peek()[1] != ")":
            args.append(self.binary(0))
            if self.peek()[1] == ",":
                self.take()
            elif self.peek()[1] != ")":
                raise PromQLError(f"expected , or ) in {self.expr!r}")
        self.take()
        kinds = FUNCTIONS[func]
        if len(args) != len(kinds):
            raise PromQLError(f"{func} takes {len(kinds)} argument(s), got {len(args)} in {self.expr!r}")
        for kind, arg in zip(kinds, args, strict=True):
            if (kind == "r") != isinstance(arg, RangeSelector):
                want = "a range vector selector" if kind == "r" else "an instant expression"
                raise PromQLError(f"{func} expects {want} in {self.expr!r}")
        return Call(func, tuple(args))

    def selector(self, name: str | None) -> Node:
        matchers: list[Matcher] = []
        while self.peek()[1] != "}":
            kind, label = self.take()
            if kind != "ident":
                raise PromQLError(f"expected a label name, got {label!r} in {self.expr!r}")
            _, op = self.take()
            if op not in ("=", "!=", "=~", "!~"):
                raise PromQLError(f"expected a matcher operator after {label}, got {op!r} in {self.expr!r}")
            value_kind, value = self.take()
            if value_kind != "string":
                raise PromQLError(f"expected a quoted label value after {label}{op} in {self.expr!r}")
            text = _unquote(value)
            try:
                regex = re.compile(text) if op in ("=~", "!~") else None
            except re.error as error:
                raise PromQLError(f"bad regex {text!r}: {error}") from error
            matchers.append(Matcher(label, op, text, regex))
            if self.peek()[1] == ",":
                self.take()
            elif self.peek()[1] != "}":
                raise PromQLError(f"expected , or }} in {self.expr!r}")
        self.take()
        return _selector(name, matchers)


def _selector(name: str | None, matchers: list[Matcher]) -> Selector:
    if name is not None:
        if any(m.name == "__name__" for m in matchers):
            raise PromQLError(f"metric name given twice for {name}")
        matchers = [Matcher("__name__", "=", name), *matchers]
    if not any(not m.matches("") for m in matchers):
        raise PromQLError("vector selector must contain at least one non-empty matcher")
    equal = next((m.value for m in matchers if m.name == "__name__" and m.op == "="), None)
    return Selector(equal, tuple(matchers))


def _fold(node: Binary | Negate) -> Node:
    """Constant-fold number-only arithmetic, as Prometheus evaluates scalar expressions."""
    if isinstance(node, Negate):
        return Number(-node.expr.value) if isinstance(node.expr, Number) else node
    if isinstance(node.lhs, Number) and isinstance(node.rhs, Number):
        if node.op in ("or", "and", "unless"):
            raise PromQLError(f"set operator {node.op} between scalars")
        from llmop_dev.replay.promql_eval import arithmetic

        return Number(arithmetic(node.op, node.lhs.value, node.rhs.value))
    return node


def parse(expr: str) -> Node:
    """Parse one PromQL expression of the supported subset."""
    return _Parser(expr).parse()
