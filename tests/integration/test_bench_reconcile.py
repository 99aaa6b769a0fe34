"""bench/reconcile.py end to end at a small count: its figures come out, and the operator makes no write when
nothing changed (the steady-state target), over many autoscaler and full-reconcile passes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from support.cluster import _binaries_or_skip
from support.operator import ROOT

KEYS = ("llmop_p50_ms", "llmop_p99_ms", "kcm_p50_ms", "kcm_p99_ms", "all_available_s", "operator_rss_mb",
        "steady_state_writes")  # fmt: skip


def test_reconcile_benchmark_small_run_reports_every_figure_and_zero_steady_writes(tmp_path: Path) -> None:
    _binaries_or_skip()
    argv = [sys.executable, str(ROOT / "bench/reconcile.py"), "--count", "6", "--json", "--out", str(tmp_path),
            "--interval", "2", "--resync", "4", "--quiet", "20", "--settle", "8"]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert all(result[key] is not None for key in KEYS), {key: result.get(key) for key in KEYS}
    assert json.loads((tmp_path / "reconcile-6.json").read_text())["count"] == 6
    assert result["available"] == 6 and result["present_at_end"] == 6 and result["operator_alive"]
    # the window covered real passes: ~10 autoscaler passes and ~4 full reconciles per object
    assert result["steady_state_reconciles"] >= 6 * 2 and result["steady_state_autoscaler_passes"] >= 6 * 5
    assert result["steady_state_writes"] == 0, result["steady_state_writes_by_request"]
    assert result["steady_state_lease_renewals_per_min"] > 0  # the Lease is renewed (and counted apart)
    assert 0 < result["operator_rss_mb"] < 400
