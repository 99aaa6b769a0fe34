"""The CLI as people use it: a closed pipe, --help with examples, "did you mean", messages that name the object."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from llmop.plan.suggest import closest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "llama31-70b-a100-awq-vllm.yaml"


def _run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "llmop.cli", *args], input=stdin, capture_output=True, text=True, timeout=60, cwd=ROOT
    )


@pytest.mark.parametrize("command", ["plan", "render"])
def test_a_closed_pipe_ends_quietly(command: str) -> None:
    """`llmop plan -f X | head -3`: the reader exits after three lines; no BrokenPipeError traceback."""
    shell = f"{sys.executable} -m llmop.cli {command} -f {EXAMPLE} --offline | head -3; echo rc=${{PIPESTATUS[0]}}"
    result = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, timeout=60, cwd=ROOT)
    lines = result.stdout.splitlines()
    assert len(lines) == 4 and lines[-1] in {"rc=0", "rc=141"}
    assert result.stderr == ""


@pytest.mark.parametrize("command", ["plan", "render", "crd", "run", "dev", "demo", "sim", "probe", "simulate"])
def test_each_subcommand_has_a_description_and_examples(command: str) -> None:
    result = _run(command, "--help")
    assert result.returncode == 0
    examples = result.stdout.split("\nexamples:\n")[1].splitlines()
    assert any(line.startswith(f"  llmop {command}") for line in examples), examples
    assert len(result.stdout.split("\n\n")[1]) > 60  # the description paragraph


@pytest.mark.parametrize(
    ("value", "choices", "expected"),
    [
        ("H100", ["T4", "H100-80GB", "H100-PCIe", "H200"], ["H100-80GB", "H100-PCIe"]),
        ("h200", ["H100-80GB", "H200"], ["H200"]),
        ("awk", ["none", "fp8", "awq", "gptq"], ["awq"]),
        ("V100", ["T4", "A10G", "H100-80GB"], []),
    ],
)
def test_closest_names(value: str, choices: list[str], expected: list[str]) -> None:
    assert closest(value, choices) == expected


def test_refusals_name_the_object_and_suggest_names() -> None:
    doc = (
        "apiVersion: llmop.io/v1alpha1\nkind: LLMDeployment\nmetadata: {name: typo, namespace: ml}\n"
        "spec: {model: {name: a/b, architecture: llama-3.1-8}, gpu: {type: H100}, quantization: awk, engine: vlm}\n"
        "---\napiVersion: llmop.io/v1alpha1\nkind: LLMDeployment\nmetadata: {}\nspec: {}\n"
    )
    result = _run("plan", "-f", "-", "--offline", stdin=doc)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "LLMDeployment/typo (namespace ml): REFUSED",
        "  error: spec.engine: 'vlm' is not one of vllm, tgi; did you mean vllm?",
        "  error: spec.quantization: 'awk' is not one of none, fp8, awq, gptq, int8, nf4, fp4, auto; did you mean awq?",
        "  error: spec.gpu.type: 'H100' is not one of T4, A10G, L4, L40S, A100-40GB, A100-80GB, H100-80GB, H100-PCIe, "
        "H200, B200, auto; did you mean H100-80GB or H100-PCIe?",
        "-: document 2 (LLMDeployment without metadata.name): REFUSED",
        "  error: metadata.name: is required",
    ]
    doc = doc.split("---")[0].replace("gpu: {type: H100}, quantization: awk, engine: vlm", "gpu: {type: L4}")
    arch = _run("plan", "-f", "-", "--offline", stdin=doc)
    assert "spec.model.architecture: 'llama-3.1-8' is not a catalog key (did you mean llama-3.1-8b?)" in arch.stdout
