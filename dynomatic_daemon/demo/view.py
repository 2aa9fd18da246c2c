"""What the demo shows while it runs: a live terminal view on a TTY (status log lines elsewhere),
fed by an observer thread that also meters dyno-seconds."""

from __future__ import annotations

import textwrap
import threading
import time
from collections import deque
from collections.abc import Callable

from dynomatic_daemon.demo.output import Decision, Output
from dynomatic_daemon.demo.simulation import TRICKLE_RATE, LoadPlan, Tally

SAMPLE_SECONDS = 0.2
WIDTH = 80  # every line of the view fits a standard terminal
HISTORY = 72  # marks in the view's dyno chart
LIVE_EVENTS = 6  # scale events shown while running; every one of them at the end


class Observer:
    """Samples the formation into ``tally`` (for dyno-seconds) and refreshes the output."""

    def __init__(
        self,
        tally: Tally,
        dynos: Callable[[], int],
        show: Callable[[float, int], None],
        every: float,
    ) -> None:
        self._tally, self._dynos, self._show, self._every = tally, dynos, show, every
        self.stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-observer", daemon=True)
        self.started: float | None = None

    def start(self) -> None:
        self.started = time.monotonic()
        self._thread.start()

    def join(self, timeout: float) -> None:
        if self._thread.is_alive():  # not started when setup was cut short
            self._thread.join(timeout)

    def elapsed(self) -> float:
        return 0.0 if self.started is None else time.monotonic() - self.started

    def _run(self) -> None:
        started = last = shown = time.monotonic()
        while not self.stop.wait(SAMPLE_SECONDS):
            now, dynos = time.monotonic(), self._dynos()
            self._tally.add_dynos(dynos, now - last)
            last = now
            if now - shown >= self._every:
                shown = now
                try:
                    self._show(now - started, dynos)
                except Exception as exc:  # noqa: BLE001 - a display bug must not stop the meter
                    self._tally.add_error(f"display: {type(exc).__name__}: {exc}")
                    self._every = float("inf")
        self._tally.add_dynos(self._dynos(), time.monotonic() - last)


class TtyView:
    """Plain ANSI redraw on the alternate screen; ``close`` always gives the terminal back and
    leaves the last frame, with every scale event of the run, on the normal screen."""

    def __init__(self, output: Output, tally: Tally, heading: list[str], max_dynos: int) -> None:
        self._out, self._tap, self._tally, self._heading = output.out, output.tap, tally, heading
        self._max = max_dynos
        self._history: deque[int] = deque(maxlen=HISTORY)
        self._next_mark = 0.0
        self._open = False
        self._last: tuple[float, int, LoadPlan, float] | None = None

    def open(self) -> None:
        self._out.write("\x1b[?1049h\x1b[?25l")  # alternate screen, hide cursor
        self._open = True

    def close(self) -> None:
        if self._open:
            self._out.write("\x1b[?25h\x1b[?1049l")
            if self._last is not None:  # the final frame stays in the scrollback
                final = self.frame(*self._last, every=True)
                self._out.write("".join(f"{line}\n" for line in final))
            self._out.flush()
            self._open = False

    def show(self, elapsed: float, dynos: int, plan: LoadPlan, duration: float) -> None:
        # One mark per step, the step chosen so that the whole run fits the chart.
        step = max(1.0, duration / HISTORY)
        if elapsed >= self._next_mark:
            self._history.append(dynos)
            self._next_mark = elapsed + step
        self._last = (elapsed, dynos, plan, duration)
        lines = self.frame(elapsed, dynos, plan, duration)
        self._out.write("\x1b[H" + "".join(f"{line}\x1b[K\n" for line in lines) + "\x1b[J")
        self._out.flush()

    def frame(
        self, elapsed: float, dynos: int, plan: LoadPlan, duration: float, *, every: bool = False
    ) -> list[str]:
        """The screen, each line at most WIDTH columns; ``every``: all scale events, not the
        latest few."""
        last, changes, problems, scaled = self._tap.snapshot()
        rate = plan.rate_at(elapsed)
        load = (
            f"burst, {rate:.0f} jobs/s"
            if rate > TRICKLE_RATE
            else f"steady, {rate:g} jobs/s"
            if rate
            else "none: the run is over"
        )
        with self._tally.lock:
            enqueued, done = self._tally.enqueued, self._tally.done
        step = max(1.0, duration / HISTORY)
        lines = [
            f"{self._heading[0]}   {elapsed:.0f} s of {duration:.0f} s",
            *self._heading[1:],
            "",
            f"  new jobs   {load:<22} {enqueued:>6} enqueued {done:>6} done",
            f"  queue      {_queue(last)}",
            f"  dynos      {dynos:>3}  {'#' * dynos}{'.' * max(0, self._max - dynos)}"
            f"  (at most {self._max})",
            f"  dynos over time, one mark every {step:g} s ({_MARKS[0]} = none):",
            f"    {''.join(_spark(d) for d in self._history)}",
            "",
            *_last_decision(last),
            f"  scale events ({scaled}{'' if every else ' so far'}, latest last):",
            *(_event(d) for d in (changes if every else changes[-LIVE_EVENTS:])),
            *(f"  ! {p}" for p in problems),
        ]
        return [_fit(line) for line in lines]


def _queue(last: Decision | None) -> str:
    if last is None:
        return "(no reading yet)"
    oldest = f", the oldest for {_show(last.oldest_age, ' s')}" if last.ready else ""
    return f"{_show(last.ready)} waiting{oldest}, {_show(last.running)} running"


def _last_decision(last: Decision | None) -> list[str]:
    if last is None:
        return ["  last decision  (none yet)"]
    head = f"  last decision  {last.clock}  {last.current} -> {last.desired}  {last.action}"
    body = textwrap.wrap(last.reason, WIDTH - 4, max_lines=2, placeholder="...")
    return [head, *(f"    {line}" for line in body)]


def _event(d: Decision) -> str:
    return f"    {d.clock}  {d.current!s:>2} -> {d.desired!s:<2}  {d.reason}"


def _fit(line: str) -> str:
    return line if len(line) <= WIDTH else line[: WIDTH - 3] + "..."


def _show(value: float | None, unit: str = "") -> str:
    return "-" if value is None else f"{value:g}{unit}"


_MARKS = "_123456789"


def _spark(dynos: int) -> str:
    return _MARKS[min(dynos, 9)]
