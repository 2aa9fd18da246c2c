"""What the demo shows while it runs: a live terminal view on a TTY (status log lines elsewhere),
fed by an observer thread that also meters dyno-seconds."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from dynomatic_daemon.demo.output import Decision, Output
from dynomatic_daemon.demo.simulation import LoadPlan, Tally

SAMPLE_SECONDS = 0.2
HISTORY = 60  # marks in the view's dyno chart


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
    """Plain ANSI redraw on the alternate screen; ``close`` always gives the terminal back."""

    def __init__(self, output: Output, tally: Tally, heading: list[str], max_dynos: int) -> None:
        self._out, self._tap, self._tally, self._heading = output.out, output.tap, tally, heading
        self._max = max_dynos
        self._history: deque[int] = deque(maxlen=HISTORY)
        self._next_mark = 0.0
        self._open = False

    def open(self) -> None:
        self._out.write("\x1b[?1049h\x1b[?25l")  # alternate screen, hide cursor
        self._open = True

    def close(self) -> None:
        if self._open:
            self._out.write("\x1b[?25h\x1b[?1049l")
            self._out.flush()
            self._open = False

    def show(self, elapsed: float, dynos: int, plan: LoadPlan, duration: float) -> None:
        # One mark per step, the step chosen so that the whole run fits the chart.
        step = max(1.0, duration / HISTORY)
        if elapsed >= self._next_mark:
            self._history.append(dynos)
            self._next_mark = elapsed + step
        lines = self.frame(elapsed, dynos, plan, duration)
        self._out.write("\x1b[H" + "".join(f"{line}\x1b[K\n" for line in lines) + "\x1b[J")
        self._out.flush()

    def frame(self, elapsed: float, dynos: int, plan: LoadPlan, duration: float) -> list[str]:
        last, changes, problems, scaled = self._tap.snapshot()
        last = last or Decision("", "", None, None, None, None, None, "")
        rate = plan.rate_at(elapsed)
        load = "burst" if rate > 2.0 else "trickle" if rate else "stopped (draining)"
        with self._tally.lock:
            enqueued, done = self._tally.enqueued, self._tally.done
        lines = [
            f"{self._heading[0]}   {elapsed:5.1f}s / {duration:.0f}s   (Ctrl-C stops)",
            *self._heading[1:],
            "",
            f"  load      {load:<20} jobs enqueued {enqueued:>5}   done {done:>5}",
            f"  queue     ready {_show(last.ready):>5}   "
            f"oldest {_show(last.oldest_age, ' s')}   running {_show(last.running)}",
            f"  dynos     {dynos:>3}  [{'#' * dynos:<{self._max}}] of at most {self._max}",
            f"  history   [{''.join(_spark(d) for d in self._history):<{HISTORY}}]"
            f"  dynos every {max(1.0, duration / HISTORY):g} s ({_MARKS[0]} = 0)",
            "",
            f"  last decision  {last.clock} {last.action} {last.current}->{last.desired}: "
            f"{last.reason}"[:160],
            f"  scale events ({scaled}), latest last:",
        ]
        lines += [
            f"    {d.clock}  {d.current:>2} -> {d.desired:<2} {d.reason}"[:160] for d in changes
        ]
        lines += [f"  ! {p}"[:160] for p in problems]
        return lines


def _show(value: float | None, unit: str = "") -> str:
    return "-" if value is None else f"{value:g}{unit}"


_MARKS = "_123456789"


def _spark(dynos: int) -> str:
    return _MARKS[min(dynos, 9)]
