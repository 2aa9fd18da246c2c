"""The ``[[process]]`` settings: what to read, which rules decide, and the limits around them."""

from __future__ import annotations

from datetime import datetime, time
from itertools import pairwise
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from dynomatic_daemon.adapters import catalog
from dynomatic_daemon.frozen import Frozen

PROCESS_TYPE_PATTERN = r"^[-\w]{1,128}$"
# Heroku's default dyno limit per app: a proportional rule without max_dynos counts this far.
DEFAULT_DYNO_CEILING = 100
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_ALIASES = {"weekdays": DAY_NAMES[:5], "weekends": DAY_NAMES[5:], "daily": DAY_NAMES}
# Upper bounds keep every number, and the ready-count cap made from them (at most about
# MAX_JOBS_PER_DYNO * MAX_DYNOS), far inside what SQL's bigint and the Platform API accept.
MAX_DYNOS = 10_000
MAX_JOBS = 100_000_000
MAX_JOBS_PER_DYNO = 1_000_000
MAX_WAIT_SECONDS = 366 * 86_400
Count = Annotated[int, Field(ge=0, le=MAX_DYNOS)]


class Rule(Frozen):
    """A step: with at least ``at_least`` ready jobs, run ``dynos`` dynos."""

    at_least: Annotated[int, Field(ge=0, le=MAX_JOBS)]
    dynos: Count


class LatencyRule(Frozen):
    """A step on queue age: once the oldest ready job has waited this long, run ``dynos``."""

    at_least_seconds: Annotated[float, Field(ge=0, le=MAX_WAIT_SECONDS)]
    dynos: Count


class Window(Frozen):
    """A weekly time window that overrides min_dynos / max_dynos while it is open."""

    days: tuple[str, ...] = Field(default=("daily",), validate_default=True)
    start: str
    end: str
    timezone: str = "UTC"
    min_dynos: Count | None = None
    max_dynos: Count | None = None

    @field_validator("days")
    @classmethod
    def _days(cls, days: tuple[str, ...]) -> tuple[str, ...]:
        bad = [d for d in days if d not in DAY_NAMES and d not in DAY_ALIASES]
        if bad or not days:
            valid = ", ".join((*DAY_NAMES, *DAY_ALIASES))
            raise ValueError(f"unknown day(s) {bad or days!r}; use {valid}")
        return tuple(
            sorted({x for d in days for x in DAY_ALIASES.get(d, (d,))}, key=DAY_NAMES.index)
        )

    @field_validator("start", "end")
    @classmethod
    def _clock_time(cls, value: str) -> str:
        try:
            time.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a time of day like 08:00") from None
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {name!r} (use an IANA name like Europe/Berlin)"
            ) from None
        return name

    @model_validator(mode="after")
    def _check(self) -> Window:
        if self.start == self.end:
            raise ValueError("end: must differ from start (a window cannot be empty)")
        if self.min_dynos is None and self.max_dynos is None:
            raise ValueError("min_dynos: a window must set min_dynos, max_dynos or both")
        low, high = self.min_dynos, self.max_dynos
        if low is not None and high is not None and low > high:
            raise ValueError(f"min_dynos: {low} is above max_dynos {high}")
        return self

    def is_open(self, now: datetime) -> bool:
        """Open at ``now``; a window whose end is before its start runs past midnight."""
        local = now.astimezone(ZoneInfo(self.timezone))
        day, clock = DAY_NAMES[local.weekday()], local.time()
        start, end = time.fromisoformat(self.start), time.fromisoformat(self.end)
        if start < end:
            return day in self.days and start <= clock < end
        yesterday = DAY_NAMES[(local.weekday() - 1) % 7]
        return (day in self.days and clock >= start) or (yesterday in self.days and clock < end)


class ProcessSettings(Frozen):
    type: Annotated[str, Field(pattern=PROCESS_TYPE_PATTERN)]
    adapter: str = catalog.AUTO
    queues: tuple[Annotated[str, Field(min_length=1, max_length=256)], ...] | None = None
    worker_names: tuple[Annotated[str, Field(pattern=PROCESS_TYPE_PATTERN)], ...] | None = None
    # what decides: the largest target of these wins
    rules: tuple[Rule, ...] = ()
    latency_rules: tuple[LatencyRule, ...] = ()
    jobs_per_dyno: Annotated[int, Field(ge=1, le=MAX_JOBS_PER_DYNO)] | None = None
    # limits around the rules
    min_dynos: Count = 0
    max_dynos: Count | None = None
    wake_from_zero: bool = True
    max_step_up: Annotated[int, Field(ge=1, le=MAX_DYNOS)] | None = None
    max_step_down: Annotated[int, Field(ge=1, le=MAX_DYNOS)] | None = None
    scale_down_delay_seconds: Annotated[float, Field(ge=0, le=86_400)] = 120.0
    worker_concurrency: Annotated[int, Field(ge=1, le=10_000)] = 1
    # how long a new dyno takes to start working: waits during a boot do not start more dynos
    dyno_boot_seconds: Annotated[float, Field(ge=0, le=3_600)] = 45.0
    # the last dyno stops only after no job was ready or running for this long
    idle_before_zero_seconds: Annotated[float, Field(ge=0, le=86_400)] = 600.0
    protect_running: bool = True
    schedules: tuple[Window, ...] = ()
    read_failures_before_fallback: Annotated[int, Field(ge=1, le=10_000)] = 3
    fallback_dynos: Count | None = None
    # guardrails (guardrails.py): after a person scales this type, leave it alone this long
    manual_override_seconds: Annotated[float, Field(ge=0, le=7 * 86_400)] = 0.0
    # after a new release of the app, hold scale-downs (not scale-ups) this long
    release_hold_seconds: Annotated[float, Field(ge=0, le=86_400)] = 180.0

    @field_validator("adapter")
    @classmethod
    def _known_adapter(cls, name: str) -> str:
        if name != catalog.AUTO and name not in catalog.NAMES:
            raise ValueError(f"unknown adapter {name!r}; {valid_adapters()}")
        return name

    @model_validator(mode="after")
    def _check(self) -> ProcessSettings:
        problems = _step_problems("rules", [(r.at_least, r.dynos) for r in self.rules], "at_least")
        problems += _step_problems(
            "latency_rules",
            [(r.at_least_seconds, r.dynos) for r in self.latency_rules],
            "at_least_seconds",
        )
        if not (self.rules or self.latency_rules or self.jobs_per_dyno):
            problems.append("rules: give rules, latency_rules or jobs_per_dyno (or several)")
        if self.max_dynos is not None and self.min_dynos > self.max_dynos:
            problems.append(f"min_dynos: {self.min_dynos} is above max_dynos {self.max_dynos}")
        if self.worker_names is not None and self.hobby_cap is not None:
            problems += self._hobby_problems(self.worker_names, self.hobby_cap)
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def _hobby_problems(self, names: tuple[str, ...], limit: int) -> list[str]:
        problems = []
        if not names:
            problems.append("worker_names: must name at least one process type")
        if len(set(names)) != len(names):
            problems.append(f"worker_names: duplicate names in {list(names)}")
        for key, values in (
            ("rules", [r.dynos for r in self.rules]),
            ("latency_rules", [r.dynos for r in self.latency_rules]),
        ):
            for i, dynos in enumerate(values):
                if dynos > limit:
                    problems.append(
                        f"{key}[{i}].dynos: {dynos} is above len(worker_names) = {limit} "
                        "(hobby mode runs one dyno per name)"
                    )
        for key in ("min_dynos", "max_dynos", "fallback_dynos"):
            value = getattr(self, key)
            if value is not None and value > limit:
                problems.append(f"{key}: {value} is above len(worker_names) = {limit}")
        return problems

    @property
    def formation_types(self) -> tuple[str, ...]:
        """The Heroku process types this entry drives."""
        return self.worker_names if self.worker_names is not None else (self.type,)

    @property
    def hobby(self) -> bool:
        return self.worker_names is not None

    @property
    def hobby_cap(self) -> int | None:
        """Hobby mode runs at most one dyno per worker name, whatever a window allows."""
        return None if self.worker_names is None else len(self.worker_names)

    @property
    def ceiling(self) -> int | None:
        """The most dynos this entry may ever run: max_dynos, and in hobby mode one per name."""
        return tighter(self.max_dynos, self.hobby_cap)

    @property
    def count_cap(self) -> int:
        """How far a ready count must go for the rules to tell every case apart."""
        caps = [r.at_least + 1 for r in self.rules]
        if self.jobs_per_dyno:
            most = max(
                [self.ceiling or DEFAULT_DYNO_CEILING]
                + [w.max_dynos for w in self.schedules if w.max_dynos is not None]
            )
            caps.append(self.jobs_per_dyno * most + 1)
        return max(caps, default=1)


def _step_problems(key: str, steps: list[tuple[float, int]], field: str) -> list[str]:
    """Thresholds must be distinct, and more work must never ask for fewer dynos."""
    problems, seen = [], set()
    for i, (value, _) in enumerate(steps):
        if value in seen:
            problems.append(
                f"{key}[{i}].{field}: duplicate value {value:g}; each step needs its own threshold"
            )
        seen.add(value)
    ordered = sorted(range(len(steps)), key=lambda i: steps[i][0])
    for prev, cur in pairwise(ordered):
        if steps[cur][1] < steps[prev][1] and steps[cur][0] != steps[prev][0]:
            problems.append(
                f"{key}[{cur}].dynos: {steps[cur][1]} at {field} = {steps[cur][0]:g} is fewer than "
                f"{steps[prev][1]} at {steps[prev][0]:g}; more work must not mean fewer dynos"
            )
    return problems


def tighter(high: int | None, other: int | None) -> int | None:
    """The smaller of two upper bounds, where None is no bound."""
    if high is None or other is None:
        return other if high is None else high
    return min(high, other)


def valid_adapters() -> str:
    return f"valid adapters are {', '.join(catalog.NAMES)} (or {catalog.AUTO!r})"
