"""`llmop plan --compare`: every GPU x quantization x TP x engine candidate for a spec, ranked by cost per token."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, TextIO

import yaml

from llmop.api.spec import LLMDeploymentSpec
from llmop.catalog.prices import DEFAULT_PRICES, PriceFileError, PriceTable, price_table
from llmop.catalog.quality import QUALITY
from llmop.plan.parse import Resource
from llmop.plan.types import PlanErrors
from llmop.sizing.compare import Comparison, Option, Rejection, Workload, compare


class CompareInputError(Exception):
    """A --prices file or a flag value that cannot be used; printed as one line."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The --compare flags of `llmop plan`."""
    parser.add_argument(
        "--compare",
        action="store_true",
        help="rank every GPU x quantization x TP x engine that meets the spec's SLO by cost per million output tokens",
    )
    parser.add_argument(
        "--load", type=float, metavar="RPS",
        help="requests/s to size for (default: spec.expectedLoad, else each replica at its SLO capacity)",
    )  # fmt: skip
    parser.add_argument("--prompt-tokens", type=int, metavar="N", help="mean prompt tokens (default 1024)")
    parser.add_argument("--output-tokens", type=int, metavar="N", help="mean output tokens (default 256)")
    parser.add_argument("--prices", metavar="FILE", help="USD per GPU-hour, YAML/JSON {GPU: price} (default: list)")
    parser.add_argument("--top", type=int, metavar="N", help="print only the N cheapest candidates")


def load_prices(path: str | None) -> PriceTable:
    if path is None:
        return DEFAULT_PRICES
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise CompareInputError(f"{path}: cannot read: {error.strerror or error}") from None
    except yaml.YAMLError as error:
        raise CompareInputError(f"{path}: not valid YAML or JSON: {str(error).splitlines()[0]}") from None
    try:
        return price_table(data, path)
    except PriceFileError as error:
        raise CompareInputError(str(error)) from None


def workload(args: argparse.Namespace, spec: LLMDeploymentSpec) -> Workload:
    """The flags' load, or the spec's expectedLoad when no --load is given."""
    if args.load is not None and not args.load > 0:
        raise CompareInputError(f"--load {args.load:g}: give a positive number of requests/s")
    prompt, output = args.prompt_tokens, args.output_tokens
    if (prompt is not None and prompt < 1) or (output is not None and output < 1):
        raise CompareInputError("--prompt-tokens and --output-tokens must be at least 1")
    expected = spec.expected_load
    rps = args.load if args.load is not None else (expected.requests_per_second if expected else None)
    default = Workload()
    prompt = prompt or (expected.prompt_tokens if expected else default.prompt_tokens)
    output = output or (expected.output_tokens if expected else default.output_tokens)
    return Workload(rps, prompt, output)


def _money(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


def _row(rank: int, option: Option) -> list[str]:
    gpus = None if option.replicas is None else option.replicas * option.candidate.tensor_parallel
    return [
        str(rank),
        option.candidate.label,
        _money(option.usd_per_million_tokens),
        _money(option.usd_per_hour if option.replicas is not None else option.usd_per_replica_hour),
        "-" if option.replicas is None else str(option.replicas),
        "-" if gpus is None else str(gpus),
        f"{option.plan.decode_floor_ms:.1f}",
        str(option.plan.max_concurrency_at_slo),
        f"{option.capacity_rps:.2f}",
        f"{option.plan.startup_seconds}",
        "; ".join(_short(note) for note in option.notes),
    ]


def _short(note: str) -> str:
    return note.split(";", 1)[0] if "pre-quantized" in note else note


def _table(rows: list[list[str]], out: TextIO) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [
            cell.ljust(w) if i in (1, 10) else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        print("  " + "  ".join(cells).rstrip(), file=out)


def print_comparison(name: str, model: str, result: Comparison, top: int | None, out: TextIO) -> None:
    w = result.workload
    load = f"{w.rps:g} req/s" if w.rps is not None else "each replica at its SLO capacity"
    tried = len(result.options) + len(result.rejections)
    print(
        f"{name}: {len(result.options)} of {tried} candidates meet {result.slo_ms:g} ms per output token for {model}; "
        f"load {load}, {w.prompt_tokens} prompt + {w.output_tokens} output tokens per request",
        file=out,
    )
    print(f"  prices: {result.prices.describe()}", file=out)
    for note in result.prices.notes:
        print(f"    {note}", file=out)
    hourly = "$/hour" if w.rps is not None else "$/h/rep"
    header = ["#", "candidate", "$/M tok", hourly, "replicas", "GPUs", "floor ms", "conc@SLO", "req/s/rep"]
    rows = [[*header, "start s", "notes"]]
    shown = result.options[:top] if top else result.options
    rows += [_row(rank, option) for rank, option in enumerate(shown, 1)]
    if shown:
        _table(rows, out)
    if len(shown) < len(result.options):
        print(f"  ... {len(result.options) - len(shown)} more (without --top)", file=out)
    _print_rejections(result.representatives(), out)
    methods = list(dict.fromkeys(o.candidate.quantization for o in shown))
    if methods:
        print("  quality (not measured by llmop):", file=out)
        for method in methods:
            print(f"    {method.value}: {QUALITY[method].text()}", file=out)


def _print_rejections(rejections: list[Rejection], out: TextIO) -> None:
    """One line per distinct reason, naming the combinations it rejects (the closest TP of each)."""
    if not rejections:
        return
    print("  rejected (engine x GPU x quantization with no viable TP):", file=out)
    groups: dict[tuple[str, str, str], list[str]] = {}
    for rejection in rejections:
        c = rejection.candidate
        what = f"{c.gpu} {c.quantization.value} {c.engine.value}"
        what = what if rejection.kind in ("compat", "shape") else c.label
        fix = rejection.fix if rejection.kind != "compat" else ""
        groups.setdefault((rejection.kind, rejection.reason, fix), []).append(what)
    for (kind, reason, fix), combos in groups.items():
        print(f"    {', '.join(combos)}: {kind}: {reason}" + (f" -> {fix}" if fix else ""), file=out)


def comparison_json(name: str, result: Comparison | PlanErrors) -> dict[str, Any]:
    if isinstance(result, PlanErrors):
        return {"name": name, "ok": False, "errors": [e.to_dict() for e in result.errors]}
    w = result.workload
    methods = dict.fromkeys(o.candidate.quantization for o in result.options)
    return {
        "name": name,
        "ok": bool(result.options),
        "sloMs": result.slo_ms,
        "workload": {"rps": w.rps, "promptTokens": w.prompt_tokens, "outputTokens": w.output_tokens},
        "prices": {**result.prices.to_json(), "notes": list(result.prices.notes)},
        "options": [option.to_json() for option in result.options],
        "rejected": [rejection.to_json() for rejection in result.rejections],
        "quality": {m.value: {"note": QUALITY[m].summary, "sources": list(QUALITY[m].sources)} for m in methods},
    }


def run_compare(args: argparse.Namespace, documents: list[tuple[str, Resource | PlanErrors]], out: TextIO) -> int:
    """Compare each parsed document (name, resource or why it was refused); 0 when every one has a viable option."""
    prices = load_prices(args.prices)
    payloads: list[dict[str, Any]] = []
    ok = True
    for name, parsed in documents:
        result = (
            parsed
            if isinstance(parsed, PlanErrors)
            else compare(parsed.spec, workload(args, parsed.spec), prices, name=name)
        )
        ok = ok and isinstance(result, Comparison) and bool(result.options)
        if args.json:
            payloads.append(comparison_json(name, result))
        elif isinstance(result, PlanErrors):
            print(f"{name}: REFUSED", file=out)
            for error in result.errors:
                print(f"  error: {error}", file=out)
        elif isinstance(parsed, Resource):
            print_comparison(name, parsed.spec.model.name, result, args.top, out)
    if args.json:
        print(json.dumps(payloads[0] if len(payloads) == 1 else payloads, indent=2), file=out)
    return 0 if ok else 1
