"""Built-in days of jobs, seeded: the same name and seed always give the same trace.

Each is 24 hours of arrivals on one ``default`` queue, with service times drawn per job:

- ``steady``: about one job a second all day (Poisson), 6 s on average.
- ``bursty``: a trickle (one job a minute on average, 5 s) and 20 bursts at random times, each
  enqueuing 50-800 jobs within a minute, 20 s on average.
- ``day-night``: a working day over a busy night: 0.5 jobs/s at night, rising from 06:00 to
  4 jobs/s at 13:00 and back by 20:00, 6 s on average.
- ``hourly-cron``: a spike of 300-1,500 jobs in the first 5 s of every hour (3 s on average,
  widely spread), over a trickle of one job every 2 minutes.
- ``heavy-tailed``: 0.4 jobs/s; 90 % take about 4 s, 10 % follow a Pareto tail from 45 s
  (shape 1.5, capped at an hour): most work is in a few long jobs.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator

from dynomatic_daemon.simulate.trace import DEFAULT_QUEUE, Trace

DAY = 86_400.0
Job = tuple[float, float, str]


def lognormal(rng: random.Random, mean: float, sigma: float) -> float:
    """A log-normal draw with the given mean (not median)."""
    return rng.lognormvariate(math.log(mean) - sigma * sigma / 2, sigma)


def poisson_times(
    rng: random.Random, rate: Callable[[float], float], peak: float, end: float = DAY
) -> Iterator[float]:
    """Arrival times of a Poisson process whose rate varies over time (thinning)."""
    t = 0.0
    while True:
        t += rng.expovariate(peak)
        if t >= end:
            return
        if rng.random() * peak <= rate(t):
            yield t


def steady(rng: random.Random) -> list[Job]:
    return [
        (t, lognormal(rng, 6.0, 0.5), DEFAULT_QUEUE) for t in poisson_times(rng, _flat(1.0), 1.0)
    ]


def bursty(rng: random.Random) -> list[Job]:
    jobs = [
        (t, lognormal(rng, 5.0, 0.5), DEFAULT_QUEUE)
        for t in poisson_times(rng, _flat(1 / 60), 1 / 60)
    ]
    for _ in range(20):
        at, size, spread = rng.uniform(0, DAY - 3600), rng.randint(50, 800), rng.uniform(0, 60)
        jobs += [
            (at + rng.uniform(0, spread), lognormal(rng, 20.0, 0.5), DEFAULT_QUEUE)
            for _ in range(size)
        ]
    return jobs


def day_night(rng: random.Random) -> list[Job]:
    def rate(t: float) -> float:
        hour = t / 3600.0
        day = math.sin(math.pi * (hour - 6.0) / 14.0) if 6.0 <= hour <= 20.0 else 0.0
        return 0.5 + 3.5 * day

    return [(t, lognormal(rng, 6.0, 0.5), DEFAULT_QUEUE) for t in poisson_times(rng, rate, 4.0)]


def hourly_cron(rng: random.Random) -> list[Job]:
    jobs = [
        (t, lognormal(rng, 5.0, 0.5), DEFAULT_QUEUE)
        for t in poisson_times(rng, _flat(1 / 120), 1 / 120)
    ]
    for hour in range(24):
        size = rng.randint(300, 1500)
        jobs += [
            (hour * 3600.0 + rng.uniform(0, 5), lognormal(rng, 3.0, 0.8), DEFAULT_QUEUE)
            for _ in range(size)
        ]
    return jobs


def heavy_tailed(rng: random.Random) -> list[Job]:
    def service() -> float:
        if rng.random() < 0.9:
            return lognormal(rng, 4.0, 0.6)
        return min(3600.0, 45.0 * rng.paretovariate(1.5))

    return [(t, service(), DEFAULT_QUEUE) for t in poisson_times(rng, _flat(0.4), 0.4)]


def _flat(rate: float) -> Callable[[float], float]:
    return lambda _t: rate


SCENARIOS: dict[str, Callable[[random.Random], list[Job]]] = {
    "steady": steady,
    "bursty": bursty,
    "day-night": day_night,
    "hourly-cron": hourly_cron,
    "heavy-tailed": heavy_tailed,
}


def scenario(name: str, seed: int = 1) -> Trace:
    if name not in SCENARIOS:
        raise KeyError(f"unknown scenario {name!r}; choose from {', '.join(SCENARIOS)}")
    rng = random.Random(f"{name}:{seed}")  # noqa: S311 - a reproducible workload, not a secret
    return Trace.of(SCENARIOS[name](rng), duration=DAY, name=name)
