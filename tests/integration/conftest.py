"""Integration tests against the real local control plane; every test here is marked `e2e`."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.cluster import control_plane, kube, namespace  # needs pythonpath = ["tests"] (pyproject)
from support.operator import crd, operator

__all__ = ["control_plane", "crd", "kube", "namespace", "operator"]

_HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in item.path.resolve().parents:
            item.add_marker(pytest.mark.e2e)
