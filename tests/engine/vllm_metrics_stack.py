"""vLLM's own metrics server, a stand-in operator exporter and one Prometheus scraping vLLM three ways, on 127.0.0.1."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import requests
import yaml
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from llmop.engines.vllm_metrics import custom_buckets_json
from llmop_dev.localcluster.prometheus import Prometheus
from llmop_dev.observability import queries as q
from llmop_dev.processes import HOST, free_port, stop_process

REPO = Path(__file__).resolve().parents[2]
SERVER_SCRIPT = REPO / "scripts" / "vllm_metrics_server.py"
NAMESPACE = "llmop-real"


def _podmonitor_relabelings() -> list[dict[str, Any]]:
    """The chart's PodMonitor metricRelabelings (values.yaml), as Prometheus metric_relabel_configs."""
    values = yaml.safe_load((REPO / "charts" / "llmop" / "values.yaml").read_text(encoding="utf-8"))
    keys = {"sourceLabels": "source_labels", "targetLabel": "target_label"}
    rules = values["monitoring"]["podMonitor"]["metricRelabelings"]
    return [{keys.get(key, key): value for key, value in rule.items()} for rule in rules]


# One LLMDeployment per way of scraping the same vLLM pod: (metrics path, metric_relabel_configs).
RELABEL_COLONS = _podmonitor_relabelings()
MODES: dict[str, tuple[str, list[dict[str, Any]]]] = {
    "negotiated": ("/metrics", []),  # Prometheus 2.x default Accept: OpenMetrics 1.0.0, names escaped by the exporter
    "relabelled": ("/metrics", RELABEL_COLONS),  # the same, with the PodMonitor's metricRelabelings fallback
    "text004": ("/metrics/text004", []),  # text format 0.0.4 (the server drops the Accept header): colons kept
}
NO_ENGINE = "no-engine"  # known to the operator only: ready replicas but no engine series, plan refused
OPERATOR_JOB = q.OPERATOR_JOB
SCRAPE_S = 1.0
TARGET_MS = 40.0
PERCENTILE = 99.0  # llmop_slo_percentile of the engine deployments; NO_ENGINE exports none (the rules assume 95)
OBSERVED_MS = 41.5
REPLICAS = {"desired": 2, "ready": 2, "no_engine_ready": 1}
RECONCILE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
RECONCILE_PER_TICK = (0.004, 0.012, 0.03, 0.2)  # reconcile durations the stand-in operator observes every second


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class OperatorExporter:
    """The operator's own series (names from llmop_dev.observability.queries) in a private registry, fed every
    second under a lock that scrapes take too, so every counter is (ticks) x (its per-tick increment)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.port = 0
        self.server: WSGIServer | None = None
        labels = ("namespace", "llmdeployment")

        def gauge(name: str) -> Gauge:
            return Gauge(name, name, labels, registry=self.registry)

        def counter(name: str, extra: tuple[str, ...] = ()) -> Counter:
            return Counter(name.removesuffix("_total"), name, (*labels, *extra), registry=self.registry)

        target, percentile, observed = gauge(q.SLO_TARGET_MS), gauge(q.SLO_PERCENTILE), gauge(q.OBSERVED_DECODE_MS)
        desired, ready, available = gauge(q.DESIRED_REPLICAS), gauge(q.READY_REPLICAS), gauge(q.METRICS_AVAILABLE)
        self.decisions = counter(q.SCALE_DECISIONS, ("direction",))
        self.refusals = counter(q.PLAN_REFUSALS)
        self.reconcile = Histogram(
            q.RECONCILE_DURATION, "reconcile", labels, buckets=RECONCILE_BUCKETS, registry=self.registry
        )
        for name in (*MODES, NO_ENGINE):
            target.labels(NAMESPACE, name).set(TARGET_MS)
            desired.labels(NAMESPACE, name).set(REPLICAS["desired"])
            engine = name != NO_ENGINE
            ready.labels(NAMESPACE, name).set(REPLICAS["ready"] if engine else REPLICAS["no_engine_ready"])
            available.labels(NAMESPACE, name).set(1 if engine else 0)
            if engine:
                percentile.labels(NAMESPACE, name).set(PERCENTILE)
                observed.labels(NAMESPACE, name).set(OBSERVED_MS)
        self.tick()

    def tick(self) -> None:
        with self.lock:
            for name in (*MODES, NO_ENGINE):
                for value in RECONCILE_PER_TICK:
                    self.reconcile.labels(NAMESPACE, name).observe(value)
                if name == NO_ENGINE:
                    self.refusals.labels(NAMESPACE, name).inc()
                else:
                    self.decisions.labels(NAMESPACE, name, "up").inc()

    def start(self) -> OperatorExporter:
        metrics = make_wsgi_app(self.registry)

        def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            with self.lock:
                return list(metrics(environ, start_response))

        self.server = make_server(HOST, 0, app, ThreadingWSGIServer, handler_class=_Quiet)
        self.port = int(self.server.server_port)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        threading.Thread(target=self._loop, daemon=True).start()
        return self

    def _loop(self) -> None:
        while not self.stop_event.wait(1.0):
            self.tick()

    def stop(self) -> None:
        self.stop_event.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


@dataclass
class ModesPrometheus(Prometheus):
    """Prometheus with one scrape job per mode (all on the vLLM server) plus the operator job, and the chart's rules."""

    vllm_port: int = 0
    operator_port: int = 0

    def config(self) -> dict[str, Any]:
        jobs: list[dict[str, Any]] = []
        for name, (path, relabel) in MODES.items():
            labels = {"namespace": NAMESPACE, "llmdeployment": name, "pod": f"{name}-0"}  # the PodMonitor's labels
            job: dict[str, Any] = {
                "job_name": f"vllm-{name}",
                "metrics_path": path,
                "static_configs": [{"targets": [f"{HOST}:{self.vllm_port}"], "labels": labels}],
            }
            if relabel:
                job["metric_relabel_configs"] = relabel
            jobs.append(job)
        jobs.append(
            {
                "job_name": OPERATOR_JOB,
                "honor_labels": True,
                "static_configs": [{"targets": [f"{HOST}:{self.operator_port}"]}],
            }
        )
        interval = f"{self.scrape_interval_s:g}s"
        return {
            "global": {"scrape_interval": interval, "evaluation_interval": interval},
            "scrape_configs": jobs,
            "rule_files": [str(path) for path in self.rule_files],
        }


@dataclass
class Stack:
    """The running pieces; `truth` is the server's ground-truth document."""

    workdir: Path
    venv_python: Path
    rules: Path
    server: subprocess.Popen[bytes] | None = None
    operator: OperatorExporter | None = None
    prometheus: ModesPrometheus | None = None
    truth: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def url(self) -> str:
        assert self.prometheus is not None
        return self.prometheus.url

    def start(self, timeout_s: float = 300.0) -> Stack:
        began = time.monotonic()
        self.workdir.mkdir(parents=True, exist_ok=True)
        port, truth_path = free_port(), self.workdir / "ground-truth.json"
        command = [str(self.venv_python), str(SERVER_SCRIPT), "--port", str(port), "--ground-truth", str(truth_path)]
        command += ["--workdir", str(self.workdir / "vllm"), "--tick-s", "1"]
        command += ["--", "--custom-histogram-buckets", custom_buckets_json()]  # as llmop launches vLLM 0.33
        log = (self.workdir / "server.log").open("wb")
        env = {"PATH": "/usr/bin:/bin", "HOME": str(Path.home()), "TMPDIR": str(self.workdir)}
        self.server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        self.operator = OperatorExporter().start()
        self.prometheus = ModesPrometheus(
            self.workdir / "prometheus", [f"{HOST}:{port}"], SCRAPE_S, rule_files=[self.rules], vllm_port=port,
            operator_port=self.operator.port,
        )  # fmt: skip
        self.prometheus.start()
        deadline = began + timeout_s
        while not truth_path.exists():
            if self.server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"vLLM metrics server did not come up: {self.server_log()[-3000:]}")
            time.sleep(0.5)
        self.truth = json.loads(truth_path.read_text(encoding="utf-8"))
        self.timings["server_up_s"] = time.monotonic() - began
        self._wait_for_scrapes(deadline)
        self.timings["data_ready_s"] = time.monotonic() - began
        return self

    def _wait_for_scrapes(self, deadline: float, scrapes: int = 8) -> None:
        """Until every job has `scrapes` successful scrapes, then a few rule evaluations more."""
        expr = "sum by (job) (sum_over_time(up[5m]))"
        while time.monotonic() < deadline:
            rows = self.query(expr)
            done = {row["metric"]["job"] for row in rows if float(row["value"][1]) >= scrapes}
            if done >= {*(f"vllm-{name}" for name in MODES), OPERATOR_JOB}:
                time.sleep(3 * SCRAPE_S)
                return
            time.sleep(SCRAPE_S)
        raise TimeoutError(f"scrapes did not arrive: {self.query(expr)}; server: {self.server_log()[-2000:]}")

    def settled_instant(self, tries: int = 20) -> float:
        """An instant just behind the newest scrapes at which every job's latest scrape succeeded (a failed one
        would leave staleness markers: gauges read nothing until the next scrape)."""
        jobs = {*(f"vllm-{name}" for name in MODES), OPERATOR_JOB}
        for _ in range(tries):
            at = time.time() - SCRAPE_S
            up = {row["metric"]["job"]: float(row["value"][1]) for row in self.query("min by (job) (up)", at)}
            if all(up.get(job) == 1.0 for job in jobs):
                return at
            time.sleep(SCRAPE_S)
        raise TimeoutError(f"scrapes keep failing: {self.query('up')}")

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """An instant query (at `at`, Unix seconds, when given); raises with Prometheus' message on an error."""
        params = {"query": expr} if at is None else {"query": expr, "time": f"{at:.3f}"}
        payload = requests.get(f"{self.url}/api/v1/query", params=params, timeout=10).json()
        if payload.get("status") != "success":
            raise RuntimeError(f"{expr}: {payload.get('errorType')}: {payload.get('error')}")
        return list(payload["data"]["result"])

    def server_log(self) -> str:
        path = self.workdir / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        stop_process(self.server, timeout=10)
        if self.operator is not None:
            self.operator.stop()
        if self.prometheus is not None:
            self.prometheus.stop()
