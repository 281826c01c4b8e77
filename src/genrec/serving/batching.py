"""Request batching: requests that arrive together share one decoding call.

A forward pass over many users costs far less than one pass per user (the model's
weights are read once per step for the whole batch, and the prompt/beam bookkeeping is
vectorised), so the server queues requests and a single background thread decodes them
in batches: it takes what is waiting, waits up to ``max_wait_ms`` for more while the
batch is below ``max_batch``, and runs one call per group of requests that can share
one (same k, decoding mode and seen-item exclusion). One worker also serialises every
use of the model, which the decoders require (the beam decoder switches the model's
attention implementation during a step). This is the dynamic batching of Triton's and
Ray Serve's model servers, reduced to what one model on one device needs.

The worker is a plain thread fed through a condition variable, not an asyncio task, so
it works under any event loop (uvicorn's, a test client's) and callers await its
``concurrent.futures.Future`` with ``asyncio.wrap_future``.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from ..errors import GenrecError

#: run(histories, *key) -> one result per history; the key is the caller's (the app: a job kind, then k,
#: decoding config, exclude_seen), and jobs are batched together only under one key
RunBatch = Callable[..., Sequence[Any]]


class QueueFullError(GenrecError):
    """More requests are waiting than the server accepts."""


@dataclass
class _Job:
    history: Sequence[int]
    key: tuple[Hashable, ...]
    future: Future = field(default_factory=Future)


class Batcher:
    """A queue of single-history jobs and the one thread that decodes them in batches."""

    def __init__(self, run: RunBatch, max_batch: int = 16, max_wait_ms: float = 5.0, max_queue: int = 1024):
        if max_batch < 1 or max_wait_ms < 0 or max_queue < 1:
            raise GenrecError(
                f"max_batch={max_batch}, max_wait_ms={max_wait_ms}, max_queue={max_queue}",
                "use max_batch >= 1, max_wait_ms >= 0 and max_queue >= 1",
            )
        self.run, self.max_batch, self.max_wait = run, max_batch, max_wait_ms / 1000.0
        self.max_queue = max_queue
        self._pending: deque[_Job] = deque()
        self._cv = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        #: counters for /health and benchmarks
        self.batches = 0
        self.requests = 0

    @property
    def queued(self) -> int:
        return len(self._pending)

    def submit(self, histories: Sequence[Sequence[int]], key: tuple[Hashable, ...]) -> list[Future]:
        """Queue histories (all or none); each future resolves to that history's result."""
        jobs = [_Job(h, key) for h in histories]
        with self._cv:
            if self._closed:
                raise GenrecError("the server is shutting down", "retry against a running server")
            if len(self._pending) + len(jobs) > self.max_queue:
                raise QueueFullError(
                    f"{len(self._pending)} requests are already waiting (limit {self.max_queue})",
                    "retry shortly, or send fewer requests at once",
                )
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="genrec-batcher", daemon=True)
                self._thread.start()
            self._pending.extend(jobs)
            self._cv.notify()
        return [j.future for j in jobs]

    def open(self) -> None:
        """Accept requests again after :meth:`close` (an app's lifespan may run more than once)."""
        with self._cv:
            if not self._closed:
                return
            old = self._thread
        if old is not None:
            old.join()  # it drains the queue and ends (outside the lock, which it needs)
        with self._cv:
            self._closed, self._thread = False, None

    def close(self, timeout: float | None = 30.0) -> None:
        """Finish what is queued, then stop the worker."""
        with self._cv:
            self._closed = True
            self._cv.notify()
        if self._thread is not None:
            self._thread.join(timeout)

    def _take(self) -> list[_Job] | None:
        with self._cv:
            while not self._pending and not self._closed:
                self._cv.wait()
            if not self._pending:
                return None  # closed and drained
            deadline = time.monotonic() + self.max_wait
            while len(self._pending) < self.max_batch and not self._closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cv.wait(left)
            n = min(self.max_batch, len(self._pending))
            return [self._pending.popleft() for _ in range(n)]

    def _loop(self) -> None:
        while (batch := self._take()) is not None:
            # a caller that went away (client disconnected) cancelled its future: skip it
            live = [j for j in batch if j.future.set_running_or_notify_cancel()]
            groups: dict[tuple, list[_Job]] = {}
            for j in live:
                groups.setdefault(j.key, []).append(j)
            for key, jobs in groups.items():
                self.batches += 1
                self.requests += len(jobs)
                try:
                    results = self.run([j.history for j in jobs], *key)
                except Exception as e:  # every caller of the group hears of it; the worker lives on
                    for j in jobs:
                        j.future.set_exception(e)
                    continue
                for j, r in zip(jobs, results, strict=True):
                    j.future.set_result(r)
