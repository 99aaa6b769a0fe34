"""The replay's ground-truth capacities kept on disk: measuring one takes seconds, a benchmark grid asks thousands."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from functools import cache
from pathlib import Path

from llmop_dev.replay import truth
from llmop_dev.replay.hardware import Hardware

_PHYSICS = ("hardware.py", "engine.py", "truth.py")  # a change to any of them invalidates every stored figure
_lock = threading.Lock()


@cache
def _physics_version() -> str:
    digest = hashlib.sha256()
    for name in _PHYSICS:
        digest.update((Path(__file__).parent / name).read_bytes())
    return digest.hexdigest()[:16]


def cache_path() -> Path:
    root = os.environ.get("LLMOP_REPLAY_CACHE") or str(Path.home() / ".cache" / "llmop" / "replay")
    return Path(root) / f"capacity-{_physics_version()}.json"


@cache
def _load(path: Path) -> dict[str, float]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(key): float(value) for key, value in data.items()} if isinstance(data, dict) else {}


def capacity_rps(
    hardware: Hardware, prompt: float, output: float, target_ms: float, percentile: float, ttft_bound_s: float
) -> float:
    """`truth.capacity_rps`, read from / added to the on-disk table (keyed by every physics input)."""
    key = f"{hardware!r}|{prompt:g}|{output:g}|{target_ms:g}|{percentile:g}|{ttft_bound_s:g}"
    path = cache_path()
    with _lock:
        table = _load(path)
        if key in table:
            return table[key]
    value = truth.capacity_rps(hardware, prompt, output, target_ms, percentile, ttft_bound_s=ttft_bound_s)
    with _lock:
        table[key] = value
        path.parent.mkdir(parents=True, exist_ok=True)
        merged = {**_load.__wrapped__(path), **table}  # another process may have added figures meanwhile
        table.update(merged)
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(merged, sort_keys=True), encoding="utf-8")
        temporary.replace(path)
    return value
