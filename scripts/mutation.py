"""`make mutation`: mutmut over the pure core in a staging copy (src/ layout, as mutmut expects), killed by the unit
tests; writes bench/results/mutation.md (score per module and in total, surviving mutants) and mutation.json.

Usage: python scripts/mutation.py [--max-children N] [--commit REV] [MODULE ...]
       python scripts/mutation.py --report
       python scripts/mutation.py --rerun [TEST_FILE ...]
       python scripts/mutation.py --resume

MODULE is a path under operator/ (default: the pure core below). The staging copy is the commit REV (default HEAD),
not the working tree, so edits in progress elsewhere do not leak into the score. A run measures the modules named
and replaces their rows in the report; the other modules' rows stay as last measured, so the core can be measured
one module at a time. --report rewrites the report from the last run in .mutation/. --rerun copies the test files
named into the staging copy and re-runs only the mutants that survived there (for iterating on new tests; a clean
run on a commit is what the report should show). --resume goes on with an interrupted run. --max-children defaults
to $MUTATION_MAX_CHILDREN or 1.

Each mutant runs the unit tests that reach the mutated function, except the 10,000-spec planner fuzz test: it takes
40-60 s, which every surviving planner mutant would pay, so the score is what the other unit tests kill.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
STAGE = ROOT / ".mutation"
RESULTS = ROOT / "bench" / "results"
CORE = (
    "llmop/autoscale/policy.py",
    "llmop/autoscale/policy_config.py",
    "llmop/autoscale/policy_state.py",
    "llmop/autoscale/reading.py",
    "llmop/autoscale/learning.py",
    "llmop/autoscale/surge.py",
    "llmop/plan/planner.py",
    "llmop/plan/compat.py",
    "llmop/plan/memory.py",
    "llmop/plan/latency.py",
    "llmop/controller/status_update.py",
    "llmop/controller/reconcile.py",
    "llmop/engines/promql.py",
)
DESELECTED = ("tests/unit/test_fuzz_planner.py::test_fuzz_10000_specs_through_the_planner",)
# Surviving mutants judged equivalent: no input can tell them from the original (or none the spec and catalogs
# allow, as the reason says). Kept out of the score's denominator and listed separately, each with its reason.
# mutmut numbers mutants per function: an edit to a function renumbers them, so re-check this list after one.
EQUIVALENT_BY_MODULE: dict[str, dict[str, str]] = {
    "llmop.controller.reconcile": {
        "x_desired_replicas__mutmut_18": "the default of autoscaling.enabled only meets `is False`: None and True "
        "are both not False",
        "x_desired_replicas__mutmut_20": "the same default dropped (None): `is False` is still false",
        "xǁReconcilerǁ__init____mutmut_2": "Reconciler.config is stored but read nowhere (the handlers read the "
        "runtime's config)",
        "xǁReconcilerǁ_reconcile_locked__mutmut_18": "the initial `deployment` is overwritten on both branches "
        "(render always yields a Deployment; a refusal reads it), so None or '' never reaches the status",
    },
    "llmop.autoscale.policy": {
        "x__hold__mutmut_13": "`desired >= current` for `>` where desired != current",
        "x__estimate__mutmut_10": "`share >= budget`: at equality the share asks for ceil(spent_by - 1e-9) = spent_by "
        "replicas, never more than the ready ones, so it is no want",
        "x__estimate__mutmut_63": "`ready >= 0` for `> 0`: ready 0 sizes ceil(0 - 1e-9) = 0 replicas by latency, "
        "which is not taken",
        "x__decide__mutmut_129": "calibrate's `current` argument is not read",
        "x__decide__mutmut_189": "`metrics_reason = note`: the note is the string 'ok' exactly when it is ok",
        "x__decide__mutmut_194": "the same ('XXokXX'): the note is 'ok' or the reason, either way the value",
        "x__decide__mutmut_195": "the same ('OK')",
        "x__decide__mutmut_325": "`capacity or 1` in the capacity reason: the reason is used only when capacity is "
        "a positive number",
        "x__decide__mutmut_418": "`ttft_ms or 1.0`: only an observed 0 ms reaches it, and 0 ms breaches no target "
        "(the spec's TTFT target is > 0)",
        "x__decide__mutmut_601": "breach_since=None dropped after _scaled, which already clears it",
        "x__decide__mutmut_637": "outside [min, max] _hold replaces the reason with the clamp's (reason None)",
        "x__decide__mutmut_648": "the same (reason 'XXXX')",
        "x__decide__mutmut_654": "_headroom's `current` argument is not read",
        "x__decide__mutmut_800": "the 0.0 floor of the wait: on that branch one of the other two terms is positive",
        "x__headroom__mutmut_34": "`coarse_edge_ms or 1.0`: over_edge is set only with a coarse edge",
        "x__headroom__mutmut_77": "`now_itl or ...`: an infinite ITL on the ready replicas means the load needs "
        "more than them, which is pressure, so headroom is not judged",
    },
    "llmop.autoscale.reading": {
        "xǁPolicyReadingǁneed__mutmut_1": "need()'s default for `ahead`: every caller passes ahead=True",
        "xǁPolicyReadingǁneed__mutmut_11": "`ahead or True`: every caller passes ahead=True",
        "xǁPolicyReadingǁneed__mutmut_12": "the `else` of `trend if ahead`: every caller passes ahead=True",
        "xǁPolicyReadingǁload_fits__mutmut_31": "a search limit of replicas + 2 instead of + 1: `wanted <= replicas` "
        "holds exactly when some count up to `replicas` fits, whatever the limit above it",
        "xǁPolicyReadingǁrps_text__mutmut_6": "`rps or 1.0` in the trend text: the trend is capped at a quarter of "
        "the rate, so it is shown (> 0.05) only with a rate > 0",
        "xǁPolicyReadingǁmodel_itl__mutmut_7": "`replicas < 0` for `<= 0`: called with max(ready, 1) and with "
        "fewer >= 1",
        "x_read__mutmut_110": "`>=` for `>` against 1 - p/100 + 1e-12: a share 1 - q with q in [0.5, 1) is a "
        "multiple of 2**-53 and the threshold is not, so they never meet",
    },
    "llmop.autoscale.surge": {
        "x_track_surge__mutmut_56": "`in_system_variance or 1.0` for `or 0.0`: the max with 1.0 beside it is the same",
    },
    "llmop.autoscale.learning": {
        "x_calibrate__mutmut_11": "`ready < 0` for `<= 0`: ready 0 returns on the next test (waiting >= 0)",
        "x_calibrate__mutmut_93": "`>=` for `>` between (factor, weight) samples: at equality both are the same sample",
        "x_learn_batch_cap__mutmut_50": "`>=` for `>`: equal sets the batch limit to the value it has",
    },
    "llmop.autoscale.calibration": {
        "x__solve__mutmut_22": "41 bisection steps for 40: the factor moves by under 2**-40 of log 3",
        "x__solve__mutmut_29": "`<=` for `<` at a midpoint: only a latency exactly equal to the reading at a "
        "bisection midpoint tells them apart, and either side converges to the same point within 2**-40",
        "x_capacity_rps__mutmut_3": "a first bracket of [0, 2] for [0, 1]: the bisection converges to the same "
        "capacity within its precision (2**-40 of the bracket)",
        "x_capacity_rps__mutmut_15": "`<` for `<=` while doubling: only a latency exactly at the target at a power "
        "of two, where either bracket holds the same boundary",
        "x_capacity_rps__mutmut_16": "`high <= 1e6` for `< 1e6`: high is a power of two, never 1e6, so the "
        "doubling stops at 2**20 either way",
        "x_capacity_rps__mutmut_17": "the same (1000001): no power of two lies in [1e6, 1000001]",
        "x_capacity_rps__mutmut_20": "tripling the bracket for doubling: another bracket around the same boundary, "
        "the same capacity within the bisection's precision",
        "x_capacity_rps__mutmut_22": "41 bisection steps for 40: the capacity moves by under 2**-40 of the bracket",
        "x_capacity_rps__mutmut_37": "`<` for `<=` at a midpoint: the same boundary within the precision",
        "x_updated_step_scale__mutmut_35": "`not finite(p95) and not finite(mean)` for `or`: itl_ms returns the "
        "mean itself when the mean is infinite and a finite percentile when it is finite, so both are finite or "
        "neither",
    },
    "llmop.controller.status_update": {
        "x_compute_status__mutmut_53": "the pod selector has one label: the separator of the join is never written",
        "x_plan_summary__mutmut_8": "PlanStatus holds only str, int, float and list fields: its python and json "
        "dumps are equal",
        "x_plan_summary__mutmut_11": "the same (mode left out)",
        "x_plan_summary__mutmut_15": "the same (mode 'XXjsonXX')",
        "x_plan_summary__mutmut_16": "the same (mode 'JSON')",
    },
    "llmop.plan.planner": {
        "x__choose_tensor_parallel__mutmut_7": "fits[2] for fits[1] in the weights figure: a fit's weight_bytes "
        "is the whole model's at every count",
        "x_plan__mutmut_50": "lstrip('XXvXX') strips X and v: the spec's pattern allows only a v before the digits",
        "x_plan__mutmut_137": "an architecture or quantization finding is already in `errors`",
        "x__accepted_plan__mutmut_1": "the default of checkpoint_known: plan(), the one caller, passes it",
        "x__accepted_plan__mutmut_111": "int(a / b) for a // b: equal for these positive magnitudes",
        "x__accepted_plan__mutmut_116": "max(context, 2) for max(context, 1): maxModelLen >= 128 (the spec's "
        "minimum), so the mean context is >= 64",
        "x__accepted_plan__mutmut_117": "a KV-cache cap of at least 2 for at least 1: an accepted plan holds a full "
        "sequence, twice the mean context",
    },
    "llmop.plan.compat": {
        "x_resolve_quantization__mutmut_90": "'none' GPUs: every catalog rule has a catalog GPU at or above its "
        "compute-capability floor, so the list is never empty",
        "x_resolve_quantization__mutmut_91": "the same ('NONE')",
        "x_engine_gpu_finding__mutmut_12": "_other_engines(None) also lists the refused engine, which has no build "
        "for this architecture, so the filter drops it",
        "x_engine_gpu_finding__mutmut_19": "the 'Use gpu.type' text needs an architecture without any engine build: "
        "every GPU architecture has a vLLM build",
        "x_engine_gpu_finding__mutmut_21": "with two engines there is at most one other engine: the separator of the "
        "join is never written",
        "x_engine_gpu_finding__mutmut_22": "the 'Use gpu.type' text is unreachable (above)",
        "x_engine_gpu_finding__mutmut_23": "the same",
        "x_engine_gpu_finding__mutmut_24": "the same",
    },
    "llmop.autoscale.metrics": {
        "x__scalar__mutmut_11": "the missing value's default [1, 'NaN']: its second item is read, NaN either way",
        "x__scalar__mutmut_12": "the default's NaN spelled otherwise: any text that is not a number reads as None",
        "x__scalar__mutmut_13": "the same ('nan' is NaN too)",  # 12: 'XXNaNXX'
        "x__scalar__mutmut_14": "the same ('NAN')",
        "x_bucket_quantile__mutmut_34": "`i == len(counts) + 1` never holds, but the last count is the total and the "
        "rank q x total never exceeds it (q <= 1: the percentile is validated below 100)",
        "x_bucket_quantile__mutmut_47": "`< 0` for `<= 0`: a first edge of exactly 0 interpolates from 0 to 0",
        "xǁObservationǁshare_above__mutmut_11": "`<` for `<=` in the edge's relative tolerance of 1e-9: a bound "
        "exactly that far from the edge is never exported",
        "xǁPrometheusMetricsǁ_observe__mutmut_19": "the quantile given to render() for the queries run() sends: "
        "none of them has ${quantile} (the decode quantile is computed from the buckets, TTFT's is rendered apart)",
        "xǁPrometheusMetricsǁ_observe__mutmut_20": "the same (percentile x 100)",
        "xǁPrometheusMetricsǁ_observe__mutmut_21": "the same (percentile / 101)",
        "xǁPrometheusMetricsǁ_observe__mutmut_75": "a row without `metric`: Prometheus' vector answers always carry "
        "it (an empty map at least)",
        "xǁPrometheusMetricsǁ_observe__mutmut_77": "the same",
        "xǁPrometheusMetricsǁ_observe__mutmut_103": "the quantile resolved with no samples: every bucket is 0, so "
        "bucket_quantile gives NaN, which reads as no latency and not below resolution",
        "xǁPrometheusMetricsǁ_observe__mutmut_110": "the same (`samples >= 0`)",
        "xǁPrometheusMetricsǁ_observe__mutmut_116": "ttft '' before the TTFT query: every engine's query set has "
        "ttft_quantile, so it is always overwritten",
        "xǁPrometheusMetricsǁ_run__mutmut_13": "the backoff factor with one retry: urllib3 2.x sleeps no backoff "
        "before the first retry (get_backoff_time is 0 for one error)",
        "xǁPrometheusMetricsǁ_run__mutmut_15": "the same (factor dropped)",
        "xǁPrometheusMetricsǁ_run__mutmut_17": "the same (factor 1.1)",
        "xǁPrometheusMetricsǁ_run__mutmut_19": "build_session reads the URL only for its warning's text",
    },
}
EQUIVALENT = {f"{module}.{name}": why for module, names in EQUIVALENT_BY_MODULE.items() for name, why in names.items()}
# mutmut's statuses: a timeout is a mutant the tests detected (it ran away); "no tests" is a mutant no unit test
# reaches, counted as surviving. Not checked / skipped mutants (an interrupted run) are left out.
DETECTED = ("killed", "timeout", "caught by type check")
UNDETECTED = ("survived", "no tests", "suspicious", "segfault")


def stage(modules: tuple[str, ...], commit: str) -> None:
    """A copy of `commit` (not the working tree: other edits in progress do not leak into the score) with
    operator/ as src/ and a pyproject that tells mutmut what to mutate."""
    shutil.rmtree(STAGE, ignore_errors=True)
    STAGE.mkdir()
    archive = subprocess.run(["git", "archive", commit], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(STAGE)], input=archive, check=True)
    (STAGE / "operator").rename(STAGE / "src")
    (STAGE / "operator").symlink_to("src")  # tests that read operator/ (the image's Dockerfile) see the same tree
    # mutmut copies src/, tests/ and pyproject.toml into mutants/ itself; the tests read the rest (docs, charts, ...)
    copied = sorted(path.name for path in STAGE.iterdir() if path.name not in ("src", "tests", "pyproject.toml"))
    text = (STAGE / "pyproject.toml").read_text(encoding="utf-8")
    text = text.replace('pythonpath = ["operator", "devtools", "tests"]', 'pythonpath = ["src", "devtools", "tests"]')
    only = ", ".join(f'"src/{module}"' for module in modules)
    deselect = "".join(f', "--deselect", "{test}"' for test in DESELECTED)
    text += (
        "\n[tool.mutmut]\n"
        'source_paths = ["src"]\n'
        f"only_mutate = [{only}]\n"
        f"also_copy = {json.dumps(copied)}\n"
        'pytest_add_cli_args_test_selection = ["tests/unit"]\n'
        f'pytest_add_cli_args = ["-p", "no:cacheprovider", "-q"{deselect}]\n'
        # A mutant that loops (the batch bisection) is stopped after 3x its tests' CPU time, not mutmut's 15x.
        "timeout_multiplier = 3.0\n"
        f"# measured commit: {commit}\n"
    )
    (STAGE / "pyproject.toml").write_text(text, encoding="utf-8")


def staged_modules() -> tuple[str, ...]:
    text = (STAGE / "pyproject.toml").read_text(encoding="utf-8")
    match = re.search(r"^only_mutate = (\[.*\])$", text, re.MULTILINE)
    return tuple(path.removeprefix("src/") for path in json.loads(match.group(1))) if match else ()


def results() -> dict[str, str]:
    out = subprocess.run([sys.executable, "-m", "mutmut", "results", "--all", "true"], cwd=STAGE,
                         capture_output=True, text=True, check=False).stdout  # fmt: skip
    found: dict[str, str] = {}
    for line in out.splitlines():
        match = re.match(r"\s*(\S+__mutmut_\d+): (.+)$", line)
        if match:
            found[match.group(1)] = match.group(2).strip()
    return found


def module_of(mutant: str) -> str:
    """llmop.plan.memory.x_fits__mutmut_3 -> llmop/plan/memory.py"""
    dotted = re.split(r"\.x(?:_|ǁ)", mutant, maxsplit=1)[0]
    return dotted.replace(".", "/") + ".py"


def score(outcome: dict[str, str], seconds: float) -> dict[str, Any]:
    detected = sorted(name for name, status in outcome.items() if status in DETECTED)
    undetected = sorted(name for name, status in outcome.items() if status in UNDETECTED)
    equivalent = sorted(name for name in undetected if name in EQUIVALENT)
    surviving = [name for name in undetected if name not in EQUIVALENT]
    stale = sorted(name for name in detected if name in EQUIVALENT)
    if stale:
        print(f"listed as equivalent but killed (remove from EQUIVALENT): {stale}", file=sys.stderr)
    judged = len(detected) + len(surviving)
    return {
        "mutants": len(outcome),
        "judged": judged,
        "killed": len(detected),
        "timeout": sum(outcome[name] == "timeout" for name in detected),
        "survived": len(surviving),
        "no_tests": sum(outcome[name] == "no tests" for name in surviving),
        "equivalent": len(equivalent),
        "score_pct": round(100.0 * len(detected) / max(judged, 1), 1),
        "seconds": round(seconds),
        "measured": datetime.now(UTC).strftime("%Y-%m-%d"),
        "surviving": surviving,
        "equivalent_mutants": {name: EQUIVALENT[name] for name in equivalent},
    }


def load_rows() -> dict[str, dict[str, Any]]:
    try:
        stored = json.loads((RESULTS / "mutation.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    rows = stored.get("per_module")
    return rows if isinstance(rows, dict) else {}


def write_report(rows: dict[str, dict[str, Any]]) -> dict[str, Any]:
    ordered = {module: rows[module] for module in CORE if module in rows}
    ordered |= {module: row for module, row in sorted(rows.items()) if module not in ordered}
    keys = ("mutants", "judged", "killed", "timeout", "survived", "no_tests", "equivalent")
    total: dict[str, Any] = {key: sum(row[key] for row in ordered.values()) for key in keys}
    total["score_pct"] = round(100.0 * total["killed"] / max(total["judged"], 1), 1)
    unmeasured = [module for module in CORE if module not in ordered]
    report = {
        "measured_modules": list(ordered),
        "unmeasured_core_modules": unmeasured,
        "deselected_tests": list(DESELECTED),
        "total": total,
        "per_module": ordered,
    }
    (RESULTS / "mutation.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    lines = [
        "## Mutation testing (mutmut 3.8.1, unit tests)",
        "",
        "Score = mutants killed (or timed out) by `tests/unit` / (mutants - equivalent ones). A mutant no unit test",
        "reaches counts as surviving. Deselected in these runs (40-60 s per surviving planner mutant): "
        + ", ".join(f"`{test}`" for test in DESELECTED)
        + ".",
        "",
        "| module | mutants | killed | survived | equivalent | score % | run s (of the run) | measured | code at |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for module, row in ordered.items():
        lines.append(
            f"| `{module}` | {row['mutants']} | {row['killed']} | {row['survived']} | {row['equivalent']} "
            f"| {row['score_pct']} | {row['seconds']} | {row['measured']} | {row.get('commit', '?')} |"
        )
    lines.append(
        f"| **total** | {total['mutants']} | {total['killed']} | {total['survived']} | {total['equivalent']} "
        f"| **{total['score_pct']}** | | | |"
    )
    lines += ["", "Measured: " + (", ".join(f"`{m}`" for m in ordered) or "none") + "."]
    lines += ["Not measured: " + (", ".join(f"`{m}`" for m in unmeasured) or "none (the whole pure core)") + "."]
    for module, row in ordered.items():
        lines += ["", f"### `{module}`", "", f"Surviving mutants ({row['survived']}):", ""]
        lines += [f"- `{name}`" for name in row["surviving"]] or ["- none"]
        if row["equivalent_mutants"]:
            lines += ["", f"Equivalent mutants ({row['equivalent']}, not in the score):", ""]
            lines += [f"- `{name}`: {reason}" for name, reason in row["equivalent_mutants"].items()]
    (RESULTS / "mutation.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return total


def _option(args: list[str], name: str, default: str) -> str:
    if name not in args:
        return default
    at = args.index(name)
    value = args[at + 1]
    del args[at : at + 2]
    return value


def staged_commit() -> str:
    text = (STAGE / "pyproject.toml").read_text(encoding="utf-8")
    match = re.search(r"^# measured commit: (\S+)$", text, re.MULTILINE)
    return match.group(1) if match else "?"


def main(argv: list[str]) -> int:
    args = list(argv)
    report_only = "--report" in args
    rerun = "--rerun" in args
    resume = "--resume" in args
    children = int(_option(args, "--max-children", os.environ.get("MUTATION_MAX_CHILDREN", "1")))
    revision = _option(args, "--commit", "HEAD")
    names = [a for a in args if not a.startswith("--")]
    started = time.monotonic()
    mutmut = [sys.executable, "-m", "mutmut", "run", "--max-children", str(children)]
    if rerun:  # names: test files (paths from the repository root) to copy into the staging copy first
        for test in names:
            shutil.copy2(ROOT / test, STAGE / test)
        if any(status == "not checked" for status in results().values()):
            subprocess.run(mutmut, cwd=STAGE, check=False)  # an interrupted run goes on, with the new tests
        surviving = sorted(name for name, status in results().items() if status in UNDETECTED)
        if surviving:
            subprocess.run([*mutmut, *surviving], cwd=STAGE, check=False)
        modules, commit = staged_modules(), staged_commit() + " + tests added since"
    elif report_only:
        modules, commit = staged_modules(), staged_commit()
    elif resume:  # an interrupted run: mutmut goes on with the mutants not yet checked
        modules, commit = staged_modules(), staged_commit()
        subprocess.run(mutmut, cwd=STAGE, check=False)
    else:
        modules = tuple(names) or CORE
        unknown = [m for m in modules if m not in CORE and not (ROOT / "operator" / m).is_file()]
        if unknown:
            print(f"not a module under operator/: {unknown}", file=sys.stderr)
            return 2
        commit = subprocess.run(["git", "rev-parse", "--short", revision], cwd=ROOT, capture_output=True, text=True,
                                check=True).stdout.strip()  # fmt: skip
        stage(modules, commit)
        subprocess.run(mutmut, cwd=STAGE, check=False)
    took = time.monotonic() - started
    outcome = results()
    if not any(status in DETECTED + UNDETECTED for status in outcome.values()):
        print("mutmut judged no mutant (see its output above); the report is unchanged", file=sys.stderr)
        return 1
    rows = load_rows()
    for module in modules:
        previous = rows.get(module, {})
        row = score({name: status for name, status in outcome.items() if module_of(name) == module}, took)
        row["commit"] = previous.get("commit", commit) if report_only else commit
        if report_only or rerun:
            row["seconds"] = previous.get("seconds", row["seconds"])
        elif resume:
            row["seconds"] += previous.get("seconds", 0)
        rows[module] = row
    total = write_report(rows)
    print(json.dumps({module: rows[module]["score_pct"] for module in modules} | {"total": total["score_pct"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
