"""Run the real Prometheus (Debian's /usr/bin/prometheus) on 127.0.0.1 against static 127.0.0.1 targets."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import yaml

from llmop_dev.processes import free_port, stop_process


def find_prometheus() -> str | None:
    return shutil.which("prometheus") or ("/usr/bin/prometheus" if Path("/usr/bin/prometheus").exists() else None)


@dataclass
class Prometheus:
    """A Prometheus process; `start()` waits for /-/ready, `stop()` ends it by pid."""

    workdir: Path
    targets: Sequence[str]  # host:port, all on 127.0.0.1
    scrape_interval_s: float = 2.0
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    operator_targets: Sequence[str] = ()  # the operator's own /metrics (job llmop-operator, as the chart's monitor)
    rule_files: Sequence[Path] = ()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def config(self) -> dict[str, Any]:
        for target in (*self.targets, *self.operator_targets):
            if not target.startswith("127.0.0.1:"):
                raise ValueError(f"targets must be on 127.0.0.1, got {target}")
        interval = f"{self.scrape_interval_s:g}s"
        scrape = [{"job_name": "llmop-sim", "honor_labels": True, "static_configs": [{"targets": list(self.targets)}]}]
        if self.operator_targets:
            scrape.append({"job_name": "llmop-operator", "static_configs": [{"targets": list(self.operator_targets)}]})
        config: dict[str, Any] = {
            "global": {"scrape_interval": interval, "evaluation_interval": interval},
            "scrape_configs": scrape,
        }
        if self.rule_files:
            config["rule_files"] = [str(path) for path in self.rule_files]
        return config

    def start(self, timeout_s: float = 30.0) -> Prometheus:
        binary = find_prometheus()
        if binary is None:
            raise FileNotFoundError("prometheus is not installed (apt-get install prometheus)")
        self.port = self.port or free_port()
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "prometheus.yml"
        config.write_text(yaml.safe_dump(self.config()), encoding="utf-8")
        log = (self.workdir / "prometheus.log").open("wb")
        self.process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--storage.tsdb.retention.time=1h",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"prometheus exited: {(self.workdir / 'prometheus.log').read_text()[-2000:]}")
            try:
                if requests.get(f"{self.url}/-/ready", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"prometheus not ready on {self.url} within {timeout_s} s")

    def stop(self) -> None:
        stop_process(self.process, timeout=10)

    def query(self, expr: str) -> list[dict[str, Any]]:
        return query(self.url, expr)


def query(url: str, expr: str) -> list[dict[str, Any]]:
    """Instant query; raises on an HTTP or PromQL error (with Prometheus' message)."""
    response = requests.get(f"{url}/api/v1/query", params={"query": expr}, timeout=10)
    payload = response.json()
    if payload.get("status") != "success":
        raise RuntimeError(f"{expr}: {payload.get('errorType')}: {payload.get('error')}")
    return list(payload["data"]["result"])
