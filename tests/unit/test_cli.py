"""The llmop CLI: plan (table and JSON), render, crd, and one-line errors for bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from llmop.api.crd import crd_yaml
from llmop.cli import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))


def _run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "llmop.cli", *args], input=stdin, capture_output=True, text=True, timeout=60, cwd=ROOT
    )


def test_examples_cover_engines_gpu_generations_and_methods() -> None:
    docs = [yaml.safe_load(p.read_text()) for p in EXAMPLES]
    assert len(docs) >= 5
    assert {d["spec"]["engine"] for d in docs} == {"vllm", "tgi"}
    assert len({d["spec"]["quantization"] for d in docs}) >= 5
    from llmop.catalog.gpus import GPUS

    assert len({GPUS[d["spec"]["gpu"]["type"]].architecture for d in docs}) >= 3


def test_plan_json_for_every_example(capsys) -> None:  # type: ignore[no-untyped-def]
    for path in EXAMPLES:
        assert main(["plan", "-f", str(path), "--json"]) == 0, path
        out = json.loads(capsys.readouterr().out)
        assert out["ok"] is True and out["errors"] == []
        keys = {
            "engine",
            "engineVersion",
            "image",
            "gpuType",
            "tensorParallel",
            "gpusPerReplica",
            "command",
            "args",
            "env",
            "dtype",
            "attentionBackend",
            "weightsGiB",
            "kvCacheGiB",
            "decodeFloorMs",
            "nodeSelector",
        }
        assert keys <= set(out["plan"])


def test_refused_plan_exits_non_zero_with_fields() -> None:
    result = _run("plan", "-f", str(ROOT / "examples/invalid/nf4-on-vllm.yaml"), "--json")
    assert result.returncode == 1
    out = json.loads(result.stdout)
    assert out["ok"] is False and out["errors"][0]["field"] == "spec.quantization"
    table = _run("plan", "-f", str(ROOT / "examples/invalid/nf4-on-vllm.yaml"))
    assert table.returncode == 1 and "REFUSED" in table.stdout and "removed in 0.28.0" in table.stdout


def test_bad_input_gets_one_line_not_a_traceback(tmp_path: Path) -> None:
    cases = {
        "broken.yaml": "spec: [unclosed",
        "kind.yaml": "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n",
        "missing.yaml": "apiVersion: llmop.io/v1alpha1\nkind: LLMDeployment\nmetadata: {name: x}\n"
        "spec: {gpu: {type: L4}}\n",
        "gpu.yaml": "apiVersion: llmop.io/v1alpha1\nkind: LLMDeployment\nmetadata: {name: x}\n"
        "spec: {model: {name: a/b}, gpu: {type: V100}}\n",
        "empty.yaml": "",
    }
    expected = {
        "broken.yaml": "not valid YAML",
        "kind.yaml": "kind: 'Pod' is not 'LLMDeployment'",
        "missing.yaml": "spec.model: is required",
        "gpu.yaml": "spec.gpu.type: 'V100' is not one of T4, A10G,",
        "empty.yaml": "no LLMDeployment",
    }
    for name, text in cases.items():
        path = tmp_path / name
        path.write_text(text)
        result = _run("plan", "-f", str(path))
        output = result.stdout + result.stderr
        assert result.returncode != 0, name
        assert "Traceback" not in output, output
        assert expected[name] in output, (name, output)
    missing = _run("plan", "-f", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1


def test_plan_reads_stdin() -> None:
    text = (ROOT / "examples/qwen25-7b-l4-gptq-vllm.yaml").read_text()
    result = _run("plan", "-f", "-", "--json", stdin=text)
    assert result.returncode == 0 and json.loads(result.stdout)["plan"]["quantizationFlag"] == "gptq_marlin"


def test_render_is_kubectl_ready_yaml() -> None:
    result = _run("render", "-f", str(ROOT / "examples/llama31-8b-h100-fp8-vllm.yaml"), "-n", "prod")
    assert result.returncode == 0
    objects = list(yaml.safe_load_all(result.stdout))
    assert [o["kind"] for o in objects] == ["Deployment", "Service", "PodDisruptionBudget"]
    assert all(o["metadata"]["namespace"] == "prod" for o in objects)


def test_committed_crd_is_up_to_date() -> None:
    committed = (ROOT / "crds/llmop.io_llmdeployments.yaml").read_text()
    assert committed == crd_yaml(), "crds/ is stale: run `llmop crd -o crds/llmop.io_llmdeployments.yaml`"
