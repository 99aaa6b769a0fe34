"""Test access to the real Prometheus runner (the package's llmop.dev.prometheus)."""

from llmop.dev.prometheus import Prometheus, find_prometheus, free_port, query

__all__ = ["Prometheus", "find_prometheus", "free_port", "query"]
