"""Progress that shows on a terminal and in a log.

On a terminal, rich's live bars. Piped, redirected or under a scheduler (stderr is not a
terminal) rich draws nothing until the end, so :class:`PlainLines` prints one plain line
when the work starts, then whenever 30 s have passed or another tenth of it is done, and
one when it ends::

    evaluate popularity: 1,200/6,040 users (20%), 812.4 users/s, elapsed 0:00:01, eta 0:00:06

A rate counts from the first update (``done`` there, usually 0, is its base) to the last,
so "users/s" on a bar is the same figure as ``users_per_second`` in metrics.json:
:func:`genrec.evaluation.evaluate` reports ``done=0`` just before its first
``recommend()`` call and times the same span (model loading and fitting excluded).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

#: a plain line at least this often (seconds) ...
EVERY_SECONDS = 30.0
#: ... and each time another 1/PARTS of the work is done
PARTS = 10


def clock(seconds: float) -> str:
    """0:01:05 for 65 s."""
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


class PlainLines:
    """Periodic one-line reports of `done` of `total` `unit`s, for logs and pipes.

    `scale` multiplies the rate: a process that sees 1/N of the work (rank 0 of N) reports
    the rate of all N.
    """

    def __init__(self, label: str, unit: str, console: Console, *, scale: int = 1,
                 every: float = EVERY_SECONDS, parts: int = PARTS,
                 now: Callable[[], float] = time.perf_counter):
        self.label, self.unit, self.console, self.scale = label, unit, console, scale
        self.every, self.parts, self.now = every, parts, now
        self.t0: float | None = None
        self.base = 0  # `done` at the first update (a resumed run starts part way)
        self.done, self.total = 0, None
        self.info = ""
        self.last_time: float | None = None
        self.last_mark = -1
        self.printed_done: int | None = None

    def update(self, done: int, total: int | None = None, info: str = "") -> None:
        t = self.now()
        if self.t0 is None:
            self.t0, self.base = t, done
        self.done, self.total, self.info = done, total, info
        mark = done * self.parts // total if total else -1  # integers: 300/1000 is 3 tenths, not 2.99
        due = (
            self.last_time is None  # the first report: the work has started
            or (total is not None and done >= total)
            or t - self.last_time >= self.every
            or mark > self.last_mark
        )
        if due and self.printed_done != done:
            self._print(t)
            self.last_mark = max(self.last_mark, mark)

    def finish(self, info: str | None = None) -> None:
        """The closing line, unless the last update already printed it."""
        if self.t0 is not None and self.printed_done != self.done:
            self.info = self.info if info is None else info
            self._print(self.now())

    def rate(self, t: float | None = None) -> float | None:
        elapsed = (self.now() if t is None else t) - (self.t0 or 0.0)
        n = self.done - self.base
        return n * self.scale / elapsed if n > 0 and elapsed > 0 else None

    def line(self, t: float) -> str:
        elapsed = t - (self.t0 or t)
        if self.total:
            parts = [f"{self.done:,}/{self.total:,} {self.unit} ({self.done / self.total:.0%})"]
        else:
            parts = [f"{self.done:,} {self.unit}"]
        rate = self.rate(t)
        if rate is None:
            parts.append("started" if self.printed_done is None else f"elapsed {clock(elapsed)}")
        else:
            parts.append(f"{rate:,.1f} {self.unit}/s")
            parts.append(f"elapsed {clock(elapsed)}")
            if self.total and self.done < self.total:
                parts.append(f"eta {clock((self.total - self.done) * self.scale / rate)}")
        if self.info:
            parts.append(self.info)
        return f"{self.label}: " + ", ".join(parts)

    def _print(self, t: float) -> None:
        self.console.print(self.line(t), markup=False, highlight=False, soft_wrap=True)
        self.last_time, self.printed_done = t, self.done


class _Rate(ProgressColumn):
    """Units per second since the task's first update, the same definition as PlainLines."""

    def __init__(self, unit: str, scale: int):
        super().__init__()
        self.unit, self.scale = unit, scale

    def render(self, task) -> Text:
        elapsed = task.finished_time if task.finished_time is not None else task.elapsed
        n = task.completed - task.fields.get("base", 0)
        text = f"{n * self.scale / elapsed:,.1f} {self.unit}/s" if elapsed and n > 0 else f"– {self.unit}/s"
        return Text(text, style="progress.data.speed")


class CountProgress:
    """`done` of `total` for one piece of work: call it with (done, total), then stop().

    A rich bar on a terminal, :class:`PlainLines` elsewhere, nothing when not `enabled`
    (ranks other than 0). The display and the rate's clock start at the first call, so
    work that turns out to be done already (a cached download) shows nothing.
    """

    def __init__(self, label: str, console: Console, unit: str = "users", *, scale: int = 1, enabled: bool = True):
        self.label, self.console, self.unit, self.scale, self.enabled = label, console, unit, scale, enabled
        self.bar: Progress | None = None
        self.plain: PlainLines | None = None

    def __call__(self, done: int, total: int | None) -> None:
        if not self.enabled:
            return
        if self.bar is None and self.plain is None:
            if self.console.is_terminal:
                self.bar = Progress(
                    TextColumn(f"[bold]{escape(self.label)}"), BarColumn(), MofNCompleteColumn(), _Rate(self.unit, self.scale),
                    TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), console=self.console,
                )
                self.bar.start()
                self.task = self.bar.add_task(self.label, total=total, completed=done, base=done)
            else:
                self.plain = PlainLines(self.label, self.unit, self.console, scale=self.scale)
        if self.bar is not None:
            self.bar.update(self.task, completed=done, total=total)
        elif self.plain is not None:
            self.plain.update(done, total)

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()
        elif self.plain is not None:
            self.plain.finish()

    def __enter__(self) -> CountProgress:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
