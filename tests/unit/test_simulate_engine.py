"""The replay model against cases worked out by hand, and its determinism."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from dynomatic_daemon.process_config import ProcessSettings
from dynomatic_daemon.simulate.controllers import PolicyController
from dynomatic_daemon.simulate.engine import replay
from dynomatic_daemon.simulate.metrics import percentile, summarise
from dynomatic_daemon.simulate.records import Observation, Platform
from dynomatic_daemon.simulate.scenarios import SCENARIOS, scenario
from dynomatic_daemon.simulate.trace import DEFAULT_START, Trace

ONE_SLOT = Platform(boot_seconds=45, worker_slots=1, grace_seconds=30, seed=0)


@dataclass
class Script:
    """A controller that wants what a timetable says and remembers what it saw."""

    plan: Sequence[tuple[float, int]]  # (from time, quantity), in order
    name: str = "script"
    interval: float = 10.0
    seen: list[tuple[float, Observation, int]] = field(default_factory=list)

    def decide(self, now: float, seen: Observation, current: int) -> int:
        self.seen.append((now, seen, current))
        return [q for t, q in self.plan if t <= now][-1]


def test_a_cold_dyno_boots_before_it_works() -> None:
    # t=0: 0 -> 1 dyno, booting until 45. Jobs at 5 s (20 s long) and 6 s (10 s long) wait;
    # the first runs 45-65 (wait 40), the second 65-75 (wait 59).
    trace = Trace.of([(5.0, 20.0, "default"), (6.0, 10.0, "default")], duration=100)
    script = Script([(0, 1)])
    run = replay(trace, script, ONE_SLOT)
    assert run.waits == [40.0, 59.0]
    assert run.dyno_seconds == 100.0  # billed from the start, booting included
    assert (run.writes, run.wakes, run.cold_starts, run.max_backlog) == (1, 1, 0, 2)
    at_40 = next(s for t, s, _ in script.seen if t == 40)
    assert at_40 == Observation(ready=2, oldest_age=35.0, running=0)
    at_50 = next(s for t, s, _ in script.seen if t == 50)
    assert at_50 == Observation(ready=1, oldest_age=44.0, running=1)


def test_scale_down_stops_the_highest_dyno_kills_after_the_grace_and_requeues() -> None:
    # Two warm one-slot dynos, two 100 s jobs at t=0, one on each. At t=20 the formation goes
    # to 1: dyno 2 gets SIGTERM, its job is killed at 50 after 50 s of work and queued again;
    # it starts when dyno 1 frees its slot at 100 (wait 100) and ends at 200.
    trace = Trace.of([(0.0, 100.0, "default"), (0.0, 100.0, "default")], duration=300)
    script = Script([(0, 2), (20, 1)])
    run = replay(trace, script, ONE_SLOT, initial=2)
    at_60 = next(s for t, s, _ in script.seen if t == 60)
    assert at_60 == Observation(ready=1, oldest_age=10.0, running=1)  # ready again since 50
    assert sorted(run.waits) == [0.0, 100.0]
    assert (run.killed, run.work_lost_seconds, run.busy_scale_downs) == (1, 50.0, 1)
    assert run.dyno_seconds == 300.0 + 50.0  # dyno 2 is billed until it is killed
    assert run.writes == 1


def test_a_job_that_ends_within_the_grace_is_not_killed() -> None:
    trace = Trace.of([(0.0, 40.0, "default"), (0.0, 40.0, "default")], duration=100)
    run = replay(trace, Script([(0, 2), (20, 1)]), ONE_SLOT, initial=2)
    assert run.killed == 0 and run.busy_scale_downs == 1
    assert run.dyno_seconds == 100.0 + 40.0  # the stopping dyno exits when its job is done


def test_an_idle_or_booting_dyno_stops_at_once_and_a_quick_return_is_a_cold_start() -> None:
    # 1 dyno from 0 (booting), 0 at 20 (never worked), 1 again at 70: 50 s at zero.
    trace = Trace.of([], duration=100)
    run = replay(trace, Script([(0, 1), (20, 0), (70, 1)]), ONE_SLOT)
    assert run.dyno_seconds == 20.0 + 30.0
    assert (run.writes, run.wakes, run.cold_starts, run.flaps) == (3, 2, 1, 1)


def test_unstarted_jobs_wait_until_the_end_and_are_counted() -> None:
    trace = Trace.of([(10.0, 5.0, "default")], duration=60)
    run = replay(trace, Script([(0, 0)]), ONE_SLOT)
    assert run.waits == [50.0] and run.unfinished == 1


def test_percentiles_interpolate_between_neighbours() -> None:
    assert percentile([0.0, 10.0], 50) == 5.0
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 95) == pytest.approx(4.8)
    assert percentile([], 95) == 0.0


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenarios_are_the_same_for_the_same_seed_and_differ_across_seeds(name: str) -> None:
    assert scenario(name, 3) == scenario(name, 3)
    assert scenario(name, 3).arrivals != scenario(name, 4).arrivals
    day = scenario(name, 3)
    assert day.duration == 86_400 and day.arrivals[0] >= 0 and day.arrivals[-1] < 86_400


def test_a_replay_is_deterministic_for_a_fixed_seed() -> None:
    proc = ProcessSettings(
        type="worker", adapter="delayed_job", jobs_per_dyno=25, max_dynos=10, worker_concurrency=5
    )
    trace = scenario("heavy-tailed", 2)

    def once(seed: int) -> object:
        ctrl = PolicyController(proc, 10, start=DEFAULT_START)
        platform = Platform(boot_seconds=45, worker_slots=5, seed=seed)
        return summarise(replay(trace, ctrl, platform), 25 / 720)

    assert once(7) == once(7)
    assert once(7) != once(8)  # the seed does decide which dyno takes a job
