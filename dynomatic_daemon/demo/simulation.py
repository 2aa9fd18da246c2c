"""The demo's simulated app: a seeded bursty load generator and worker dynos, as threads.

Workers follow the stand-in's *current* formation: worker slot ``i`` works while the formation
runs more than ``i`` dynos, one job at a time, each job taking ``1 / rate`` seconds. A slot that
is scaled away finishes the job in hand first, as a worker does on SIGTERM. The load runs for the
whole run: a trickle throughout, with bursts in the first two thirds, so that the last third
shows the dynos coming down while work still arrives. Everything stops when ``stop`` is set.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg

from dynomatic_daemon.demo.workloads import Workload

STEP_SECONDS = 0.1  # load generator resolution
IDLE_POLL_SECONDS = 0.1  # a worker with nothing to do looks again after this
TRICKLE_RATE = 2.0  # jobs/s between bursts: less than one dyno's rate
# (start, end, lowest rate, highest rate) of each burst, as shares of the duration and jobs/s:
# big ones well above one dyno's rate and below the most dynos' combined rate, then a smaller one.
SHORT_RUN_BURSTS = ((0.1, 0.35, 25.0, 40.0),)  # under 40 s: one burst, then the fall
BURSTS = ((0.05, 0.18, 25.0, 40.0), (0.3, 0.4, 25.0, 40.0), (0.52, 0.62, 10.0, 15.0))

Connect = Callable[[], psycopg.Connection[Any]]


@dataclass
class Tally:
    """Counters shared by the threads; every change holds the lock."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    enqueued: int = 0
    done: int = 0
    waits: list[float] = field(default_factory=list)
    dyno_seconds: float = 0.0
    peak_dynos: int = 0
    errors: list[str] = field(default_factory=list)

    def add_enqueued(self, count: int) -> None:
        with self.lock:
            self.enqueued += count

    def add_claimed(self, waits: list[float]) -> None:
        with self.lock:
            self.waits.extend(waits)

    def add_done(self, count: int) -> None:
        with self.lock:
            self.done += count

    def add_dynos(self, dynos: int, seconds: float) -> None:
        with self.lock:
            self.dyno_seconds += dynos * seconds
            self.peak_dynos = max(self.peak_dynos, dynos)

    def add_error(self, text: str) -> None:
        with self.lock:
            self.errors.append(text)


@dataclass(frozen=True)
class Burst:
    start: float
    end: float
    rate: float  # jobs/s


@dataclass(frozen=True)
class LoadPlan:
    """Arrival rate over time: a trickle, with bursts, until ``end`` (the end of the run)."""

    end: float
    bursts: tuple[Burst, ...]

    @classmethod
    def for_duration(cls, duration: float, rng: random.Random) -> LoadPlan:
        windows = SHORT_RUN_BURSTS if duration < 40 else BURSTS
        bursts = tuple(
            Burst(a * duration, b * duration, rng.uniform(low, high)) for a, b, low, high in windows
        )
        return cls(end=duration, bursts=bursts)

    def rate_at(self, elapsed: float) -> float:
        if elapsed >= self.end:
            return 0.0
        hits = [b.rate for b in self.bursts if b.start <= elapsed < b.end]
        return max(hits, default=TRICKLE_RATE)


def poisson(rng: random.Random, mean: float) -> int:
    """Knuth's method; fine for the small means of one step, and bounded."""
    limit, product, count = math.exp(-mean), rng.random(), 0
    while product > limit and count < 10 * mean + 10:
        product *= rng.random()
        count += 1
    return count


class LoadGenerator:
    def __init__(
        self, workload: Workload, connect: Connect, plan: LoadPlan, seed: int, tally: Tally
    ) -> None:
        self._workload, self._connect, self._plan, self._tally = workload, connect, plan, tally
        self._rng = random.Random(seed)  # noqa: S311 - a reproducible simulation, not a secret
        self.stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-load", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float) -> None:
        if self._thread.is_alive():  # not started when setup was cut short
            self._thread.join(timeout)

    def _run(self) -> None:
        started = time.monotonic()
        try:
            with self._connect() as conn:
                while not self.stop.wait(STEP_SECONDS):
                    elapsed = time.monotonic() - started
                    if elapsed >= self._plan.end:
                        return
                    count = poisson(self._rng, self._plan.rate_at(elapsed) * STEP_SECONDS)
                    if count:
                        self._workload.enqueue(conn, count)
                        self._tally.add_enqueued(count)
        except psycopg.Error as exc:
            self._tally.add_error(f"load generator: {exc}")


class WorkerPool:
    def __init__(
        self,
        workload: Workload,
        connect: Connect,
        dynos: Callable[[], int],
        *,
        slots: int,
        rate: float,
        tally: Tally,
    ) -> None:
        self._workload, self._connect, self._dynos = workload, connect, dynos
        self._job_seconds = 1.0 / rate
        self._tally = tally
        self.stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(i,), name=f"demo-worker.{i + 1}", daemon=True)
            for i in range(slots)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for thread in filter(threading.Thread.is_alive, self._threads):
            thread.join(max(0.0, deadline - time.monotonic()))

    def _run(self, slot: int) -> None:
        conn: psycopg.Connection[Any] | None = None
        try:
            while not self.stop.is_set():
                if slot >= self._dynos():
                    self.stop.wait(IDLE_POLL_SECONDS)
                    continue
                # Opened on first use and kept: queue_classic ties a lock to this backend.
                conn = conn or self._connect()
                if not self._work_one(conn, f"worker.{slot + 1}"):
                    self.stop.wait(IDLE_POLL_SECONDS)
        except psycopg.Error as exc:
            self._tally.add_error(f"worker.{slot + 1}: {exc}")
        finally:
            if conn is not None:
                conn.close()

    def _work_one(self, conn: psycopg.Connection[Any], name: str) -> bool:
        claimed = self._workload.claim(conn, 1, name)
        if not claimed:
            return False
        self._tally.add_claimed([wait for _id, wait in claimed])
        time.sleep(self._job_seconds)  # the job itself; finished even when stopping
        self._workload.finish(conn, [job_id for job_id, _wait in claimed])
        self._tally.add_done(len(claimed))
        return True
