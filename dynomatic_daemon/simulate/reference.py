"""Reference policies, modelled on what their makers document (see docs/scaling.md), so that a
config can be compared with the way other autoscalers would run the same day.

Each reads the same facts as the daemon, at its own polling interval, inside the same bounds
(``min_dynos`` .. ``max_dynos``). Where a product setting has no documented default, the value
chosen is named here and in docs/scaling.md.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from dynomatic_daemon.process_config import DEFAULT_DYNO_CEILING, ProcessSettings
from dynomatic_daemon.simulate.records import Controller, Observation

NAMES = ("always-max", "hirefire", "keda-hpa", "judoscale")


@dataclass
class _Bounds:
    low: int
    high: int

    @classmethod
    def of(cls, proc: ProcessSettings) -> _Bounds:
        return cls(
            proc.min_dynos, proc.ceiling if proc.ceiling is not None else DEFAULT_DYNO_CEILING
        )

    def clip(self, n: int) -> int:
        return max(self.low, min(n, self.high))


def jobs_per_dyno(proc: ProcessSettings) -> int:
    """The ratio a proportional reference uses: the config's, else one dyno per worker slot set."""
    return proc.jobs_per_dyno or proc.worker_concurrency


@dataclass
class AlwaysMax:
    """The upper bound of cost and the lower bound of wait: ``max_dynos`` all day."""

    bounds: _Bounds
    name: str = "always-max"
    interval: float = 60.0

    def decide(self, now: float, seen: Observation, current: int) -> int:
        return self.bounds.high


@dataclass
class HireFireLike:
    """HireFire's job-queue manager: every 60 s checkup, ``ceil(size / ratio)`` dynos, where size
    counts ready and running jobs (its Delayed Job and Que macros count locked rows); not
    "decrementable" (the default): no scale-down while any job remains, then straight to the
    minimum once the queue is empty. Sensitivity 1, no step limits."""

    bounds: _Bounds
    ratio: int
    name: str = "hirefire"
    interval: float = 60.0

    def decide(self, now: float, seen: Observation, current: int) -> int:
        size = seen.ready + seen.running
        if size == 0:
            return self.bounds.low
        return max(current, self.bounds.clip(math.ceil(size / self.ratio)))


@dataclass
class KedaHpaLike:
    """KEDA's PostgreSQL scaler (the query counts queued and running jobs, as in its docs) with
    the HPA's defaults: KEDA polls every 30 s and owns 0 <-> 1 (to 0 after ``cooldownPeriod``
    300 s without activity); the HPA owns 1 <-> N with an AverageValue target of ``ratio`` jobs per
    replica, a 10 % tolerance, scale-up at most max(100 %, 4 pods) per 15 s and a 300 s
    scale-down stabilisation window (the highest recommendation of the window wins)."""

    bounds: _Bounds
    ratio: int
    name: str = "keda-hpa"
    interval: float = 30.0
    cooldown: float = 300.0
    stabilisation: float = 300.0
    tolerance: float = 0.1
    _last_active: float = -math.inf
    _recommendations: deque[tuple[float, int]] = field(default_factory=deque)

    def decide(self, now: float, seen: Observation, current: int) -> int:
        value = seen.ready + seen.running
        if value > 0:
            self._last_active = now
        if current == 0:
            return max(1, self.bounds.low) if value > 0 else current
        if value == 0 and self.bounds.low == 0 and now - self._last_active >= self.cooldown:
            self._recommendations.clear()
            return 0
        raw = math.ceil(value / self.ratio)
        if abs(value / (self.ratio * current) - 1) <= self.tolerance:
            raw = current
        raw = max(1, self.bounds.clip(raw))
        window = self._recommendations
        window.append((now, raw))
        while window and window[0][0] <= now - self.stabilisation:
            window.popleft()
        if raw > current:
            limit = current
            for _ in range(round(self.interval / 15.0)):  # the HPA syncs every 15 s
                limit = max(2 * limit, limit + 4)
            return min(raw, limit)
        return min(current, max(r for _, r in window))


@dataclass
class JudoscaleLike:
    """Judoscale on worker dynos: queue time (the oldest job's age) in 10 s buckets; up by one
    dyno (the default jump) when it is above the upscale threshold and the last upscale is at
    least 3 minutes old; down by one when every bucket for the downscale delay (10 min) was
    below the downscale threshold, then one more every delay. The thresholds are per-app
    dashboard settings without a published default: 5 s up, 1 s down here."""

    bounds: _Bounds
    name: str = "judoscale"
    interval: float = 10.0
    upscale_above: float = 5.0
    downscale_below: float = 1.0
    upscale_every: float = 180.0
    downscale_delay: float = 600.0
    _last_up: float = -math.inf
    _last_down: float = -math.inf
    _calm_since: float | None = None

    def decide(self, now: float, seen: Observation, current: int) -> int:
        age = seen.oldest_age or 0.0
        if age >= self.downscale_below:
            self._calm_since = None
        elif self._calm_since is None:
            self._calm_since = now
        if age > self.upscale_above and now - self._last_up >= self.upscale_every:
            wanted = self.bounds.clip(current + 1)
            if wanted > current:
                self._last_up = now
                return wanted
        calm = self._calm_since is not None and now - self._calm_since >= self.downscale_delay
        if calm and now - max(self._last_down, self._last_up) >= self.downscale_delay:
            wanted = self.bounds.clip(current - 1)
            if wanted < current:
                self._last_down = now
                return wanted
        return self.bounds.clip(current)


def reference(name: str, proc: ProcessSettings) -> Controller:
    bounds = _Bounds.of(proc)
    ratio = jobs_per_dyno(proc)
    if name == "always-max":
        return AlwaysMax(bounds)
    if name == "hirefire":
        return HireFireLike(bounds, ratio)
    if name == "keda-hpa":
        return KedaHpaLike(bounds, ratio)
    if name == "judoscale":
        return JudoscaleLike(bounds)
    raise KeyError(f"unknown reference policy {name!r}; choose from {', '.join(NAMES)}")
