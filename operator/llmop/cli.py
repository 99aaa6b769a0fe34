"""The `llmop` command line: plan, render, crd, run, dev, and the tools built on the core."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, TextIO

import yaml

from llmop import __version__, cli_help
from llmop.api.crd import crd_yaml
from llmop.api.spec import KIND
from llmop.catalog.hf_config import CheckpointInfo, CheckpointLookup
from llmop.compare_cli import CompareInputError, run_compare
from llmop.compare_cli import add_arguments as add_compare_arguments
from llmop.plan.checkpoint import needs_checkpoint
from llmop.plan.parse import Resource, parse_resource
from llmop.plan.planner import plan
from llmop.plan.types import Finding, Plan, PlanErrors
from llmop.render.manifests import Owner, render
from llmop.sizing.choose import choose, is_auto

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


def _label(path: str, index: int, document: Any) -> str:
    """How a message names a document: LLMDeployment/NAME when it has a name, else its place in the file."""
    metadata = document.get("metadata") if isinstance(document, dict) else None
    name = metadata.get("name") if isinstance(metadata, dict) else None
    if isinstance(name, str) and name:
        namespace = metadata.get("namespace") if isinstance(metadata, dict) else None
        return f"{KIND}/{name}" + (f" (namespace {namespace})" if isinstance(namespace, str) and namespace else "")
    return f"{path}: document {index + 1} ({KIND} without metadata.name)"


def _checkpoint(resource: Resource, offline: bool) -> CheckpointLookup | None:
    """config.json from the hub for a model outside the catalog (the CLI's token: HF_TOKEN or a login)."""
    if offline or not needs_checkpoint(resource.spec):
        return None
    from llmop.hub.fetch import fetch_checkpoint

    return fetch_checkpoint(resource.spec.model.name, resource.spec.model.revision, None, token_named="HF_TOKEN")


@dataclass(frozen=True)
class Planned:
    """One document of the file: how messages name it, the parsed resource, its plan, where the numbers came from."""

    label: str
    resource: Resource | None
    result: Plan | PlanErrors
    source: str | None = None


def _plan_documents(path: str, offline: bool = False) -> list[Planned]:
    results: list[Planned] = []
    for index, document in enumerate(_documents(path)):
        resource = parse_resource(document)
        label = _label(path, index, document)
        if isinstance(resource, PlanErrors):
            results.append(Planned(label, None, resource))
            continue
        checkpoint = _checkpoint(resource, offline)
        result = plan(resource.spec, resource.name, checkpoint=checkpoint)
        source = _source_line(checkpoint) if isinstance(checkpoint, CheckpointInfo) else None
        if is_auto(resource.spec):  # gpu.type/quantization auto: the choice with every GPU type schedulable
            chosen = choose(resource.spec, resource.name, checkpoint=checkpoint)
            result = chosen.result
            source = f"auto (any GPU type schedulable): {chosen.choice.message()}" if chosen.choice else None
        results.append(Planned(resource.name, resource, result, source))
    return results


def _source_line(info: CheckpointInfo) -> str:
    quantized = f", {info.quant_method} checkpoint" if info.quant_method else ""
    billions = info.architecture.parameters / 1e9
    return f"config.json ({info.model_type}, {billions:.2f}B parameters{quantized})"


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


def _print_plan_table(name: str, result: Plan | PlanErrors, out: TextIO, source: str | None = None) -> None:
    if isinstance(result, PlanErrors):
        print(f"{name}: REFUSED", file=out)
        _print_findings("error", result.errors, out)
        _print_findings("warning", result.warnings, out)
        return
    p = result
    concurrency = "-" if p.max_concurrency_at_slo is None else str(p.max_concurrency_at_slo)
    slo = "-" if p.slo_target_ms is None else f"{p.slo_target_ms:g} ms"
    rows = [
        *([("model", source)] if source else []),
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
    if args.compare:
        return _compare(args)
    results = _plan_documents(args.file, args.offline)
    if args.json:
        payloads = [_plan_json(item.result) for item in results]
        print(json.dumps(payloads[0] if len(payloads) == 1 else payloads, indent=2))
    else:
        for item in results:
            _print_plan_table(item.label, item.result, sys.stdout, item.source)
    return 0 if all(isinstance(item.result, Plan) for item in results) else 1


def _compare(args: argparse.Namespace) -> int:
    """`llmop plan --compare` (compare_cli.py): every candidate for each document, ranked by cost per token."""
    parsed: list[tuple[str, Resource | PlanErrors]] = []
    for index, document in enumerate(_documents(args.file)):
        resource = parse_resource(document)
        parsed.append(
            (_label(args.file, index, document) if isinstance(resource, PlanErrors) else resource.name, resource)
        )
    try:
        return run_compare(args, parsed, sys.stdout)
    except CompareInputError as error:
        raise InputError(str(error)) from None


def cmd_render(args: argparse.Namespace) -> int:
    objects: list[dict[str, Any]] = []
    failed = False
    for item in _plan_documents(args.file, args.offline):
        name, resource, result = item.label, item.resource, item.result
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

    p_plan = cli_help.describe(
        sub, "plan", "check an LLMDeployment and show the plan llmop would deploy", cli_help.PLAN,
        cli_help.PLAN_EXAMPLES,
    )  # fmt: skip
    p_plan.add_argument("-f", "--file", required=True, help="LLMDeployment YAML file ('-' for stdin)")
    p_plan.add_argument("--json", action="store_true", help="print one JSON object")
    add_compare_arguments(p_plan)
    p_plan.add_argument("--offline", action="store_true", help="do not read config.json from the hub")
    p_plan.set_defaults(func=cmd_plan)

    p_render = cli_help.describe(
        sub, "render", "print the Deployment, Service and PDB for kubectl apply", cli_help.RENDER,
        cli_help.RENDER_EXAMPLES,
    )  # fmt: skip
    p_render.add_argument("-f", "--file", required=True, help="LLMDeployment YAML file ('-' for stdin)")
    p_render.add_argument("-n", "--namespace", help="namespace for the objects (default: the resource's)")
    p_render.add_argument("--offline", action="store_true", help="do not read config.json from the hub")
    p_render.set_defaults(func=cmd_render)

    p_crd = cli_help.describe(
        sub, "crd", "print the LLMDeployment CustomResourceDefinition", cli_help.CRD, cli_help.CRD_EXAMPLES
    )
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
    except BrokenPipeError:
        return _closed_pipe()


def _closed_pipe() -> int:
    """The reader went away (`llmop plan -f X | head -3`): stop quietly, as a command killed by SIGPIPE would."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())  # Python's flush of stdout at exit must not raise again
    os.close(devnull)
    return 141


if __name__ == "__main__":
    sys.exit(main())
