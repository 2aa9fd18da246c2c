"""Run one trace through each configured process type and through the reference policies."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dynomatic_daemon.demand import active_bounds
from dynomatic_daemon.process_config import ProcessSettings
from dynomatic_daemon.simulate.config_source import SimulationConfig
from dynomatic_daemon.simulate.controllers import Decide, PolicyController
from dynomatic_daemon.simulate.engine import replay
from dynomatic_daemon.simulate.metrics import Metrics, summarise
from dynomatic_daemon.simulate.records import Controller, Platform, Timeline
from dynomatic_daemon.simulate.reference import reference
from dynomatic_daemon.simulate.trace import Trace


@dataclass(frozen=True)
class Options:
    seed: int = 1
    boot_seconds: float | None = None  # the model's boot time; None: each dyno_boot_seconds
    worker_slots: int | None = None  # slots per dyno; None: each worker_concurrency
    interval: float | None = None  # None: the config's [daemon] interval_seconds
    grace_seconds: float = 30.0
    hourly_usd: float | None = None


@dataclass(frozen=True)
class Entry:
    label: str  # what the table calls this row
    source: str  # the config file, or "reference"
    process_type: str
    jobs: int
    metrics: Metrics
    timeline: Timeline


def platform_for(proc: ProcessSettings, options: Options) -> Platform:
    boot = options.boot_seconds if options.boot_seconds is not None else proc.dyno_boot_seconds
    slots = options.worker_slots or proc.worker_concurrency
    return Platform(boot, slots, options.grace_seconds, options.seed)


def run_one(
    trace: Trace, proc: ProcessSettings, controller: Controller, options: Options, *, label: str
) -> tuple[Metrics, Timeline, int]:
    jobs = trace.select(proc.queues)
    initial = active_bounds(proc, trace.start).low
    run = replay(jobs, controller, platform_for(proc, options), initial=initial)
    return summarise(run, options.hourly_usd, name=label), run.timeline, len(jobs)


def policy_controller(
    proc: ProcessSettings, interval: float, trace: Trace, *, name: str, decide: Decide | None = None
) -> PolicyController:
    initial = active_bounds(proc, trace.start).low
    extra = {} if decide is None else {"decide": decide}
    return PolicyController(proc, interval, start=trace.start, initial=initial, name=name, **extra)


def compare(
    trace: Trace,
    configs: Sequence[tuple[str, SimulationConfig]],
    references: Sequence[str],
    options: Options,
) -> list[Entry]:
    entries: list[Entry] = []
    for source, cfg in configs:
        interval = options.interval or cfg.daemon.interval_seconds
        for proc in cfg.process:
            label = source if len(cfg.process) == 1 else f"{source} [{proc.type}]"
            ctrl = policy_controller(proc, interval, trace, name=label)
            metrics, timeline, jobs = run_one(trace, proc, ctrl, options, label=label)
            entries.append(Entry(label, source, proc.type, jobs, metrics, timeline))
    first = configs[0][1].process if configs else ()
    for name in references:
        for proc in first:
            label = name if len(first) == 1 else f"{name} [{proc.type}]"
            ref = reference(name, proc)
            metrics, timeline, jobs = run_one(trace, proc, ref, options, label=label)
            entries.append(Entry(label, "reference", proc.type, jobs, metrics, timeline))
    return entries
