"""One room per engine: everything llmop knows about vLLM and TGI behind the EngineAdapter protocol, and a registry.

Adding an engine version is a table in its module; adding an engine is one module here plus catalog rows
(catalog/engines.py ENGINES and IMAGE_BUILDS, catalog/quantization.py rules)."""

from __future__ import annotations

from llmop.catalog.engines import Engine
from llmop.catalog.versions import parse_version
from llmop.engines.base import EngineAdapter
from llmop.engines.promql import Query
from llmop.engines.tgi import TgiAdapter
from llmop.engines.vllm import VllmAdapter

ADAPTERS: dict[Engine, EngineAdapter] = {Engine.VLLM: VllmAdapter(), Engine.TGI: TgiAdapter()}


def adapter(engine: Engine | str) -> EngineAdapter:
    """The adapter of an engine (`vllm`, `tgi` or an Engine)."""
    try:
        return ADAPTERS[Engine(engine)]
    except ValueError:
        raise ValueError(f"unknown engine {engine!r}; expected one of {', '.join(ADAPTERS)}") from None


def queries(engine: Engine | str, version: str | None = None) -> tuple[Query, ...]:
    """The query set for an engine at a version (default: the newest llmop knows)."""
    return adapter(engine).queries(parse_version(version) if version else None)


def query(engine: Engine | str, name: str, version: str | None = None) -> Query:
    for item in queries(engine, version):
        if item.name == name:
            return item
    raise KeyError(f"{engine} has no query {name!r}")


def query_templates(engine: Engine | str | None = None) -> list[tuple[str, str]]:
    """(`engine:name`, template) pairs for the dashboard and alert generators (newest versions)."""
    engines = (Engine(engine),) if engine else tuple(ADAPTERS)
    return [(f"{item.value}:{q.name}", q.template) for item in engines for q in queries(item)]


def buckets_for(engine: Engine | str, version: tuple[int, int, int] | None = None) -> tuple[float, ...]:
    """Upper bounds (seconds) of the decode-latency histogram for an engine."""
    return adapter(engine).latency_buckets_s(version)


__all__ = ["ADAPTERS", "EngineAdapter", "Query", "adapter", "buckets_for", "queries", "query", "query_templates"]
