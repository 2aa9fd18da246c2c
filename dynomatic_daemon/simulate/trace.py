"""A trace: the jobs of a period, each with its arrival, its service time and its queue.

The CSV form has a header and one job per line: ``arrival_s,service_s[,queue]``. ``arrival_s`` is
seconds from the start of the trace (any order; sorted on reading), ``service_s`` the seconds the
job runs once a worker takes it, ``queue`` its queue name (``default`` when the column is absent or
empty). Lines starting with ``#`` are comments.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from dynomatic_daemon.models import QueueSelector

DEFAULT_QUEUE = "default"
# A Monday at midnight, so that schedules in a config meet weekdays and weekends as in real life.
DEFAULT_START = datetime(2026, 3, 2, tzinfo=UTC)
MAX_SERVICE_SECONDS = 7 * 86_400.0


class TraceError(ValueError):
    """A trace file that cannot be used, with the line that says why."""


@dataclass(frozen=True)
class Trace:
    """Jobs sorted by arrival; parallel tuples keep a day of jobs small and fast to replay."""

    arrivals: tuple[float, ...]
    services: tuple[float, ...]
    queues: tuple[str, ...]
    duration: float  # seconds the replay covers; arrivals all fall before it
    start: datetime = DEFAULT_START
    name: str = "trace"

    @classmethod
    def of(
        cls,
        jobs: Iterable[tuple[float, float, str]],
        *,
        duration: float | None = None,
        start: datetime = DEFAULT_START,
        name: str = "trace",
    ) -> Trace:
        ordered = sorted(jobs, key=lambda j: j[0])
        last = ordered[-1][0] if ordered else 0.0
        return cls(
            arrivals=tuple(j[0] for j in ordered),
            services=tuple(j[1] for j in ordered),
            queues=tuple(j[2] for j in ordered),
            duration=duration if duration is not None else default_duration(last),
            start=start,
            name=name,
        )

    def __len__(self) -> int:
        return len(self.arrivals)

    def select(self, patterns: Sequence[str] | None) -> Trace:
        """The jobs of the queues a process type works (``[[process]] queues``)."""
        if patterns is None:
            return self
        selector = QueueSelector(tuple(patterns))
        jobs = zip(self.arrivals, self.services, self.queues, strict=True)
        return Trace.of(
            (j for j in jobs if selector.matches(j[2])),
            duration=self.duration,
            start=self.start,
            name=self.name,
        )


def default_duration(last_arrival: float) -> float:
    """The last arrival plus an hour to drain, rounded up to a whole hour."""
    return math.ceil((last_arrival + 3600.0) / 3600.0) * 3600.0


def read_csv(path: Path, *, start: datetime = DEFAULT_START) -> Trace:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TraceError(f"{path}: cannot read the trace: {exc}") from None
    return parse_csv(text, source=str(path), start=start)


def parse_csv(text: str, *, source: str = "trace", start: datetime = DEFAULT_START) -> Trace:
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    reader = csv.reader(lines)
    header = [h.strip() for h in next(reader, [])]
    if header[:2] != ["arrival_s", "service_s"] or header[2:] not in ([], ["queue"]):
        raise TraceError(
            f"{source}: the header must be arrival_s,service_s[,queue], got {','.join(header)!r}"
        )
    jobs = [_job(row, n, source) for n, row in enumerate(reader, start=2)]
    if not jobs:
        raise TraceError(f"{source}: no jobs after the header")
    return Trace.of(jobs, start=start, name=Path(source).stem)


def _job(row: list[str], line: int, source: str) -> tuple[float, float, str]:
    if len(row) not in (2, 3):
        raise TraceError(f"{source}:{line}: expected 2 or 3 columns, got {len(row)}")
    try:
        arrival, service = float(row[0]), float(row[1])
    except ValueError:
        raise TraceError(f"{source}:{line}: arrival_s and service_s must be numbers") from None
    if not (math.isfinite(arrival) and arrival >= 0):
        raise TraceError(f"{source}:{line}: arrival_s must be a number >= 0, got {row[0]!r}")
    if not (math.isfinite(service) and 0 <= service <= MAX_SERVICE_SECONDS):
        raise TraceError(
            f"{source}:{line}: service_s must be between 0 and {MAX_SERVICE_SECONDS:g}"
        )
    queue = row[2].strip() if len(row) == 3 and row[2].strip() else DEFAULT_QUEUE
    return arrival, service, queue


def to_csv(trace: Trace) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["arrival_s", "service_s", "queue"])
    for row in zip(trace.arrivals, trace.services, trace.queues, strict=True):
        writer.writerow([f"{row[0]:.3f}", f"{row[1]:.3f}", row[2]])
    return out.getvalue()
