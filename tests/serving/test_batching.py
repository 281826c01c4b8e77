"""The batching worker with a stand-in decoder (no model): grouping, limits, failures, cancellation."""

from __future__ import annotations

import threading
from concurrent.futures import CancelledError

import pytest

from genrec.errors import GenrecError
from genrec.serving.batching import Batcher, QueueFullError


class Recorder:
    """Records each call's histories and key; returns each history's sum."""

    def __init__(self, fail_on=None, gate: threading.Event | None = None):
        self.calls: list[tuple[list, tuple]] = []
        self.fail_on, self.gate = fail_on, gate

    def __call__(self, histories, *key):
        if self.gate is not None:
            self.gate.wait(10)
        self.calls.append((list(histories), key))
        if self.fail_on is not None and self.fail_on in key:
            raise GenrecError("decoding failed", "a test failure")
        return [sum(h) for h in histories]


def test_requests_submitted_together_share_one_call():
    run = Recorder()
    b = Batcher(run, max_batch=8, max_wait_ms=0)
    futures = b.submit([[1], [2, 3], [4]], (5, "beam", True))
    assert [f.result(10) for f in futures] == [1, 5, 4]
    b.close()
    assert run.calls == [([[1], [2, 3], [4]], (5, "beam", True))]
    assert (b.batches, b.requests) == (1, 3)


def test_batches_never_exceed_max_batch():
    run = Recorder()
    b = Batcher(run, max_batch=2, max_wait_ms=0)
    futures = b.submit([[i] for i in range(5)], (3, "beam", True))
    assert [f.result(10) for f in futures] == list(range(5))
    b.close()
    assert [len(h) for h, _ in run.calls] == [2, 2, 1]


def test_requests_that_cannot_share_a_call_are_split_by_key():
    gate = threading.Event()
    run = Recorder(gate=gate)
    b = Batcher(run, max_batch=16, max_wait_ms=0)
    first = b.submit([[0]], (1, "beam", True))  # occupies the worker until the gate opens
    while b.queued:
        threading.Event().wait(0.01)
    later = b.submit([[1]], (3, "beam", True)) + b.submit([[2]], (3, "exact", True)) + b.submit([[3]], (3, "beam", True))
    gate.set()
    assert [f.result(10) for f in first + later] == [0, 1, 2, 3]
    b.close()
    assert run.calls[0] == ([[0]], (1, "beam", True))
    # the three waited together: one call per key, the two with the same key in one
    assert sorted(run.calls[1:]) == [([[1], [3]], (3, "beam", True)), ([[2]], (3, "exact", True))]


def test_a_failed_call_fails_its_requests_only():
    run = Recorder(fail_on="exact")
    b = Batcher(run, max_batch=16, max_wait_ms=0)
    bad = b.submit([[1], [2]], (3, "exact", True))
    for f in bad:
        with pytest.raises(GenrecError, match="decoding failed"):
            f.result(10)
    good = b.submit([[4]], (3, "beam", True))
    assert good[0].result(10) == 4  # the worker survived
    b.close()


def test_a_full_queue_refuses_new_requests():
    gate = threading.Event()
    b = Batcher(Recorder(gate=gate), max_batch=1, max_wait_ms=0, max_queue=2)
    running = b.submit([[1]], (1, "beam", True))
    while b.queued:  # the worker has taken the first request and waits at the gate
        threading.Event().wait(0.01)
    b.submit([[2], [3]], (1, "beam", True))
    with pytest.raises(QueueFullError, match="limit 2"):
        b.submit([[4]], (1, "beam", True))
    gate.set()
    assert running[0].result(10) == 1
    b.close()


def test_cancelled_requests_are_skipped():
    gate = threading.Event()
    run = Recorder(gate=gate)
    b = Batcher(run, max_batch=1, max_wait_ms=0)
    b.submit([[1]], (1, "beam", True))
    gone, kept = b.submit([[2], [3]], (1, "beam", True))
    assert gone.cancel()  # e.g. the HTTP client disconnected while it waited
    gate.set()
    assert kept.result(10) == 3
    with pytest.raises(CancelledError):
        gone.result(0)
    b.close()
    assert [h for h, _ in run.calls] == [[[1]], [[3]]]


def test_close_finishes_queued_work_then_refuses():
    run = Recorder()
    b = Batcher(run, max_batch=4, max_wait_ms=50)
    futures = b.submit([[1], [2]], (1, "beam", True))
    b.close()
    assert [f.result(0) for f in futures] == [1, 2]
    with pytest.raises(GenrecError, match="shutting down"):
        b.submit([[3]], (1, "beam", True))


def test_settings_are_checked():
    with pytest.raises(GenrecError, match="max_batch=0"):
        Batcher(Recorder(), max_batch=0)


def test_a_closed_batcher_can_be_opened_again():
    run = Recorder()
    b = Batcher(run, max_batch=4, max_wait_ms=0)
    assert b.submit([[1]], (1, "beam", True))[0].result(10) == 1
    b.close()
    b.open()
    assert b.submit([[2]], (1, "beam", True))[0].result(10) == 2
    b.close()
