"""The `llmop` command line: plan, render, crd, run, dev, and the tools built on the core."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, TextIO

import yaml

from llmop import __version__
from llmop.api.crd import crd_yaml
from llmop.plan.parse import Resource, parse_resource
from llmop.plan.planner import plan
from llmop.plan.types import Finding, Plan, PlanErrors
from llmop.render.manifests import Owner, render

COMMANDS_GROUP = "llmop.commands"
Handler = Callable[[argparse.Namespace], int]


class InputError(Exception):
    """A file that cannot be read as LLMDeployment YAML; printed as one line."""


def _documents(path: str) -> Iterator[Any]:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise InputError(f"{path}: cannot read: {error.strerror or error}") from None
    try:
        documents = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise InputError(f"{path}:{where}: not valid YAML: {problem}") from None
    if not documents:
        raise InputError(f"{path}: no LLMDeployment in the file")
    yield from documents


def _plan_documents(path: str) -> list[tuple[str, Resource | None, Plan | PlanErrors]]:
    results: list[tuple[str, Resource | None, Plan | PlanErrors]] = []
    for index, document in enumerate(_documents(path)):
        resource = parse_resource(document)
        label = f"{path}[{index}]"
        if isinstance(resource, PlanErrors):
            results.append((label, None, resource))
            continue
        results.append((resource.name, resource, plan(resource.spec, resource.name)))
    return results


def _plan_json(result: Plan | PlanErrors) -> dict[str, Any]:
    if isinstance(result, PlanErrors):
        return {
            "ok": False,
            "errors": [e.to_dict() for e in result.errors],
            "warnings": [w.to_dict() for w in result.warnings],
            "plan": None,
        }
    return {"ok": True, "errors": [], "warnings": [w.to_dict() for w in result.warnings], "plan": result.to_json()}


def _print_findings(kind: str, findings: tuple[Finding, ...], out: TextIO) -> None:
    for finding in findings:
        print(f"  {kind}: {finding.field}: {finding.message}", file=out)


def _print_plan_table(name: str, result: Plan | PlanErrors, out: TextIO) -> None:
    if isinstance(result, PlanErrors):
        print(f"{name}: REFUSED", file=out)
        _print_findings("error", result.errors, out)
        _print_findings("warning", result.warnings, out)
        return
    p = result
    concurrency = "-" if p.max_concurrency_at_slo is None else str(p.max_concurrency_at_slo)
    slo = "-" if p.slo_target_ms is None else f"{p.slo_target_ms:g} ms"
    rows = [
        ("engine", f"{p.engine} {p.engine_version}"),
        ("image", p.image),
        ("gpu", f"{p.tensor_parallel} x {p.gpu_type} per replica ({p.memory_per_gpu_gib:.1f} GiB usable each)"),
        ("quantization", f"{p.quantization} (flag: {p.quantization_flag or '-'}), dtype {p.dtype}"),
        ("attention", p.attention_backend),
        ("weights", f"{p.weights_gib:.1f} GiB"),
        ("kv cache", f"{p.kv_cache_gib:.1f} GiB = {p.kv_cache_tokens} tokens"),
        ("decode floor", f"{p.decode_floor_ms:.1f} ms/token (batch 1)"),
        ("slo", f"{slo}; concurrency per replica within it: {concurrency}"),
        ("replicas", f"{p.min_replicas}..{p.max_replicas}, start-up ~{p.startup_seconds} s"),
        ("command", " ".join([*p.command, *p.args])),
    ]
    print(f"{name}: OK", file=out)
    width = max(len(key) for key, _ in rows)
    for key, value in rows:
        print(f"  {key.ljust(width)}  {value}", file=out)
    _print_findings("warning", p.warnings, out)


def cmd_plan(args: argparse.Namespace) -> int:
    results = _plan_documents(args.file)
    if args.json:
        payloads = [_plan_json(result) for _, _, result in results]
        print(json.dumps(payloads[0] if len(payloads) == 1 else payloads, indent=2))
    else:
        for name, _, result in results:
            _print_plan_table(name, result, sys.stdout)
    return 0 if all(isinstance(result, Plan) for _, _, result in results) else 1


def cmd_render(args: argparse.Namespace) -> int:
    objects: list[dict[str, Any]] = []
    failed = False
    for name, resource, result in _plan_documents(args.file):
        if isinstance(result, PlanErrors) or resource is None:
            failed = True
            print(f"{name}: REFUSED", file=sys.stderr)
            if isinstance(result, PlanErrors):
                _print_findings("error", result.errors, sys.stderr)
            continue
        namespace = args.namespace or resource.namespace
        objects.extend(render(result, Owner(resource.name, namespace)))
    if objects:
        print(yaml.safe_dump_all(objects, sort_keys=False, width=120), end="")
    return 1 if failed else 0


def cmd_crd(args: argparse.Namespace) -> int:
    text = crd_yaml()
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        print(text, end="")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llmop", description="GPU LLM inference operator for Kubernetes.")
    parser.add_argument("--version", action="version", version=f"llmop {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p_plan = sub.add_parser("plan", help="check an LLMDeployment and show the plan llmop would deploy")
    p_plan.add_argument("-f", "--file", required=True, help="LLMDeployment YAML file ('-' for stdin)")
    p_plan.add_argument("--json", action="store_true", help="print one JSON object")
    p_plan.set_defaults(func=cmd_plan)

    p_render = sub.add_parser("render", help="print the Deployment, Service and PDB for kubectl apply")
    p_render.add_argument("-f", "--file", required=True, help="LLMDeployment YAML file ('-' for stdin)")
    p_render.add_argument("-n", "--namespace", help="namespace for the objects (default: the resource's)")
    p_render.set_defaults(func=cmd_render)

    p_crd = sub.add_parser("crd", help="print the LLMDeployment CustomResourceDefinition")
    p_crd.add_argument("-o", "--output", help="write to this file instead of stdout")
    p_crd.set_defaults(func=cmd_crd)

    for register in _optional_commands():
        register(sub)
    return parser


def _optional_commands() -> list[Callable[[Any], None]]:
    """The operator's own `run`, then subcommands other installed packages add (entry-point group
    `llmop.commands`; the development tooling in devtools/ adds `dev`, `demo`, `simulate`, `sim` and `probe`)."""
    from llmop.controller.run_command import register as register_run

    registers: list[Callable[[Any], None]] = [register_run]
    for entry in sorted(entry_points(group=COMMANDS_GROUP), key=lambda item: item.name):
        registers.append(entry.load())
    return registers


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
