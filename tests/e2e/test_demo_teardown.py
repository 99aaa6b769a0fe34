"""`llmop demo` as a real subprocess: SIGINT or SIGTERM, at any point, leaves no process it started and no
temporary directory behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llmop_dev.localcluster.binaries import BinariesMissing, find_binaries
from llmop_dev.localcluster.prometheus import find_prometheus

ROOT = Path(__file__).resolve().parents[2]


def _prerequisites() -> None:
    try:
        find_binaries(build_missing=False)
    except BinariesMissing as error:
        message = f"control-plane binaries missing: {error}"
    else:
        if find_prometheus() is not None:
            return
        message = "prometheus is not installed"
    if os.environ.get("REQUIRE_K8S") == "1":
        pytest.fail(f"REQUIRE_K8S=1 but {message}", pytrace=False)
    pytest.skip(message)


def _started_by(marker: str) -> dict[int, str]:
    """Every live process whose command line names `marker` (the demo's temp dir: etcd, apiserver, Prometheus...),
    by pid, with its command name."""
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline:
            found[int(entry.name)] = (entry / "comm").read_text().strip() if (entry / "comm").exists() else "?"
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _wait_for(log: Path, text: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while text not in log.read_text(errors="replace"):
        assert process.poll() is None, f"demo exited early:\n{log.read_text(errors='replace')[-3000:]}"
        assert time.monotonic() < deadline, f"no {text!r} after {timeout:.0f} s:\n{log.read_text()[-3000:]}"
        time.sleep(0.5)


@pytest.mark.parametrize(
    ("sig", "when"),
    [(signal.SIGINT, "Ctrl-C stops everything."), (signal.SIGTERM, "control plane ready")],
    ids=["sigint-running", "sigterm-starting"],
)
def test_demo_stops_everything_it_started(tmp_path: Path, sig: signal.Signals, when: str) -> None:
    _prerequisites()
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    log = tmp_path / "demo.log"
    with log.open("wb") as out:
        demo = subprocess.Popen(
            [sys.executable, "-m", "llmop.cli", "demo", "--interval", "5"],
            stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env={**os.environ, "TMPDIR": str(tmp)},
            start_new_session=True,  # a signal for the demo only, as `kill PID` sends it
        )  # fmt: skip
    try:
        _wait_for(log, when, demo, timeout=300)
        [workdir] = list(tmp.glob("llmop-demo-*"))
        started = _started_by(str(workdir))
        assert len(started) >= 5, started  # etcd, apiserver, controller-manager, scheduler, kwok (+ Prometheus)
        demo.send_signal(sig)
        assert demo.wait(timeout=180) == 0
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait(timeout=30)
    output = log.read_text(errors="replace")
    assert f"stopping ({sig.name}) ..." in output and "\nstopped\n" in output, output[-3000:]
    assert "Traceback" not in output
    assert [pid for pid in started if _alive(pid)] == []
    assert list(tmp.iterdir()) == []  # the temporary directory is gone
    if sig == signal.SIGINT:  # running: Prometheus (its own session, so no terminal signal reaches it) was up
        assert "prometheus" in started.values(), started
