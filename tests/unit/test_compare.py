"""Hardware comparison and `auto`: ranking by cost per token against hand-computed figures, rejections with what
would fix them, the chooser (schedulable types, runner-up, remembered choice, near miss), prices and the CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from llmop.api.spec import LLMDeploymentSpec
from llmop.autoscale.capacity import CapacityModel, mean_itl_ms
from llmop.catalog.engines import Engine
from llmop.catalog.prices import DEFAULT_PRICES, PriceFileError, price_table
from llmop.catalog.quality import QUALITY
from llmop.catalog.quantization import Quantization as Q
from llmop.cli import main
from llmop.controller.gpu_choice import schedulable_gpus, with_choice
from llmop.controller.plans import Planned
from llmop.controller.reconcile import Reconciler
from llmop.controller.settings import OperatorConfig
from llmop.controller.status_update import StatusUpdate
from llmop.plan.types import Plan, PlanErrors
from llmop.sizing.choose import choose, fingerprint
from llmop.sizing.compare import Comparison, Option, Rejection, Workload, compare
from support.fake_kube import FakeKube

PRICES = price_table({"L4": 1.0, "A10G": 2.0, "L40S": 3.0, "H100-80GB": 8.0}, "t.yaml")
GPUS4 = ["L4", "A10G", "L40S", "H100-80GB"]
TOKENS_PER_HOUR = 4 * 128 * 3600  # 4 req/s x 128 output tokens x 3600 s = 1,843,200


def _spec(**changes: Any) -> LLMDeploymentSpec:
    raw: dict[str, Any] = {
        "model": {"name": "meta-llama/Llama-3.1-8B-Instruct"},
        "gpu": {"type": "L4"},
        "maxModelLen": 4096,
        "replicas": {"min": 1, "max": 4},
        "slo": {"decodeLatency": {"targetMs": 40}},
    }
    raw.update(changes)
    return LLMDeploymentSpec.model_validate(raw)


def _compare(rps: float | None, **kwargs: Any) -> Comparison:
    kwargs.setdefault("gpus", GPUS4)
    kwargs.setdefault("quantizations", [Q.NONE, Q.FP8])
    kwargs.setdefault("engines", [Engine.VLLM])
    result = compare(_spec(), Workload(rps, 512, 128), PRICES, **kwargs)
    assert isinstance(result, Comparison)
    return result


def _by_label(result: Comparison) -> dict[str, Option]:
    return {option.candidate.label: option for option in result.options}


def test_at_a_load_the_cost_is_replicas_x_gpus_x_price_over_the_tokens_and_ranks_cheapest_first() -> None:
    result = _compare(4.0)
    labels = [o.candidate.label for o in result.options]
    assert labels[:7] == [
        "2 x L4 fp8 vllm",  # 1 replica x 2 GPUs x $1 = $2/h
        "1 x L40S fp8 vllm",  # 1 x 1 x $3 = $3/h (ties with none: fp8 sorts first)
        "1 x L40S none vllm",
        "2 x A10G fp8 vllm",  # 1 x 2 x $2 = $4/h
        "4 x L4 fp8 vllm",
        "4 x L4 none vllm",
        "1 x A10G fp8 vllm",  # 3 replicas x 1 x $2 = $6/h
    ]
    hand = {  # label: (replicas, GPUs per replica, USD per GPU-hour)
        "2 x L4 fp8 vllm": (1, 2, 1.0),
        "1 x L40S fp8 vllm": (1, 1, 3.0),
        "1 x A10G fp8 vllm": (3, 1, 2.0),
        "2 x L4 none vllm": (4, 2, 1.0),
        "1 x A10G none vllm": (7, 1, 2.0),
        "1 x H100-80GB fp8 vllm": (1, 1, 8.0),
    }
    options = _by_label(result)
    for label, (replicas, gpus, price) in hand.items():
        option = options[label]
        assert option.replicas == replicas, label
        assert option.usd_per_hour == replicas * gpus * price
        assert option.usd_per_million_tokens == pytest.approx(
            replicas * gpus * price / TOKENS_PER_HOUR * 1e6, rel=1e-12
        )
    assert options["2 x L4 fp8 vllm"].usd_per_million_tokens == pytest.approx(1.0850694444444444, rel=1e-12)
    costs = [o.usd_per_million_tokens for o in result.options]
    assert costs == sorted(costs)


def test_replicas_are_the_fewest_whose_mean_itl_meets_the_slo() -> None:
    for option in _compare(4.0).options:
        model = CapacityModel.from_plan(option.plan)
        replicas = option.replicas
        assert replicas is not None and replicas == math.ceil(4.0 / option.capacity_rps - 1e-9)
        assert mean_itl_ms(model, 4.0 / replicas, 512, 128) <= 40
        if replicas > 1:
            assert mean_itl_ms(model, 4.0 / (replicas - 1), 512, 128) > 40


def test_without_a_load_each_replica_runs_at_its_slo_capacity() -> None:
    result = _compare(None)
    top = result.options[0]
    assert top.candidate.label == "1 x H100-80GB fp8 vllm"
    assert top.replicas is None and top.usd_per_hour is None
    assert top.usd_per_million_tokens == pytest.approx(8.0 / (top.capacity_rps * 128 * 3600) * 1e6, rel=1e-12)
    model = CapacityModel.from_plan(top.plan)
    assert mean_itl_ms(model, top.capacity_rps, 512, 128) <= 40 < mean_itl_ms(model, top.capacity_rps * 1.001, 512, 128)
    # The decode floor is the planner's model at batch 1: W / (BW x 0.81 x k) + compute + 0.1 ms
    weights = top.plan.decode_model.weight_bytes
    floor = weights / (3350e9 * 0.81 * 0.88) * 1e3 + 2 * 8_030_261_248 / 989e12 * 0.5 * 1e3 + 0.1
    assert top.plan.decode_floor_ms == pytest.approx(floor, rel=1e-12)


def test_a_floor_above_the_slo_is_rejected_with_the_target_that_would_work() -> None:
    rejected = {r.candidate.label: r for r in _compare(4.0).rejections}
    assert sorted(rejected) == ["1 x L4 fp8 vllm", "1 x L4 none vllm"]
    slow = rejected["1 x L4 none vllm"]
    assert (slow.kind, slow.reason) == ("slo", "decode floor 66.3 ms is above the 40 ms SLO")
    assert slow.fix == "raise spec.slo.decodeLatency.targetMs to 66.3 or more"


def _rejection(result: Comparison, label: str) -> Rejection:
    return next(r for r in result.rejections if r.candidate.label == label)


def test_each_kind_of_rejection_says_why_and_what_would_fix_it() -> None:
    spec = _spec(model={"name": "meta-llama/Llama-3.1-70B-Instruct"}, slo={"decodeLatency": {"targetMs": 50}})
    result = compare(spec, Workload(20), DEFAULT_PRICES, gpus=["L4", "H200"], engines=[Engine.VLLM, Engine.TGI])
    assert isinstance(result, Comparison)
    memory = _rejection(result, "1 x L4 none vllm")
    assert memory.kind == "memory"
    # 23034 MiB x 0.92 (vLLM's memory fraction) - 1.5 GiB runtime = 19.2 GiB for 131.4 GiB of bf16 weights
    assert memory.reason == "131.4 GiB of weights do not fit the 19.2 GiB left on 1 x L4"
    assert memory.fix == "112.3 GiB more GPU memory, more GPUs per replica or a 4-bit quantization"
    compat = _rejection(result, "1 x L4 nf4 vllm")
    assert compat.kind == "compat"
    assert compat.reason.startswith("quantization nf4 is not available in vLLM 0.33.0 (removed in 0.28.0)")
    price = _rejection(result, "1 x H200 fp8 vllm")
    assert (price.kind, price.reason) == ("price", "no price for H200 in the price table")
    assert price.fix == "give H200's price per GPU-hour (--prices)"
    long_context = compare(_spec(maxModelLen=131072), Workload(), PRICES, gpus=["L4"], quantizations=[Q.FP8])
    assert isinstance(long_context, Comparison)
    short = _rejection(long_context, "1 x L4 fp8 vllm")
    assert short.kind == "memory"
    assert short.fix.startswith("lower spec.maxModelLen to ") and short.fix.endswith(" or less")
    assert int(short.fix.split()[3]) < 131072


def test_unschedulable_candidates_keep_their_figures_for_the_near_miss() -> None:
    result = _compare(4.0, schedulable={"L4": 1, "A10G": 8})
    labels = [o.candidate.label for o in result.options]
    assert labels[0] == "2 x A10G fp8 vllm" and all("L40S" not in x and "H100" not in x for x in labels)
    blocked = _rejection(result, "2 x L4 fp8 vllm")
    assert blocked.kind == "unschedulable"
    assert blocked.reason == "nodes labelled nvidia.com/gpu.product=NVIDIA-L4 have at most 1 allocatable nvidia.com/gpu"
    assert blocked.fix == "add a node labelled nvidia.com/gpu.product=NVIDIA-L4 with 2 allocatable GPUs"
    assert blocked.option is not None and blocked.option.usd_per_hour == 2.0
    nearest = result.near_miss()
    assert nearest is not None and nearest.candidate.label == "2 x L4 fp8 vllm"


def test_compare_needs_an_slo() -> None:
    result = compare(_spec(slo={}), Workload(), PRICES)
    assert isinstance(result, PlanErrors)
    assert result.errors[0].field == "spec.slo.decodeLatency"


AUTO_GPUS = {"type": "auto", "candidates": ["A100-40GB", "A100-80GB", "A10G"]}
FLEET = {"H100-80GB": 8, "H200": 8, "A100-80GB": 4, "L40S": 4, "L4": 1, "A10G": 1, "T4": 4}


def test_auto_takes_the_cheapest_schedulable_candidate_and_names_the_runner_up() -> None:
    spec = _spec(gpu=AUTO_GPUS, maxModelLen=8192)
    anywhere = choose(spec, "chat")
    assert anywhere.choice is not None
    assert anywhere.choice.chosen.candidate.label == "1 x A100-40GB none vllm"
    here = choose(spec, "chat", schedulable=FLEET)  # no A100-40GB nodes: the next
    assert here.choice is not None and isinstance(here.result, Plan)
    assert (here.result.gpu_type, here.result.tensor_parallel, here.result.quantization) == ("A100-80GB", 1, "none")
    status = here.choice.to_status()
    assert {k: status[k] for k in ("gpuType", "quantization", "tensorParallel", "engine", "specHash")} == {
        "gpuType": "A100-80GB",
        "quantization": "none",
        "tensorParallel": 1,
        "engine": "vllm",
        "specHash": fingerprint(spec),
    }
    assert status["runnerUp"]["gpuType"] == "A10G" and status["runnerUp"]["tensorParallel"] == 1
    assert status["usdPerMillionTokens"] < status["runnerUp"]["usdPerMillionTokens"]
    assert here.choice.message().startswith("chose 1 x A100-80GB none vllm at $0.97 per million output tokens")


def test_a_remembered_choice_is_kept_until_the_spec_changes() -> None:
    spec = _spec(gpu=AUTO_GPUS, maxModelLen=8192)
    first = choose(spec, "chat", schedulable=FLEET)
    assert first.choice is not None
    status = {"gpuChoice": first.choice.to_status()}
    later = choose(spec, "chat", schedulable={**FLEET, "A100-40GB": 8}, status=status)  # cheaper nodes arrive
    assert later.choice is None and isinstance(later.result, Plan) and later.result.gpu_type == "A100-80GB"
    changed = _spec(gpu=AUTO_GPUS, maxModelLen=4096)
    again = choose(changed, "chat", schedulable={**FLEET, "A100-40GB": 8}, status=status)
    assert again.choice is not None and again.choice.chosen.candidate.gpu == "A100-40GB"
    replicas_only = _spec(gpu=AUTO_GPUS, maxModelLen=8192, replicas={"min": 2, "max": 9})
    assert fingerprint(replicas_only) == fingerprint(spec)


def test_quantization_auto_keeps_to_near_lossless_methods_unless_told_or_named() -> None:
    spec = _spec(gpu={"type": "H100-80GB"}, quantization="auto")
    chosen = choose(spec, "chat")
    assert chosen.choice is not None and chosen.choice.chosen.candidate.quantization == Q.FP8
    assert chosen.choice.considered == 8  # none, fp8 x TP 1, 2, 4, 8
    awq = _spec(gpu={"type": "H100-80GB"}, quantization="auto", quantizationCandidates=["awq"])
    refused = choose(awq, "chat").result
    assert isinstance(refused, PlanErrors)
    assert "1 x H100-80GB awq vllm" in refused.summary
    assert "set spec.model.name to a AWQ checkpoint of the model" in refused.summary
    named = _spec(model={"name": "hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4"}, gpu={"type": "L4"})
    named = named.model_copy(update={"quantization": "auto"})
    result = choose(named, "chat").result
    assert isinstance(result, Plan) and result.quantization == "awq"


def test_a_refused_auto_names_the_cheapest_near_miss_and_the_fix() -> None:
    spec = _spec(
        model={"name": "meta-llama/Llama-3.1-70B-Instruct"},
        gpu={"type": "auto", "candidates": ["L4"]},
        maxModelLen=8192,
        slo={"decodeLatency": {"targetMs": 50}},
    )
    result = choose(spec, "big", schedulable=FLEET).result
    assert isinstance(result, PlanErrors)
    assert result.errors[0].field == "spec.gpu.type"
    assert result.errors[0].message == (
        "auto: none of 4 candidates fits, meets the SLO and schedules; cheapest near miss: 8 x L4 none vllm: "
        "decode floor 79.2 ms is above the 50 ms SLO; it would fit with: raise spec.slo.decodeLatency.targetMs "
        "to 79.2 or more"
    )
    spec = _spec(gpu={"type": "auto", "candidates": ["L40S", "L4"]}, maxModelLen=8192)
    result = choose(spec, "chat", schedulable={"T4": 4}).result
    assert isinstance(result, PlanErrors)
    assert result.errors[0].message.startswith(
        "auto: none of 8 candidates fits, meets the SLO and schedules; cheapest near miss: 1 x L40S none vllm ($"
    )
    assert result.errors[0].message.endswith(
        "no node labelled nvidia.com/gpu.product=NVIDIA-L40S has allocatable nvidia.com/gpu; it would fit with: "
        "add a node labelled nvidia.com/gpu.product=NVIDIA-L40S with 1 allocatable GPUs"
    )


def test_the_api_refuses_candidates_without_auto() -> None:
    with pytest.raises(ValueError, match=r"gpu\.candidates needs gpu\.type auto"):
        _spec(gpu={"type": "L4", "candidates": ["L4"]})
    with pytest.raises(ValueError, match="quantizationCandidates needs quantization auto"):
        _spec(quantization="fp8", quantizationCandidates=["fp8"])
    plain = _spec(gpu={"type": "auto"})
    from llmop.plan.planner import plan

    refused = plan(plain)
    assert isinstance(refused, PlanErrors) and refused.errors[0].field == "spec.gpu.type"


def _node(product: str | None, gpus: str, unschedulable: bool = False) -> dict[str, Any]:
    labels = {"nvidia.com/gpu.product": product} if product else {}
    return {
        "metadata": {"labels": labels},
        "spec": {"unschedulable": True} if unschedulable else {},
        "status": {"allocatable": {"nvidia.com/gpu": gpus}},
    }


def test_schedulable_gpus_reads_gfd_labels_and_allocatable_gpus() -> None:
    nodes = [
        _node("NVIDIA-H100-80GB-HBM3", "8"),
        _node("NVIDIA-H100-80GB-HBM3", "4"),
        _node("NVIDIA-L4", "0"),  # no allocatable GPUs
        _node("NVIDIA-A10G", "1", unschedulable=True),  # cordoned
        _node("Some-Other-GPU", "8"),
        _node(None, "8"),
        _node("Tesla-T4", "4"),
    ]
    assert schedulable_gpus(nodes) == {"H100-80GB": 8, "T4": 4}


def test_with_choice_records_the_choice_once_with_an_event_and_drops_it_for_concrete_specs() -> None:
    spec = _spec(gpu=AUTO_GPUS, maxModelLen=8192)
    chosen = choose(spec, "chat", schedulable=FLEET)
    planned = Planned(spec, chosen.result, choice=chosen.choice)
    update = with_choice(StatusUpdate({"phase": "Pending"}, []), planned, {})
    assert update.status["gpuChoice"]["gpuType"] == "A100-80GB"
    assert [(e.type, e.reason) for e in update.events] == [("Normal", "GPUChosen")]
    assert update.events[0].message.startswith("chose 1 x A100-80GB none vllm at $0.97")
    again = with_choice(StatusUpdate({}, []), planned, {"gpuChoice": update.status["gpuChoice"]})
    assert again.events == []
    concrete = Planned(_spec(), PlanErrors(()))
    dropped = with_choice(StatusUpdate({}, []), concrete, {"gpuChoice": update.status["gpuChoice"]})
    assert dropped.status == {"gpuChoice": None}


class _NodesKube(FakeKube):
    def __init__(self, nodes: list[dict[str, Any]]) -> None:
        super().__init__()
        self.nodes = nodes

    def list_nodes(self) -> list[dict[str, Any]]:
        self.calls.append("list_nodes")
        return self.nodes


def test_the_reconciler_lists_nodes_records_the_choice_and_then_reuses_it() -> None:
    kube = _NodesKube([_node("NVIDIA-A100-SXM4-80GB", "4"), _node("NVIDIA-A10G", "1")])
    body: dict[str, Any] = {
        "apiVersion": "llmop.io/v1alpha1",
        "kind": "LLMDeployment",
        "metadata": {"name": "chat"},
        "spec": _spec(gpu=AUTO_GPUS, maxModelLen=8192).model_dump(by_alias=True, exclude_none=True, mode="json"),
    }
    kube.add_llmd(body)
    reconciler = Reconciler(kube, OperatorConfig())  # type: ignore[arg-type]
    reconciler.reconcile({"metadata": {"namespace": "ns", "name": "chat"}})
    status = kube.llmds[("ns", "chat")]["status"]
    assert status["gpuChoice"]["gpuType"] == "A100-80GB" and status["gpuChoice"]["runnerUp"]["gpuType"] == "A10G"
    selector = kube.objects[("Deployment", "ns", "chat")]["spec"]["template"]["spec"]["nodeSelector"]
    assert selector["nvidia.com/gpu.product"] == "NVIDIA-A100-SXM4-80GB"
    assert [e.reason for e in kube.events].count("GPUChosen") == 1
    kube.nodes.append(_node("NVIDIA-A100-SXM4-40GB", "8"))  # a cheaper type appears: no switch without a spec change
    kube.calls.clear()
    reconciler.plans.forget("ns", "chat")
    reconciler.reconcile({"metadata": {"namespace": "ns", "name": "chat"}})
    assert "list_nodes" not in kube.calls
    assert "patch_llmd_status" not in kube.calls  # steady state: nothing to write (no null-keyed plan either)
    assert kube.llmds[("ns", "chat")]["status"]["gpuChoice"]["gpuType"] == "A100-80GB"
    assert [e.reason for e in kube.events].count("GPUChosen") == 1


def test_price_files_override_the_defaults_per_gpu_and_bad_ones_are_refused() -> None:
    table = price_table({"source": "our rates", "asOf": "2026-11", "prices": {"H200": 3.5}}, "p.yaml")
    assert table.price("H200") is not None and table.price("H200").usd_per_gpu_hour == 3.5  # type: ignore[union-attr]
    assert table.price("L4") == DEFAULT_PRICES.price("L4")
    assert table.describe() == "our rates, as of 2026-11"
    for bad, message in [
        ({"V100": 1.0}, "'V100' is not a catalog GPU type"),
        ({"L4": -1}, "L4: -1 is not a positive number of USD per GPU-hour"),
        ({"L4": True}, "L4: True is not a positive number"),
        ({"prices": {"L4": 1}, "currency": "EUR"}, "unknown key(s) currency"),
        ([1, 2], "expected a mapping"),
    ]:
        with pytest.raises(PriceFileError, match=message.replace("(", r"\(").replace(")", r"\)")):
            price_table(bad, "p.yaml")
    assert DEFAULT_PRICES.as_of == "2024-06" and DEFAULT_PRICES.price("H200") is None
    l40s = DEFAULT_PRICES.price("L40S")
    assert l40s is not None  # g6e.xlarge $1.861; g6e.12xlarge $10.4926 / 4; g6e.48xlarge $30.1312 / 8
    assert [l40s.for_gpus(n) for n in (1, 2, 4, 8)] == [1.861, 2.6232, 2.6232, 3.7664]
    h100 = DEFAULT_PRICES.price("H100-80GB")
    assert h100 is not None and [h100.for_gpus(n) for n in (1, 8)] == [12.29, 12.29]  # p5.48xlarge $98.32 / 8
    assert set(QUALITY) == set(Q)


SPEC_YAML = """
apiVersion: llmop.io/v1alpha1
kind: LLMDeployment
metadata: {name: chat}
spec:
  model: {name: meta-llama/Llama-3.1-8B-Instruct}
  gpu: {type: L4}
  maxModelLen: 4096
  replicas: {min: 1, max: 4}
  slo: {decodeLatency: {targetMs: 40}}
"""


def test_cli_compare_prints_the_ranking_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec_file = tmp_path / "chat.yaml"
    spec_file.write_text(SPEC_YAML)
    prices = tmp_path / "prices.yaml"
    prices.write_text(yaml.safe_dump({"L4": 1.0, "A10G": 2.0, "L40S": 3.0, "H100-80GB": 8.0}))
    argv = [
        "plan",
        "-f",
        str(spec_file),
        "--compare",
        "--load",
        "4",
        "--prompt-tokens",
        "512",
        "--output-tokens",
        "128",
    ]
    assert main([*argv, "--prices", str(prices), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    first = payload["options"][0]
    assert (first["gpuType"], first["quantization"], first["tensorParallel"], first["engine"]) == (
        "L4",
        "awq",
        2,
        "tgi",
    )
    assert first["notes"][0].startswith("quantization awq loads a pre-quantized checkpoint")
    assert first["usdPerMillionOutputTokens"] == 1.0851 and first["replicas"] == 1 and first["usdPerHour"] == 2.0
    assert payload["workload"] == {"rps": 4.0, "promptTokens": 512, "outputTokens": 128}
    assert payload["prices"]["source"] == str(prices)
    assert set(payload["quality"]) <= {q.value for q in Q}
    assert main([*argv, "--prices", str(prices), "--top", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == (
        "chat: 274 of 560 candidates meet 40 ms per output token for meta-llama/Llama-3.1-8B-Instruct; "
        "load 4 req/s, 512 prompt + 128 output tokens per request"
    )
    assert [line.split()[:6] for line in out if line.startswith("  1  ")] == [["1", "2", "x", "L4", "awq", "tgi"]]
    assert any(line.startswith("  rejected") for line in out) and any(line.startswith("  quality") for line in out)
    bad = tmp_path / "bad.yaml"
    bad.write_text("{L4: free}")
    assert main([*argv, "--prices", str(bad)]) == 2
    assert "L4: 'free' is not a positive number" in capsys.readouterr().err


def test_the_operator_prices_file_decides_the_choice(tmp_path: Path) -> None:
    from llmop.controller.gpu_choice import load_prices
    from llmop.controller.plans import PlanCache

    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"source": "our contract", "asOf": "2026-12", "prices": {"A10G": 0.1}}))
    prices = load_prices(str(path))
    assert load_prices(None) is DEFAULT_PRICES
    spec = _spec(gpu=AUTO_GPUS, maxModelLen=8192).model_dump(by_alias=True, exclude_none=True, mode="json")
    body = {"metadata": {"namespace": "ns", "name": "chat", "uid": "u", "generation": 1}, "spec": spec}
    planned = PlanCache(gpus=lambda: FLEET, prices=prices).get(body)
    assert planned.choice is not None and planned.choice.chosen.candidate.label == "1 x A10G none vllm"
    assert planned.choice.to_status()["priceSource"] == "our contract, as of 2026-12"
    with pytest.raises(ValueError, match="cannot read prices"):
        load_prices(str(tmp_path / "missing.yaml"))


def test_with_an_expected_load_auto_takes_the_cheapest_per_hour_at_that_load() -> None:
    load = {"requestsPerSecond": 4, "promptTokens": 512, "outputTokens": 128}
    spec = _spec(gpu={"type": "auto", "candidates": GPUS4}, quantization="fp8", expectedLoad=load)
    anywhere = choose(spec, "chat", prices=PRICES).choice
    assert anywhere is not None
    # the hand-computed ranking above: 1 replica x 2 x L4 at $1 = $2/h, then 1 x L40S at $3/h
    assert anywhere.chosen.candidate.label == "2 x L4 fp8 vllm" and anywhere.chosen.usd_per_hour == 2.0
    assert anywhere.runner_up is not None and anywhere.runner_up.candidate.label == "1 x L40S fp8 vllm"
    assert anywhere.to_status()["replicas"] == 1
    assert anywhere.message().startswith(
        "chose 2 x L4 fp8 vllm x 1 replica at $2.00/h, $1.09 per million output tokens; "
        "runner-up 1 x L40S fp8 vllm x 1 replica at $3.00/h, $1.63 per million output tokens"
    )
    here = choose(spec, "chat", prices=PRICES, schedulable={"L4": 1, "L40S": 4}).choice
    assert here is not None and here.chosen.candidate.label == "1 x L40S fp8 vllm"
    assert fingerprint(spec) != fingerprint(_spec(gpu={"type": "auto", "candidates": GPUS4}, quantization="fp8"))


def test_cli_compare_uses_the_specs_expected_load(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec_file = tmp_path / "chat.yaml"
    spec_file.write_text(SPEC_YAML + "  expectedLoad: {requestsPerSecond: 4, promptTokens: 512, outputTokens: 128}\n")
    assert main(["plan", "-f", str(spec_file), "--compare", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["workload"] == {"rps": 4.0, "promptTokens": 512, "outputTokens": 128}
    assert main(["plan", "-f", str(spec_file), "--compare", "--json", "--load", "8"]) == 0
    assert json.loads(capsys.readouterr().out)["workload"]["rps"] == 8.0
