"""Test access to the real Prometheus runner (the package's llmop_dev.localcluster.prometheus)."""

from llmop_dev.localcluster.prometheus import Prometheus, find_prometheus, free_port, query

__all__ = ["Prometheus", "find_prometheus", "free_port", "query"]
