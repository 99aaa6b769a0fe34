"""End-to-end tests: the control plane plus Prometheus, the fleet simulator and the operator; marked `e2e`."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmop_dev.localcluster.prometheus import find_prometheus
from llmop_dev.localcluster.stack import LocalStack
from support.cluster import control_plane, kube, namespace

__all__ = ["control_plane", "kube", "namespace", "stack"]

_HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in item.path.resolve().parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture
def stack(control_plane, namespace: str, tmp_path: Path) -> Iterator[LocalStack]:  # type: ignore[no-untyped-def]
    """Simulator, Prometheus (2 s scrapes) and the operator (2 s autoscaler ticks) for this test's namespace."""
    if find_prometheus() is None:
        if os.environ.get("REQUIRE_K8S") == "1":
            pytest.fail("REQUIRE_K8S=1 but prometheus is not installed", pytrace=False)
        pytest.skip("prometheus is not installed")
    local = LocalStack(control_plane, tmp_path / "stack", namespaces=(namespace,), sim_startup_seconds=8,
                       scrape_interval_s=2, autoscale_interval_s=2)  # fmt: skip
    try:
        yield local.start()
    finally:
        local.stop()
        if os.environ.get("LLMOP_SHOW_LOGS"):
            for part in (local.operator, local.sim):
                if part is not None:
                    print(f"--- {part.name}\n{part.log()[-20000:]}")
