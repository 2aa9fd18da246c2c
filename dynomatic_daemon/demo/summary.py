"""The numbers the demo ends with: work done, waits, and dyno time against a fixed formation.

The saving is measured against the *peak*: the most dynos that ran at once during the run. A
fixed formation that could have handled the busiest moment needs that many dynos all along.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from dynomatic_daemon.demo.simulation import Tally


@dataclass(frozen=True)
class Summary:
    adapter: str
    seconds: float
    enqueued: int
    done: int
    wait_p50: float | None
    wait_p95: float | None
    dyno_seconds: float
    peak_dynos: int
    scale_events: int
    interrupted: bool

    @classmethod
    def of(
        cls,
        tally: Tally,
        *,
        adapter: str,
        seconds: float,
        scale_events: int,
        interrupted: bool,
    ) -> Summary:
        with tally.lock:
            waits = sorted(tally.waits)
            return cls(
                adapter,
                seconds,
                tally.enqueued,
                tally.done,
                percentile(waits, 0.50),
                percentile(waits, 0.95),
                tally.dyno_seconds,
                tally.peak_dynos,
                scale_events,
                interrupted,
            )

    @property
    def fixed_dyno_seconds(self) -> float:
        """What running the peak number of dynos all along would have used."""
        return self.peak_dynos * self.seconds

    @property
    def saving_percent(self) -> float:
        fixed = self.fixed_dyno_seconds
        return 0.0 if fixed <= 0 else 100.0 * (1.0 - self.dyno_seconds / fixed)

    def fields(self) -> dict[str, object]:
        """For the one ``demo_summary`` log line that scripts and tests read."""
        return {
            "adapter": self.adapter,
            "seconds": round(self.seconds, 1),
            "enqueued": self.enqueued,
            "done": self.done,
            "wait_p50": _round(self.wait_p50),
            "wait_p95": _round(self.wait_p95),
            "dyno_seconds": round(self.dyno_seconds, 1),
            "fixed_dyno_seconds": round(self.fixed_dyno_seconds, 1),
            "saving_percent": round(self.saving_percent, 1),
            "peak_dynos": self.peak_dynos,
            "scale_events": self.scale_events,
            "interrupted": self.interrupted,
        }

    def text(self) -> str:
        if self.seconds <= 0:
            return "dynomatic demo stopped by a signal during setup; what it had started is gone\n"
        ended = "stopped by a signal" if self.interrupted else "finished"
        unfinished = self.enqueued - self.done
        return "\n".join(
            [
                f"dynomatic demo {ended} after {self.seconds:.1f} s ({self.adapter})",
                f"  jobs              {self.enqueued} enqueued, {self.done} done"
                + (f", {unfinished} unfinished at the end" if unfinished else ""),
                f"  wait for a worker half of the jobs within {_secs(self.wait_p50)}, "
                f"95 in 100 within {_secs(self.wait_p95)}",
                f"  dynos             {self.scale_events} changes; peak {self.peak_dynos}"
                " (the most running at once)",
                f"  dyno time         {self.dyno_seconds:.1f} dyno-seconds used; "
                f"{self.fixed_dyno_seconds:.1f} for the peak all along",
                f"  saving            {self.saving_percent:.0f}% against running the peak "
                f"of {self.peak_dynos} all the time",
                "",
            ]
        )


def percentile(ordered: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile of an ascending sequence."""
    if not ordered:
        return None
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"
