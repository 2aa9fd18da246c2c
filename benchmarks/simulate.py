"""Scaling quality (issue 12): the built-in days replayed through the policy as it was (v0.1,
frozen in benchmarks/policy_v0_1.py), the current policy and the reference policies, with the
issue's config: jobs_per_dyno 25, max_dynos 10, worker_concurrency 5, every other key at its
default, dynos useful 45 s after they start. Prints and publishes the before/after table and the
targets (docs/benchmarks.md and docs/scaling.md), times the replays, redraws docs/img/scaling-*.svg.

    python -m benchmarks.simulate [--seeds 3] [--no-pictures]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks import policy_v0_1, scaling_pictures
from benchmarks.report import print_table, table, update_section
from dynomatic_daemon.process_config import ProcessSettings
from dynomatic_daemon.simulate.compare import Options, policy_controller, run_one
from dynomatic_daemon.simulate.metrics import Metrics
from dynomatic_daemon.simulate.records import Controller, Timeline
from dynomatic_daemon.simulate.reference import NAMES, reference
from dynomatic_daemon.simulate.scenarios import SCENARIOS, scenario

SCALING_DOC = Path(__file__).resolve().parents[1] / "docs" / "scaling.md"
CONFIG = {"jobs_per_dyno": 25, "max_dynos": 10, "worker_concurrency": 5}
LATENCY = {"latency_rules": [{"at_least_seconds": 30, "dynos": 3}]}
BEFORE, AFTER = "v0.1", "new"
INTERVAL, BOOT = 10.0, 45.0
Check = Callable[[Metrics, Metrics, dict[str, Metrics]], tuple[bool, str]]


def settings(**extra: object) -> ProcessSettings:
    return ProcessSettings.model_validate(
        {"type": "worker", "adapter": "delayed_job", "dyno_boot_seconds": BOOT, **CONFIG, **extra}
    )


@dataclass
class Day:
    metrics: dict[str, Metrics] = field(default_factory=dict)
    timelines: dict[str, Timeline] = field(default_factory=dict)
    cpu_seconds: float = 0.0  # the current policy's replay, on one core


def replay_day(name: str, seed: int, proc: ProcessSettings, refs: tuple[str, ...] = NAMES) -> Day:
    trace = scenario(name, seed)
    options = Options(seed=seed, boot_seconds=BOOT, hourly_usd=25 / 720)
    old = policy_controller(proc, INTERVAL, trace, name=BEFORE, decide=policy_v0_1.decide)
    controllers: list[tuple[str, Controller]] = [
        (BEFORE, old),
        (AFTER, policy_controller(proc, INTERVAL, trace, name=AFTER)),
        *((r, reference(r, proc)) for r in refs),
    ]
    day = Day()
    for label, ctrl in controllers:
        started = time.process_time()
        day.metrics[label], day.timelines[label], _ = run_one(
            trace, proc, ctrl, options, label=label
        )
        if label == AFTER:
            day.cpu_seconds = time.process_time() - started
    return day


def _writes(_b: Metrics, a: Metrics, _r: dict[str, Metrics]) -> tuple[bool, str]:
    return a.formation_writes <= 150, f"{a.formation_writes}"


def _cold(_b: Metrics, a: Metrics, _r: dict[str, Metrics]) -> tuple[bool, str]:
    return a.cold_starts <= 24, f"{a.cold_starts}"


def _cost(b: Metrics, a: Metrics, _r: dict[str, Metrics]) -> tuple[bool, str]:
    return a.dyno_hours <= 1.15 * b.dyno_hours, f"{a.dyno_hours / b.dyno_hours - 1:+.0%}"


def _wait(b: Metrics, a: Metrics, _r: dict[str, Metrics]) -> tuple[bool, str]:
    return a.wait_p95 <= 1.05 * b.wait_p95, f"{a.wait_p95:.1f} vs {b.wait_p95:.1f} s"


def _undominated(_b: Metrics, a: Metrics, all_: dict[str, Metrics]) -> tuple[bool, str]:
    mine = (a.dyno_hours, a.wait_p95)
    better = [
        r
        for r in NAMES
        if all_[r].dyno_hours <= mine[0]
        and all_[r].wait_p95 <= mine[1]
        and (all_[r].dyno_hours, all_[r].wait_p95) != mine
    ]
    return not better, f"by {', '.join(better)}" if better else "by none"


CHECKS: list[tuple[str, Check, tuple[str, ...]]] = [
    ("<= 150 formation writes a day", _writes, tuple(SCENARIOS)),
    ("<= 24 cold starts", _cold, tuple(SCENARIOS)),
    ("dyno-hours <= 1.15 x v0.1", _cost, tuple(SCENARIOS)),
    ("p95 wait <= 1.05 x v0.1", _wait, tuple(SCENARIOS)),
    ("not dominated by a reference", _undominated, tuple(SCENARIOS)),
]


def killed(b: Metrics, a: Metrics, _r: dict[str, Metrics]) -> tuple[bool, str]:
    return a.jobs_killed <= 30, f"{a.jobs_killed}, was {b.jobs_killed}"


def targets(days: dict[str, Day]) -> list[tuple[str, dict[str, tuple[bool, str]]]]:
    """Each target of the issue, per scenario it applies to: met, and the number behind it."""
    checks = [*CHECKS, ("<= 30 jobs killed by scale-downs", killed, ("heavy-tailed",))]
    return [
        (
            text,
            {
                n: check(days[n].metrics[BEFORE], days[n].metrics[AFTER], days[n].metrics)
                for n in where
            },
        )
        for text, check, where in checks
    ]


BEFORE_AFTER_HEAD = [
    "scenario", "policy", "dyno-h", "wait p50 s", "p95 s", "p99 s", "max backlog", "writes",
    "cold starts", "flaps", "busy downs", "killed", "lost h",
]  # fmt: skip


def before_after(days: dict[str, Day]) -> list[list[object]]:
    rows: list[list[object]] = []
    for name, day in days.items():
        for label in (BEFORE, AFTER):
            m = day.metrics[label]
            rows.append(
                [
                    name if label == BEFORE else "",
                    label,
                    f"{m.dyno_hours:.1f}",
                    f"{m.wait_p50:.1f}",
                    f"{m.wait_p95:.1f}",
                    f"{m.wait_p99:.1f}",
                    m.max_backlog,
                    m.formation_writes,
                    m.cold_starts,
                    m.flaps,
                    m.busy_scale_downs,
                    m.jobs_killed,
                    f"{m.work_lost_hours:.2f}",
                ]
            )
    return rows


def target_rows(results: list[tuple[str, dict[str, tuple[bool, str]]]]) -> list[list[str]]:
    def cell(found: tuple[bool, str] | None) -> str:
        return "-" if found is None else f"{'met' if found[0] else '**not met**'} ({found[1]})"

    return [[text, *(cell(per.get(n)) for n in SCENARIOS)] for text, per in results]


def tally(results: list[tuple[str, dict[str, tuple[bool, str]]]]) -> str:
    return ", ".join(
        f"{text} {sum(ok for ok, _ in per.values())}/{len(per)}" for text, per in results
    )


def versus(days: dict[str, Day]) -> list[list[str]]:
    labels = (BEFORE, AFTER, *NAMES)
    return [
        [n, *(f"{d.metrics[x].dyno_hours:.1f} h / {d.metrics[x].wait_p95:.0f} s" for x in labels)]
        for n, d in days.items()
    ]


def with_latency(latency: dict[str, Day]) -> list[list[str]]:
    def cell(m: Metrics) -> str:
        return f"{m.dyno_hours:.1f} h, {m.formation_writes} writes"

    return [[n, cell(d.metrics[BEFORE]), cell(d.metrics[AFTER])] for n, d in latency.items()]


def markdown(days: dict[str, Day], latency: dict[str, Day], others: list[tuple[int, str]]) -> str:
    cpu = {n: d.cpu_seconds for n, d in days.items()}
    return "\n\n".join(
        [
            "## Scaling quality\n\n`python -m benchmarks.simulate` (part of `make bench`): each "
            "built-in day (`dynomatic simulate --scenario NAME`, seed 1) replayed through the "
            "policy before issue 12 (`v0.1`, frozen in `benchmarks/policy_v0_1.py`) and the "
            "current one, with `jobs_per_dyno = 25, max_dynos = 10, worker_concurrency = 5`, every "
            "other key at its default, dynos useful 45 s after they start, polled every 10 s.",
            table(BEFORE_AFTER_HEAD, before_after(days)),
            "**The issue's targets** (seed 1):",
            table(["target", *SCENARIOS], target_rows(targets(days))),
            "**Other seeds** (targets met / scenarios): "
            + ("; ".join(f"seed {s}: {text}" for s, text in others) or "not run"),
            "**Against the reference policies** (dyno-hours / p95 wait, seed 1):",
            table(["scenario", BEFORE, AFTER, *NAMES], versus(days)),
            "**With a latency rule** `{ at_least_seconds = 30, dynos = 3 }` added:",
            table(["scenario", BEFORE, AFTER], with_latency(latency)),
            "**Replay speed**: the current policy over one 24 h day at a 10 s interval, CPU "
            "seconds on one core (target < 2 s): "
            + ", ".join(f"{n} {s:.2f}" for n, s in cpu.items())
            + f"; slowest {max(cpu.values()):.2f} s,"
            + f" median {statistics.median(cpu.values()):.2f} s.",
        ]
    )


def publish(text: str) -> None:
    update_section("simulate", text)
    block = f"<!-- simulate:start -->\n{text.strip()}\n<!-- simulate:end -->"
    doc = SCALING_DOC.read_text() if SCALING_DOC.exists() else "# Scaling\n"
    pattern = re.compile(r"<!-- simulate:start -->.*?<!-- simulate:end -->", re.S)
    doc = (
        pattern.sub(lambda _: block, doc) if pattern.search(doc) else f"{doc.rstrip()}\n\n{block}\n"
    )
    SCALING_DOC.write_text(doc)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.simulate", description=__doc__)
    parser.add_argument("--seeds", type=int, default=3, help="also check the targets on seeds 2..N")
    parser.add_argument("--no-pictures", action="store_true", help="leave docs/img alone")
    args = parser.parse_args(argv)
    proc = settings()
    days = {name: replay_day(name, 1, proc) for name in SCENARIOS}
    latency = {name: replay_day(name, 1, settings(**LATENCY), refs=()) for name in SCENARIOS}
    others = [
        (seed, tally(targets({n: replay_day(n, seed, proc) for n in SCENARIOS})))
        for seed in range(2, args.seeds + 1)
    ]
    print_table("Before/after, seed 1", BEFORE_AFTER_HEAD, before_after(days))
    print_table("Targets, seed 1", ["target", *SCENARIOS], target_rows(targets(days)))
    for seed, text in others:
        print(f"seed {seed}: {text}")
    print(
        f"\nreplay CPU s, current policy: { {n: round(d.cpu_seconds, 2) for n, d in days.items()} }"
    )
    publish(markdown(days, latency, others))
    if not args.no_pictures:
        scaling_pictures.draw(days, latency)
    print("docs/benchmarks.md, docs/scaling.md and docs/img/scaling-*.svg updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
