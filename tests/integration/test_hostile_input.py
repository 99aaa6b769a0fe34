"""Hostile input on the real stack: fuzzed, oversized and shell-smuggling specs through admission and the operator."""

from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from llmop.api.spec import GROUP, PLURAL, VERSION
from llmop.plan.parse import parse_spec
from llmop.plan.planner import plan
from llmop.plan.types import Plan, PlanErrors
from support.operator import OperatorProcess, condition, get_llmd, llmd_api, wait_for
from unit.test_fuzz_planner import spec_strategy

SAMPLE = 40
MESSAGE_LIMIT = 32768  # the CRD's maxLength for a condition message
GOOD_SPEC: dict[str, Any] = {"model": {"name": "meta-llama/Llama-3.1-8B-Instruct"}, "gpu": {"type": "H100-80GB"}}


@dataclass
class Outcome:
    """What happened to one object: refused at admission (with the API's message) or created."""

    name: str
    spec: Any
    admission_error: str | None = None


def _body(name: str, spec: Any) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "LLMDeployment", "metadata": {"name": name}, "spec": spec}


def _create(kube: client.ApiClient, namespace: str, name: str, spec: Any) -> Outcome:
    try:
        llmd_api(kube).create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, _body(name, spec))
    except ApiException as error:
        assert error.status in (400, 422), (name, error.status, error.body)
        message = json.loads(error.body).get("message", "") if error.body else ""
        return Outcome(name, spec, admission_error=message or str(error))
    return Outcome(name, spec)


def _json_safe(value: Any) -> Any:
    """JSON has no NaN/inf: send the largest finite double instead (still hostile); keep replica counts small."""
    if isinstance(value, float) and not math.isfinite(value):
        return math.copysign(1e308, value) if not math.isnan(value) else -1e308
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_safe(item) for item in value]
    return value


def _sample(count: int) -> list[Any]:
    """`count` specs from the unit fuzz strategy, the same ones every run."""
    drawn: list[Any] = []

    @settings(
        max_examples=count,
        derandomize=True,
        database=None,
        deadline=None,
        phases=(Phase.generate,),
        suppress_health_check=list(HealthCheck),
    )
    @given(spec_strategy)
    def collect(spec: Any) -> None:
        drawn.append(copy.deepcopy(spec))

    collect()
    specs = []
    for spec in drawn[:count]:
        spec = _json_safe(spec)
        replicas = spec.get("replicas") if isinstance(spec, dict) else None
        if isinstance(replicas, dict) and isinstance(replicas.get("min"), int) and replicas["min"] > 2:
            replicas["min"] = 2  # GPU pods for a handful of replicas, not thousands, on a 2-core machine
        autoscaling = spec.get("autoscaling") if isinstance(spec, dict) else None
        url = autoscaling.get("prometheusUrl") if isinstance(autoscaling, dict) else None
        if isinstance(url, str) and url.startswith("http") and not url.startswith("http://127.0.0.1"):
            autoscaling.pop("prometheusUrl")  # never let the operator connect anywhere but 127.0.0.1
        specs.append(spec)
    return specs


def _planned(kube: client.ApiClient, namespace: str, name: str) -> dict[str, Any] | None:
    """The object once the operator has judged its current generation (Planned condition written)."""
    body = get_llmd(kube, namespace, name)
    planned = condition(body, "Planned")
    if not body or not planned:
        return None
    return body if planned.get("observedGeneration") == body["metadata"].get("generation") else None


def _operator_healthy(operator: OperatorProcess) -> None:
    assert operator.alive(), operator.log()[-4000:]
    log = operator.log()
    assert "Traceback" not in log, log[log.index("Traceback") - 2000 : log.index("Traceback") + 4000]
    errors = [line for line in log.splitlines() if " ERROR " in line]
    assert not errors, errors[:10]


def _deployment_names(kube: client.ApiClient, namespace: str) -> set[str]:
    return {d.metadata.name for d in client.AppsV1Api(kube).list_namespaced_deployment(namespace).items}


def test_fuzzed_specs_through_admission_and_the_operator(
    crd: str, namespace: str, kube: client.ApiClient, operator: OperatorProcess
) -> None:
    specs = _sample(SAMPLE)
    started = time.monotonic()
    outcomes = [_create(kube, namespace, f"fz-{index:02d}", spec) for index, spec in enumerate(specs)]
    refused = [o for o in outcomes if o.admission_error is not None]
    created = [o for o in outcomes if o.admission_error is None]
    for outcome in refused:  # the API server names the field it refused
        assert "spec" in outcome.admission_error, (outcome.spec, outcome.admission_error)  # type: ignore[operator]

    bodies = {
        o.name: wait_for(lambda o=o: _planned(kube, namespace, o.name), 90, what=f"Planned on {o.name}")
        for o in created
    }
    accepted: list[str] = []
    for name, body in bodies.items():
        planned = condition(body, "Planned")
        assert planned is not None and planned["message"], body.get("status")
        # the operator decides exactly what the planner decides on the stored (defaulted) spec
        local = parse_spec(body["spec"])
        local = local if isinstance(local, PlanErrors) else plan(local, name)
        if isinstance(local, Plan):
            assert planned["status"] == "True", (body["spec"], planned)
            accepted.append(name)
        else:
            assert planned["status"] == "False" and planned["reason"] == "PlanRefused", (body["spec"], planned)
            assert planned["message"] == local.summary[:MESSAGE_LIMIT]
            assert all(f.field.startswith("spec") for f in local.errors)
            assert body["status"]["phase"] == "Failed"
    wait_for(lambda: set(accepted) <= _deployment_names(kube, namespace), 60, what="Deployments of the accepted")
    time.sleep(3)  # a few resync and autoscaler passes over every object
    assert _deployment_names(kube, namespace) == set(accepted), "a refused spec got a Deployment"
    _operator_healthy(operator)
    print(
        f"fuzz sample: {len(specs)} specs, {len(refused)} refused at admission, {len(created) - len(accepted)} "
        f"refused by the planner, {len(accepted)} planned; {time.monotonic() - started:.1f} s"
    )
    # the sample mixes all three outcomes
    assert refused and accepted and len(created) > len(accepted), (len(refused), len(created), len(accepted))


# (id, metadata.name or None, spec changes, where it must be refused, the field the message must name)
HOSTILE: list[tuple[str, str | None, dict[str, Any], str, str]] = [
    ("long-model-name", None, {"model": {"name": "org/" + "m" * 296}}, "admission", "spec.model.name"),
    ("emoji-model-name", None, {"model": {"name": "llama-🦙/model"}}, "admission", "spec.model.name"),
    ("rtl-model-name", None, {"model": {"name": "\u202emeta-llama/Llama-3.1-8B"}}, "admission", "spec.model.name"),
    ("arabic-model-name", None, {"model": {"name": "نموذج/لغة"}}, "admission", "spec.model.name"),
    ("nul-model-name", None, {"model": {"name": "meta-llama/Llama\x00"}}, "admission", "spec.model.name"),
    ("newline-revision", None, {"model": {"name": "o/m", "revision": "main\n"}}, "admission", "spec.model.revision"),
    ("secret-name", None, {"model": {"name": "o/m", "tokenSecretRef": {"name": "Bad_Name!"}}},
     "admission", "spec.model.tokenSecretRef.name"),
    ("secret-key", None, {"model": {"name": "o/m", "tokenSecretRef": {"name": "hf", "key": "../t"}}},
     "admission", "spec.model.tokenSecretRef.key"),
    ("huge-max-model-len", None, {"maxModelLen": 10**12}, "admission", "spec.maxModelLen"),
    ("negative-max-model-len", None, {"maxModelLen": -5}, "admission", "spec.maxModelLen"),
    ("huge-replicas", None, {"replicas": {"min": 1, "max": 10**9}}, "admission", "spec.replicas.max"),
    ("negative-replicas", None, {"replicas": {"min": -1, "max": 2}}, "admission", "spec.replicas.min"),
    ("huge-target", None, {"slo": {"decodeLatency": {"targetMs": 1e308}}}, "admission",
     "spec.slo.decodeLatency.targetMs"),
    ("negative-target", None, {"slo": {"decodeLatency": {"targetMs": -3}}}, "admission",
     "spec.slo.decodeLatency.targetMs"),
    ("huge-window", None, {"slo": {"decodeLatency": {"targetMs": 40, "window": "99999999999999999999h"}}},
     "admission", "spec.slo.decodeLatency.window"),
    ("huge-gpu-count", None, {"gpu": {"type": "H100-80GB", "count": 10**12}}, "admission", "spec.gpu.count"),
    ("negative-gpu-count", None, {"gpu": {"type": "H100-80GB", "count": -1}}, "admission", "spec.gpu.count"),
    ("shell-engine-version", None, {"engineVersion": "0.33.0; rm -rf /"}, "admission", "spec.engineVersion"),
    ("file-prometheus", None, {"autoscaling": {"prometheusUrl": "file:///etc/passwd"}}, "admission",
     "spec.autoscaling.prometheusUrl"),
    ("100-args", None, {"engineArgs": ["--enable-prefix-caching"] * 100}, "admission", "spec.engineArgs"),
    ("2000-char-arg", None, {"engineArgs": ["--served-model-name=" + "x" * 2000]}, "admission",
     "spec.engineArgs[0]"),
    ("semicolon", None, {"engineArgs": ["--served-model-name", "a;b"]}, "planner", "spec.engineArgs[1]"),
    ("dollar-paren", None, {"engineArgs": ["--served-model-name=$(id)"]}, "planner", "spec.engineArgs[0]"),
    ("backticks", None, {"engineArgs": ["--served-model-name", "`id`"]}, "planner", "spec.engineArgs[1]"),
    ("and-and", None, {"engineArgs": ["--enforce-eager", "&&", "reboot"]}, "planner", "spec.engineArgs[1]"),
    ("newline", None, {"engineArgs": ["--enforce-eager\n--port=1"]}, "planner", "spec.engineArgs"),
    ("nul-arg", None, {"engineArgs": ["--served-model-name=a\x00b"]}, "planner", "spec.engineArgs"),
    ("nel-arg", None, {"engineArgs": ["--served-model-name=a\x85b"]}, "planner", "spec.engineArgs"),
    ("rtl-arg", None, {"engineArgs": ["--served-model-name=\u202eevil"]}, "planner", "spec.engineArgs"),
    ("underscore-tp", None, {"engineArgs": ["--tensor_parallel_size=8"]}, "planner", "spec.engineArgs[0]"),
    ("prefix-tp", None, {"engineArgs": ["--tensor-parallel", "8"]}, "planner", "spec.engineArgs[0]"),
    ("attached-q", None, {"engineArgs": ["-qawq"]}, "planner", "spec.engineArgs[0]"),
    ("dotted-attention", None, {"engineArgs": ["--attention-config.backend=FLASHINFER"]}, "planner",
     "spec.engineArgs[0]"),
    ("tgi-attached-port", None, {"engine": "tgi", "engineArgs": ["-p9000"]}, "planner", "spec.engineArgs[0]"),
    ("64-long-values", None, {"engineArgs": ["v" * 1000] * 64}, "planner", "spec.engineArgs[0]"),
    ("huge-parameters", None, {"model": {"name": "o/m", "architecture": {
        "parameters": 10**18, "layers": 32, "hiddenSize": 4096, "attentionHeads": 32, "kvHeads": 8, "headDim": 128,
        "vocabSize": 128256, "maxPositionEmbeddings": 131072}}}, "planner", "spec.model.architecture.parameters"),
    ("negative-layers", None, {"model": {"name": "o/m", "architecture": {
        "parameters": 8 * 10**9, "layers": -4, "hiddenSize": 4096, "attentionHeads": 32, "kvHeads": 8,
        "headDim": 128, "vocabSize": 128256, "maxPositionEmbeddings": 131072}}}, "planner",
     "spec.model.architecture.layers"),
    ("float-parameters", None, {"model": {"name": "o/m", "architecture": {"parameters": 1e308}}}, "planner",
     "spec.model.architecture.parameters"),
    ("emoji-architecture", None, {"model": {"name": "o/m", "architecture": "🦙"}}, "planner",
     "spec.model.architecture"),
    ("long-object-name", "n" * 70, {}, "planner", "metadata.name"),
    ("dotted-object-name", "dotted.name", {}, "planner", "metadata.name"),
]  # fmt: skip


def test_oversized_and_hostile_fields_are_refused_with_the_field_named(
    crd: str, namespace: str, kube: client.ApiClient, operator: OperatorProcess
) -> None:
    started = time.monotonic()
    outcomes: dict[str, tuple[Outcome, str, str]] = {}
    for index, (case, name, changes, where, field) in enumerate(HOSTILE):
        spec = {**copy.deepcopy(GOOD_SPEC), **changes}
        outcomes[case] = (_create(kube, namespace, name or f"h-{index:02d}", spec), where, field)
    failures: list[str] = []
    for case, (outcome, where, field) in outcomes.items():
        if where == "admission":
            if outcome.admission_error is None:
                failures.append(f"{case}: admitted, expected the API server to refuse {field}")
            elif field not in outcome.admission_error:
                failures.append(f"{case}: the API error does not name {field}: {outcome.admission_error[:300]}")
            continue
        if outcome.admission_error is not None:
            failures.append(f"{case}: refused at admission, expected the planner to: {outcome.admission_error}")
            continue
        body = wait_for(lambda o=outcome: _planned(kube, namespace, o.name), 90, what=f"Planned on {case}")
        planned = condition(body, "Planned")
        assert planned is not None
        if planned["status"] != "False" or planned["reason"] != "PlanRefused":
            failures.append(f"{case}: planned, expected a refusal naming {field}: {planned['message'][:300]}")
        elif f"{field}" not in planned["message"] or len(planned["message"]) > MESSAGE_LIMIT:
            failures.append(f"{case}: the status message does not name {field}: {planned['message'][:300]}")
    assert not failures, "\n".join(failures)
    time.sleep(3)  # resync passes over the refused objects
    assert _deployment_names(kube, namespace) == set(), "a refused spec got a Deployment"
    _operator_healthy(operator)
    print(f"{len(HOSTILE)} hostile specs judged in {time.monotonic() - started:.1f} s")


def _container(kube: client.ApiClient, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        raw = client.AppsV1Api(kube).read_namespaced_deployment(name, namespace, _preload_content=False).data
    except ApiException as error:
        if error.status == 404:
            return None
        raise
    containers = json.loads(raw)["spec"]["template"]["spec"]["containers"]
    return containers[0]


def test_engine_args_reach_the_engine_as_an_argv_never_a_shell(
    crd: str, namespace: str, kube: client.ApiClient, operator: OperatorProcess
) -> None:
    # values a shell would split, glob, expand or unquote; without a shell each stays one argv element, verbatim
    tricky = {
        "vllm": ["--served-model-name", "my model *", "--override-generation-config", '{"temperature": 0.5}',
                 "--chat-template=~/t.jinja", "--max-num-seqs", "8"],
        "tgi": ["--max-batch-size=4", "--otlp-service-name", "a b 'c' \"d\" $HOME ~ *"],
    }  # fmt: skip
    binaries = {"vllm": ["vllm", "serve"], "tgi": ["text-generation-launcher"]}
    for engine, args in tricky.items():
        spec = {**copy.deepcopy(GOOD_SPEC), "engine": engine, "engineArgs": args}
        assert _create(kube, namespace, f"argv-{engine}", spec).admission_error is None
    for engine, args in tricky.items():
        name = f"argv-{engine}"
        container = wait_for(lambda n=name: _container(kube, namespace, n), 60, what=f"Deployment {name}")
        assert container["command"] == binaries[engine], container["command"]
        assert not {"sh", "bash", "/bin/sh", "/bin/bash", "-c"} & set(container["command"] + container["args"])
        assert container["args"][-len(args) :] == args
        assert all(isinstance(a, str) for a in container["args"])  # a flat list of strings
        joined = " ".join(args)
        assert all(joined not in element for element in container["command"] + container["args"])
        # the pods the Deployment makes carry the same argv
        pods = wait_for(
            lambda n=name: (
                client.CoreV1Api(kube)
                .list_namespaced_pod(namespace, label_selector=f"llmop.io/llmdeployment={n}")
                .items
            ),
            60,
            what=f"pods of {name}",
        )
        for pod in pods:
            [engine_container] = pod.spec.containers
            assert engine_container.command == binaries[engine] and engine_container.args[-len(args) :] == args
    _operator_healthy(operator)
