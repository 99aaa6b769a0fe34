"""One engine pod: continuous batching with chunked prefill, KV-cache admission and preemption, advanced in time."""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from dataclasses import dataclass
from typing import Protocol

from llmop_dev.replay.hardware import Hardware
from llmop_dev.replay.types import PodMetrics, Request

ITL_BIN_S = 1e-4  # ITL points are merged into 0.1 ms bins before they are published
BINS_PER_S = 10_000.0
_GH = ((-math.sqrt(3.0), 1 / 6), (0.0, 2 / 3), (math.sqrt(3.0), 1 / 6))  # 3-point Gauss-Hermite: step-time spread


class Ledger(Protocol):
    """Where a pod reports what clients saw (the fleet's per-minute scoring ledger)."""

    def itl(self, t: float, value_s: float, tokens: float) -> None: ...

    def ttft(self, t: float, value_s: float) -> None: ...

    def timed_out(self, t: float, count: int = 1) -> None: ...

    def rejected(self, t: float) -> None: ...

    def finished(self, t: float) -> None: ...


class NullLedger:
    def itl(self, t: float, value_s: float, tokens: float) -> None: ...

    def ttft(self, t: float, value_s: float) -> None: ...

    def timed_out(self, t: float, count: int = 1) -> None: ...

    def rejected(self, t: float) -> None: ...

    def finished(self, t: float) -> None: ...


@dataclass(slots=True)
class Seq:
    """A request inside the engine. KV held = `done` (prefilled) + decode steps since `d0` while decoding."""

    req: Request
    sid: int = -1  # admission order; the newest running sequence has the highest
    left: int = 0  # tokens still to prefill (prompt, or prompt + output so far after a preemption)
    done: int = 0  # tokens prefilled (KV written) in this admission
    generated: int = 0  # output tokens the client has
    d0: int = 0  # decode counter when it started decoding
    decoding: bool = False
    first_s: float = -1.0  # time of the first token, -1 before
    last_s: float = 0.0  # time of the latest token
    reached_s: float = 0.0  # when it reached this pod (the client's arrival unless a router held it)
    queued_s: float = -1.0  # first admission time


class EnginePod:
    """A vLLM (V1 scheduler) or TGI (v3 router) engine serving one replica, advanced by `advance(until)`.

    Aggregates identical decode steps: every decoding sequence gains a token per step, so a cumulative decode
    counter and a heap of finish points replace per-sequence work; a run of pure decode steps up to the next event
    (finish, arrival, KV overflow, the time limit) is one segment whose time is an arithmetic series.
    """

    def __init__(
        self,
        hardware: Hardware,
        metrics: PodMetrics,
        *,
        seed: int = 0,
        timeout_s: float = 300.0,
        ledger: Ledger | None = None,
        now: float = 0.0,
    ) -> None:
        self.hw = hardware
        self.metrics = metrics
        self.ledger: Ledger = ledger or NullLedger()
        self.timeout_s = timeout_s
        self.rng = random.Random(seed)
        self.now = now
        self.tgi = hardware.engine == "tgi"
        self.pending: deque[tuple[float, Request]] = deque()  # (reaches the pod, request), not yet reached
        self.waiting: deque[Seq] = deque()
        self.running: dict[int, Seq] = {}  # sid -> seq, admission order
        self.prefilling: list[Seq] = []
        self.heap: list[tuple[int, int]] = []  # (decode counter at finish, sid)
        self.counter = 0  # decode steps taken
        self.batch = 0  # decoding sequences
        self.kv_decode = 0  # KV tokens of decoding sequences
        self.kv_prefill = 0  # KV tokens written by sequences still prefilling
        self.reserved = 0  # TGI: prompt + output tokens of every running request
        self.next_sid = 0
        self.waited_steps = 0  # TGI: decode steps since the last prefill
        self.stall_s = 0.0  # TGI without chunking: prefill time the decoders waited through
        self.stall_tokens = 0
        self.itl_bins: dict[int, float] = {}
        self.finished = 0
        self.last_finish_s = now
        self.timed_out = 0
        self.rejected = 0
        self.preemptions = 0
        self.prefill_steps = 0
        self.decode_steps = 0

    # ---- outside view --------------------------------------------------------------------------------------
    @property
    def num_running(self) -> int:
        return len(self.running)

    @property
    def num_waiting(self) -> int:
        return len(self.waiting) + len(self.pending)

    @property
    def in_flight(self) -> int:
        return len(self.running) + len(self.waiting) + len(self.pending)

    @property
    def kv_usage(self) -> float:
        used = self.reserved if self.tgi else self.kv_decode + self.kv_prefill
        return min(1.0, used / max(self.hw.kv_cache_tokens, 1))

    def submit(self, request: Request, at: float | None = None) -> None:
        """A request reaches the pod at `at` (default its arrival); submit in time order. Client-side figures
        (ledger TTFT, timeout) count from `request.arrival_s`, the engine's metrics from `at`."""
        at = request.arrival_s if at is None else at
        if request.prompt_tokens + request.output_tokens > min(self.hw.max_model_len, self.hw.kv_cache_tokens):
            self.rejected += 1  # the engine refuses it (HTTP 400): the client's error, not the autoscaler's
            self.ledger.rejected(at)
            return
        self.pending.append((at, request))

    def advance(self, until: float) -> None:
        """Run engine steps until the clock reaches `until` (the last step may end a little after it)."""
        while True:
            pending = self.pending
            while pending and pending[0][0] <= self.now:
                at, request = pending.popleft()
                self.waiting.append(Seq(request, left=max(request.prompt_tokens, 1), last_s=at, reached_s=at))
            if self.now >= until:
                return
            target = min(until, pending[0][0]) if pending else until
            if self._prefill_ready():
                self._mixed_step()
            elif self.batch:
                self._decode_segment(target)
            else:
                self.now = target

    def publish(self, t: float) -> None:
        """End of a quantum that began at `t`: drop timed-out waiters, publish merged ITL points and the gauges."""
        self._expire()
        for key, tokens in self.itl_bins.items():
            value = key / BINS_PER_S
            self.metrics.observe_itl(value, tokens)
            self.ledger.itl(t, value, tokens)
        self.itl_bins.clear()
        self.metrics.set_state(len(self.running), self.num_waiting, self.kv_usage)

    def abort_all(self, t: float) -> int:
        """The pod is killed: every request it holds is lost (counted with the timeouts)."""
        lost = self.in_flight
        if lost:
            self.timed_out += lost
            self.ledger.timed_out(t, lost)
        self.pending.clear()
        self.waiting.clear()
        self.running.clear()
        self.prefilling.clear()
        self.heap.clear()
        self.batch = self.kv_decode = self.kv_prefill = self.reserved = 0
        return lost

    # ---- scheduling ----------------------------------------------------------------------------------------
    def _drop(self, t: float) -> None:
        self.timed_out += 1
        self.ledger.timed_out(t)

    def _expire(self) -> None:
        """Waiters with no first token after `timeout_s` give up (preempted ones that streamed already stay)."""
        limit = self.now - self.timeout_s
        scanned = 0
        expired = False
        for seq in self.waiting:  # FIFO: stop at the first unstarted waiter that is still in time
            if seq.first_s < 0:
                if seq.req.arrival_s >= limit:
                    break
                expired = True
            scanned += 1
        if not expired:
            return
        head = [self.waiting.popleft() for _ in range(scanned)]
        for seq in reversed(head):
            if seq.first_s < 0 and seq.req.arrival_s < limit:
                self._drop(seq.req.arrival_s + self.timeout_s)
            else:
                self.waiting.appendleft(seq)

    def _fits(self, seq: Seq, chunk: int, need: int) -> bool:
        if self.tgi:
            return self.reserved + seq.req.prompt_tokens + seq.req.output_tokens <= self.hw.kv_cache_tokens
        return self.kv_decode + self.kv_prefill + need + chunk <= self.hw.kv_cache_tokens

    def _head(self) -> Seq | None:
        """The first waiter that has not timed out (timed-out heads are dropped here)."""
        while self.waiting:
            seq = self.waiting[0]
            if seq.first_s < 0 and self.now - seq.req.arrival_s > self.timeout_s:
                self.waiting.popleft()
                self._drop(seq.req.arrival_s + self.timeout_s)
                continue
            return seq
        return None

    def _prefill_ready(self) -> bool:
        """Whether the next step carries prompt tokens (a prefill in progress, or a waiter it can admit)."""
        if self.prefilling:
            return True
        head = self._head()
        if head is None or len(self.running) >= self.hw.max_num_seqs:
            return False
        budget = self.hw.max_batched_tokens - (0 if self.tgi else self.batch)
        if budget <= 0 or not self._fits(head, min(head.left, budget), self.batch):
            return False
        if self.tgi and self.batch and self.waited_steps < self.hw.max_waiting_tokens:
            return self._tgi_candidates(int(self.batch * self.hw.waiting_served_ratio))
        return True

    def _tgi_candidates(self, wanted: int) -> bool:
        """TGI: before max-waiting-tokens steps, a running batch only takes a batch of >= ratio x its size."""
        budget, reserved, count = self.hw.max_batched_tokens, self.reserved, 0
        for seq in self.waiting:
            cost = seq.req.prompt_tokens + seq.req.output_tokens
            if reserved + cost > self.hw.kv_cache_tokens or (count and seq.left > budget):
                break
            budget -= seq.left
            reserved += cost
            count += 1
            if count >= wanted or budget <= 0:
                break
        return count >= wanted

    def _preempt_newest(self) -> None:
        sid = next(reversed(self.running))
        seq = self.running.pop(sid)
        if seq.decoding:
            self.batch -= 1
            self.kv_decode -= seq.done + self.counter - seq.d0
            seq.generated += self.counter - seq.d0
            seq.last_s = self.now  # its latest token came at the end of the last step
            seq.decoding = False
        else:
            self.prefilling.remove(seq)
            self.kv_prefill -= seq.done
        seq.left = seq.req.prompt_tokens + seq.generated  # recompute: prompt plus what it streamed
        seq.done = 0
        self.waiting.appendleft(seq)
        self.preemptions += 1

    def _admit(self, seq: Seq) -> None:
        seq.sid = self.next_sid
        self.next_sid += 1
        self.running[seq.sid] = seq
        self.prefilling.append(seq)
        if seq.queued_s < 0:
            seq.queued_s = self.now
        if self.tgi:
            self.reserved += seq.req.prompt_tokens + seq.req.output_tokens

    def _mixed_step(self) -> None:
        """One step with prompt tokens: decodes first, running prefills, then FIFO admissions in the budget."""
        hw = self.hw
        chunked = hw.chunked_prefill
        if not self.tgi:  # vLLM: a step that cannot get KV slots preempts the newest running sequence
            while self.running and self.kv_decode + self.kv_prefill + self.batch > hw.kv_cache_tokens:
                self._preempt_newest()
        decoders = self.batch if chunked else 0
        budget = hw.max_batched_tokens - (0 if self.tgi else decoders)
        chunks: list[tuple[Seq, int]] = []
        need = decoders
        preempted = False
        for seq in self.prefilling:
            chunk = min(seq.left, budget)
            if chunk <= 0:
                break
            if not self.tgi:
                while self.kv_decode + self.kv_prefill + need + chunk > hw.kv_cache_tokens and seq.sid in self.running:
                    self._preempt_newest()
                    preempted = True
                if seq.sid not in self.running:
                    break
            chunks.append((seq, chunk))
            budget -= chunk
            need += chunk
        if preempted:  # recount: preemption may have removed decoders or chunked sequences
            decoders = self.batch if chunked else 0
            chunks = [(s, c) for s, c in chunks if s.sid in self.running]
        else:
            while budget > 0 and len(self.running) < hw.max_num_seqs:
                seq = self._head()
                if seq is None:
                    break
                chunk = min(seq.left, budget) if chunked else seq.left
                if not chunked and chunks and chunk > budget:
                    break
                if not self._fits(seq, chunk, need):
                    break
                self.waiting.popleft()
                self._admit(seq)
                chunks.append((seq, chunk))
                budget -= chunk
                need += chunk
        if not chunks and not decoders:
            if not preempted:  # nothing schedulable after all: an idle scheduler tick
                self.now += hw.decode_fixed_s
            return
        tokens = sum(c for _, c in chunks)
        pairs = sum(c * (s.done + c / 2) for s, c in chunks)
        kv_read = self.kv_decode if decoders else 0
        duration = hw.mixed_step_s(decoders, kv_read, tokens, pairs) * self._noise(1)
        start = self.now
        self.now += duration
        if decoders:
            self._decode_tokens(decoders, duration, 1)
        elif self.batch:
            self.stall_s += duration
            if not self.stall_tokens:
                self.stall_tokens = self.batch
        self.waited_steps = 1
        self.prefill_steps += 1
        self.metrics.observe_step("prefill", duration, decoders + len(chunks))
        for seq, chunk in chunks:
            seq.left -= chunk
            seq.done += chunk
            self.kv_prefill += chunk
            if seq.left == 0:
                self._prefill_done(seq, start)

    def _prefill_done(self, seq: Seq, start: float) -> None:
        now = self.now
        self.prefilling.remove(seq)
        self.kv_prefill -= seq.done
        seq.generated += 1
        if seq.first_s < 0:
            seq.first_s = now
            self.metrics.observe_ttft(now - seq.reached_s)
            self.ledger.ttft(now, now - seq.req.arrival_s)
        else:  # resumed after a preemption: this token's gap is everything since its previous one
            self._itl(now - seq.last_s, 1.0)
        seq.last_s = now
        if seq.generated >= seq.req.output_tokens:
            self._finish(seq)
            return
        seq.decoding = True
        seq.d0 = self.counter
        self.batch += 1
        self.kv_decode += seq.done
        heapq.heappush(self.heap, (self.counter + seq.req.output_tokens - seq.generated, seq.sid))

    def _finish(self, seq: Seq) -> None:
        del self.running[seq.sid]
        if self.tgi:
            self.reserved -= seq.req.prompt_tokens + seq.req.output_tokens
        self.finished += 1
        self.last_finish_s = self.now
        req = seq.req
        self.metrics.observe_finished(
            req.prompt_tokens,
            req.output_tokens,
            self.now - seq.reached_s,
            seq.queued_s - seq.reached_s,
            ttft_s=seq.first_s - seq.reached_s,
        )
        self.ledger.finished(self.now)

    def _decode_tokens(self, batch: int, mean_step: float, steps: int) -> None:
        """`steps` decode steps of `batch` tokens each (mean duration `mean_step`): counter, KV, ITL, finishes."""
        if self.stall_tokens:
            stalled = min(self.stall_tokens, batch)
            self._itl(self.stall_s + mean_step, float(stalled))
            self._spread(mean_step, float(batch * steps - stalled))
            self.stall_tokens, self.stall_s = 0, 0.0
        else:
            self._spread(mean_step, float(batch * steps))
        self.counter += steps
        self.kv_decode += batch * steps
        heap, running, counter = self.heap, self.running, self.counter
        while heap and heap[0][0] <= counter:
            _, sid = heapq.heappop(heap)
            seq = running.get(sid)
            if seq is None or not seq.decoding:
                continue  # preempted since it was pushed
            seq.decoding = False
            self.batch -= 1
            self.kv_decode -= seq.done + counter - seq.d0
            seq.generated = seq.req.output_tokens
            self._finish(seq)

    def _decode_segment(self, target: float) -> None:
        """Pure decode steps up to the next event: a finish, KV overflow, TGI's wait limit, or `target` in time."""
        hw, batch = self.hw, self.batch
        heap = self.heap
        while heap and (heap[0][1] not in self.running or not self.running[heap[0][1]].decoding):
            heapq.heappop(heap)
        steps = heap[0][0] - self.counter if heap else 1 << 30
        if not self.tgi:
            room = hw.kv_cache_tokens - self.kv_decode - self.kv_prefill
            if room < batch:
                self._preempt_newest()
                return
            steps = min(steps, room // batch)
        elif self.waiting and self.waited_steps < hw.max_waiting_tokens:
            steps = min(steps, hw.max_waiting_tokens - self.waited_steps)
        first = hw.decode_step_s(batch, self.kv_decode)
        growth = batch * hw.per_kv_token_s  # each step reads `batch` more KV tokens than the one before
        remaining = target - self.now
        if growth > 0:
            half = growth / 2
            linear = first - half
            needed = math.ceil((-linear + math.sqrt(linear * linear + 4 * half * remaining)) / (2 * half) - 1e-9)
        else:
            needed = math.ceil(remaining / first - 1e-9)
        steps = max(1, min(steps, needed))
        duration = (steps * first + growth * steps * (steps - 1) / 2) * self._noise(steps)
        self.now += duration
        mean = duration / steps
        self.decode_steps += steps
        self.waited_steps += steps
        self.metrics.observe_step("decode", mean, batch, steps)
        self._decode_tokens(batch, mean, steps)

    # ---- noise and ITL -------------------------------------------------------------------------------------
    def _noise(self, steps: int) -> float:
        """Time factor of `steps` steps with independent lognormal step noise (sigma / sqrt(steps) for their sum)."""
        sigma = self.hw.noise_sigma
        if sigma <= 0:
            return 1.0
        z = max(-3.0, min(3.0, self.rng.gauss(0.0, 1.0)))
        return math.exp(sigma * z / math.sqrt(steps))

    def _spread(self, mean_step: float, tokens: float) -> None:
        """Tokens whose ITL is a step of mean `mean_step`, spread over the per-step noise by 3 quadrature points."""
        sigma = self.hw.noise_sigma
        if sigma <= 0 or tokens < 6:
            self._itl(mean_step, tokens)
            return
        for z, weight in _GH:
            self._itl(mean_step * math.exp(sigma * z), tokens * weight)

    def _itl(self, value_s: float, tokens: float) -> None:
        if tokens <= 0:
            return
        key = round(value_s * BINS_PER_S)
        bins = self.itl_bins
        bins[key] = bins.get(key, 0.0) + tokens
