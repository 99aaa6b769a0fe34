"""Descriptions and examples for `llmop COMMAND --help`."""

from __future__ import annotations

import argparse

FORMATTER = argparse.RawDescriptionHelpFormatter

PLAN = """\
Check an LLMDeployment before any pod starts and print the plan llmop would deploy: engine, image, GPUs per
replica, quantization flag, attention backend, memory, decode-latency floor and the command line. A model outside
llmop's catalog without spec.model.architecture is planned from its config.json on the hub (HF_ENDPOINT, HF_TOKEN
honoured; kept under ~/.cache/llmop/hub). Exit status: 0 when every object is accepted, 1 when one is refused,
2 when the file cannot be read."""
PLAN_EXAMPLES = """\
examples:
  llmop plan -f examples/llama31-70b-a100-awq-vllm.yaml
  llmop plan -f examples/invalid/nf4-on-vllm.yaml --json | jq .errors
  kubectl get llmd my-model -o yaml | llmop plan -f -
  HF_TOKEN=hf_... llmop plan -f my-gated-model.yaml"""

RENDER = """\
Print the Deployment, Service and PodDisruptionBudget llmop would create for each accepted LLMDeployment, as YAML
ready for kubectl apply (refusals go to stderr)."""
RENDER_EXAMPLES = """\
examples:
  llmop render -f examples/llama31-8b-h100-fp8-vllm.yaml
  llmop render -f examples/llama31-8b-h100-fp8-vllm.yaml -n ml | kubectl apply -f -
  llmop render -f model.yaml | kubectl diff -f -"""

CRD = """Print the LLMDeployment CustomResourceDefinition, generated from llmop's API models (crds/ holds it)."""
CRD_EXAMPLES = """\
examples:
  llmop crd | kubectl apply --server-side -f -
  llmop crd -o crds/llmop.io_llmdeployments.yaml"""


SubParsers = argparse._SubParsersAction  # argparse's type of `add_subparsers()`


def describe(
    sub: SubParsers[argparse.ArgumentParser], name: str, help_text: str, description: str, examples: str
) -> argparse.ArgumentParser:
    """A subcommand with a one-line help, a description and examples in its --help."""
    parser: argparse.ArgumentParser = sub.add_parser(
        name, help=help_text, description=description, epilog=examples, formatter_class=FORMATTER
    )
    return parser
