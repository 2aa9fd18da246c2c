"""The decision engine: a table of rule rows, properties, and scenarios on a steppable clock."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dynomatic_daemon import policy
from dynomatic_daemon.clock import SteppableClock
from dynomatic_daemon.models import Formation, FormationEntry, ProcessStats, QueueStats
from dynomatic_daemon.process_config import ProcessSettings

GEM_RULES = [(0, 1), (10, 5), (20, 10), (30, 15)]
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # a Monday


def proc(**kw: Any) -> ProcessSettings:
    rules = kw.pop(
        "rules", GEM_RULES if "latency_rules" not in kw and "jobs_per_dyno" not in kw else []
    )
    return ProcessSettings.model_validate(
        {
            "type": "worker" if "worker_names" not in kw else "urgent",
            "adapter": "delayed_job",
            "rules": [{"at_least": a, "dynos": d} for a, d in rules],
            "scale_down_delay_seconds": kw.pop("delay", 0),
            **kw,
        }
    )


def stats(ready: int = 0, age: float | None = None, running: int | None = 0) -> ProcessStats:
    return ProcessStats.combine([QueueStats("default", ready, False, None, age, running)])


def formation(**quantities: int) -> Formation:
    return Formation.of(FormationEntry(t, q) for t, q in quantities.items())


def desired(p: ProcessSettings, s: ProcessStats | None, current: int) -> int:
    decision, _ = policy.decide(p, s, formation(worker=current), None, NOW)
    return decision.desired


# Each row: settings, observed facts, dynos running now -> dynos wanted.
ROWS = [
    # the original gem's README semantics (rules 0->1, 10->5, 20->10, 30->15)
    ({}, stats(0), 1, 1),
    ({}, stats(9), 1, 1),
    ({}, stats(10), 1, 5),
    ({}, stats(25), 1, 10),
    ({}, stats(31), 1, 15),
    ({}, stats(10_000), 1, 15),
    ({"rules": [(20, 10), (0, 1), (30, 15), (10, 5)]}, stats(25), 1, 10),  # any order
    ({"rules": [(5, 2)], "wake_from_zero": False}, stats(4), 0, 0),  # below every rule
    ({"rules": [(5, 2)]}, stats(4), 0, 1),  # ... but ready jobs wake one dyno
    # latency rules step on the oldest job's age
    ({"latency_rules": [{"at_least_seconds": 60, "dynos": 3}]}, stats(1, age=59), 0, 1),  # woken
    ({"latency_rules": [{"at_least_seconds": 60, "dynos": 3}]}, stats(1, age=60), 0, 3),
    (
        {
            "latency_rules": [
                {"at_least_seconds": 60, "dynos": 3},
                {"at_least_seconds": 300, "dynos": 8},
            ]
        },
        stats(2, age=301),
        0,
        8,
    ),
    # proportional: ceil(ready / N)
    ({"jobs_per_dyno": 10}, stats(0), 0, 0),
    ({"jobs_per_dyno": 10}, stats(1), 0, 1),
    ({"jobs_per_dyno": 10}, stats(10), 0, 1),
    ({"jobs_per_dyno": 10}, stats(11), 0, 2),
    # combinations: the largest target wins
    (
        {"jobs_per_dyno": 10, "latency_rules": [{"at_least_seconds": 30, "dynos": 6}]},
        stats(25, age=31),
        0,
        6,
    ),
    (
        {"jobs_per_dyno": 2, "latency_rules": [{"at_least_seconds": 30, "dynos": 6}]},
        stats(25, age=31),
        0,
        13,
    ),
    ({"rules": GEM_RULES, "jobs_per_dyno": 1}, stats(12), 1, 12),
    # bounds
    ({"max_dynos": 7}, stats(31), 1, 7),
    ({"min_dynos": 3}, stats(0), 1, 3),
    ({"rules": [(0, 0)], "min_dynos": 2, "max_dynos": 4, "delay": 300}, stats(0), 9, 4),  # max
    ({"rules": [(0, 0)], "min_dynos": 2, "max_dynos": 4}, stats(0), 9, 2),  # beats the delay
    # wake from zero
    ({"rules": [(0, 0), (50, 2)]}, stats(1), 0, 1),
    ({"rules": [(0, 0), (50, 2)], "wake_from_zero": False}, stats(1), 0, 0),
    ({"rules": [(0, 0), (50, 2)], "max_dynos": 0}, stats(1), 0, 0),  # a max of 0 is obeyed
    # steps
    ({"max_step_up": 2}, stats(31), 1, 3),
    ({"rules": [(0, 0)], "max_step_down": 3}, stats(0), 10, 7),
    # busy protection
    ({"rules": [(0, 0)]}, stats(0, running=4), 10, 4),
    ({"rules": [(0, 0)], "worker_concurrency": 5}, stats(0, running=11), 10, 3),
    ({"rules": [(0, 0)], "protect_running": False}, stats(0, running=4), 10, 0),
    ({"rules": [(0, 0)]}, stats(0, running=None), 10, 0),  # running unknowable: no floor
    # missing data holds
    ({}, None, 7, 7),
    ({"rules": [(0, 0)], "fallback_dynos": 3, "read_failures_before_fallback": 1}, None, 1, 3),
    ({"rules": [(0, 0)], "fallback_dynos": 3, "read_failures_before_fallback": 1}, None, 5, 5),
]


@pytest.mark.parametrize(("settings_", "observed", "current", "expected"), ROWS)
def test_rule_table(
    settings_: dict[str, Any], observed: ProcessStats | None, current: int, expected: int
) -> None:
    assert desired(proc(**settings_), observed, current) == expected


def test_the_decision_says_which_rule_and_which_limit_won() -> None:
    d, _ = policy.decide(proc(max_dynos=7), stats(31), formation(worker=1), None, NOW)
    assert d.rule == "rules[at_least=30]"
    assert "target 15 from rules[at_least=30]" in d.reason
    assert "clipped by max_dynos=7" in d.reason
    assert d.reason.endswith("up 1 -> 7")


def test_fallback_needs_consecutive_failures() -> None:
    p = proc(rules=[(0, 0)], fallback_dynos=3, read_failures_before_fallback=3)
    state = None
    for expected in (1, 1, 3):
        d, state = policy.decide(p, None, formation(worker=1), state, NOW)
        assert d.desired == expected
    d, state = policy.decide(p, stats(0), formation(worker=3), state, NOW)
    assert state.read_failures == 0  # a good read resets the count


HOBBY = ["urgent1", "urgent2", "urgent3"]


@pytest.mark.parametrize(
    ("before", "want", "after"),
    [
        ({}, 1, ["urgent1"]),
        ({}, 3, HOBBY),
        (["urgent2"], 1, ["urgent2"]),  # keep the one already on
        (["urgent2"], 2, ["urgent1", "urgent2"]),  # start the earliest that is off
        (["urgent1", "urgent3"], 1, ["urgent1"]),  # stop from the end of the list
        (["urgent1", "urgent3"], 0, []),
    ],
)
def test_hobby_mode_changes_as_few_types_as_possible(
    before: list[str], want: int, after: list[str]
) -> None:
    p = proc(worker_names=HOBBY, rules=[(0, want)])
    f = formation(**{n: int(n in before) for n in HOBBY})
    d, _ = policy.decide(p, stats(0), f, None, NOW)
    assert d.desired == want
    result = {n: int(n in before) for n in HOBBY} | {u.type: u.quantity for u in d.updates}
    assert [n for n in HOBBY if result[n]] == after
    assert len(d.updates) == len(set(before) ^ set(after))


# --- properties ---------------------------------------------------------------------------


def monotone(rules: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Valid step tables never ask for fewer dynos at a higher threshold."""
    thresholds = sorted(r[0] for r in rules)
    dynos = sorted(r[1] for r in rules)
    return list(zip(thresholds, dynos, strict=True))


def monotone_latency(rules: list[dict[str, int]]) -> list[dict[str, int]]:
    pairs = monotone([(r["at_least_seconds"], r["dynos"]) for r in rules])
    return [{"at_least_seconds": a, "dynos": d} for a, d in pairs]


settings_strategy = st.fixed_dictionaries(
    {
        "rules": st.lists(
            st.tuples(st.integers(0, 60), st.integers(0, 20)), max_size=4, unique_by=lambda r: r[0]
        ).map(monotone),
        "jobs_per_dyno": st.none() | st.integers(1, 20),
        "latency_rules": st.lists(
            st.fixed_dictionaries(
                {"at_least_seconds": st.integers(0, 600), "dynos": st.integers(0, 20)}
            ),
            max_size=3,
            unique_by=lambda r: r["at_least_seconds"],
        ).map(monotone_latency),
        "min_dynos": st.integers(0, 5),
        "max_dynos": st.none() | st.integers(5, 25),
        "max_step_up": st.none() | st.integers(1, 5),
        "max_step_down": st.none() | st.integers(1, 5),
        "worker_concurrency": st.integers(1, 4),
        "delay": st.sampled_from([0, 30, 120]),
    }
).filter(lambda s: s["rules"] or s["jobs_per_dyno"] or s["latency_rules"])


@given(
    settings_strategy,
    st.integers(0, 200),
    st.none() | st.floats(0, 1000),
    st.integers(0, 30),
    st.integers(0, 40),
)
@settings(max_examples=300, deadline=None)
def test_desired_stays_within_bounds_and_above_the_busy_floor(
    kw: dict[str, Any], ready: int, age: float | None, running: int, current: int
) -> None:
    p = proc(**kw)
    d, _ = policy.decide(p, stats(ready, age, running), formation(worker=current), None, NOW)
    high = p.max_dynos
    assert d.desired >= p.min_dynos
    assert high is None or d.desired <= high
    floor = -(-running // p.worker_concurrency)
    assert d.desired >= min(current, floor, high if high is not None else floor)


@given(
    settings_strategy,
    st.tuples(st.integers(0, 200), st.integers(0, 200)),
    st.tuples(st.none() | st.floats(0, 1000), st.floats(0, 1000)),
    st.integers(0, 40),
)
@settings(max_examples=300, deadline=None)
def test_more_work_never_means_fewer_dynos(
    kw: dict[str, Any], counts: tuple[int, int], ages: tuple[float | None, float], current: int
) -> None:
    p = proc(**kw)
    (a, b), (age, extra_age) = counts, ages
    low, high = sorted((a, b))
    older = None if age is None else age + extra_age
    d1, _ = policy.decide(p, stats(low, age), formation(worker=current), None, NOW)
    d2, _ = policy.decide(p, stats(high, older), formation(worker=current), None, NOW)
    assert d2.desired >= d1.desired


@given(settings_strategy, st.integers(0, 40), st.integers(0, 10))
@settings(max_examples=200, deadline=None)
def test_missing_data_never_lowers_the_count(
    kw: dict[str, Any], current: int, failures: int
) -> None:
    p = proc(**kw)
    state = policy.PolicyState(read_failures=failures)
    d, _ = policy.decide(p, None, formation(worker=current), state, NOW)
    assert d.desired >= current


# --- scenarios on a steppable clock --------------------------------------------------------


class Sim:
    """One process type ticking every ``interval`` seconds, with the formation it changes."""

    def __init__(self, p: ProcessSettings, current: int = 1, start: datetime = NOW) -> None:
        self.p, self.clock = p, SteppableClock(start)
        self.formation = (
            formation(**dict.fromkeys(p.formation_types, 0))
            if p.hobby
            else formation(worker=current)
        )
        self.state: policy.PolicyState | None = None
        self.history: list[int] = []

    def tick(self, observed: ProcessStats | None, interval: float = 10) -> int:
        d, self.state = policy.decide(
            self.p, observed, self.formation, self.state, self.clock.now()
        )
        self.formation = self.formation.with_updates(d.updates)
        self.history.append(d.desired)
        self.clock.advance(interval)
        return d.desired

    def restart(self) -> None:
        self.state = None


def test_burst_then_drain_scales_up_at_once_and_down_after_the_delay() -> None:
    sim = Sim(proc(delay=120))
    assert sim.tick(stats(0)) == 1
    assert sim.tick(stats(35)) == 15  # up at once
    for _ in range(12):  # drained: 120 s of lower targets are needed before going down
        assert sim.tick(stats(0)) == 15
    assert sim.tick(stats(0)) == 1


def test_down_goes_only_to_the_highest_target_of_the_window() -> None:
    sim = Sim(proc(delay=60), current=1)
    sim.tick(stats(35))  # 15
    sim.tick(stats(12))  # target 5
    readings = [0, 0, 0, 0, 0, 0]
    results = [sim.tick(stats(r)) for r in readings]
    # the target of 5 seen 10 s after the peak keeps the floor at 5 once the peak ages out
    assert results[-1] == 5
    assert sim.tick(stats(0)) == 1


def test_a_flapping_target_does_not_flap_the_formation() -> None:
    sim = Sim(proc(delay=120), current=1)
    for i in range(60):
        sim.tick(stats(35 if i % 2 == 0 else 0))
    changes = sum(1 for a, b in pairwise(sim.history) if a != b)
    assert sim.history[0] == 15
    assert changes == 0


def test_a_restart_mid_drain_holds_until_a_full_delay_has_passed() -> None:
    sim = Sim(proc(delay=120), current=1)
    sim.tick(stats(35))
    for _ in range(6):
        sim.tick(stats(0))
    sim.restart()  # the new process sees 15 running and knows nothing else
    held = [sim.tick(stats(0)) for _ in range(12)]
    assert held == [15] * 12
    assert sim.tick(stats(0)) == 1


def test_read_failures_then_recovery() -> None:
    sim = Sim(
        proc(rules=[(0, 0), (1, 2)], fallback_dynos=4, read_failures_before_fallback=3, delay=0),
        current=2,
    )
    assert [sim.tick(None) for _ in range(2)] == [2, 2]  # hold, never down
    assert sim.tick(None) == 4  # the third failure in a row brings the fallback, up only
    assert sim.tick(None) == 4
    assert sim.tick(stats(5)) == 2  # data again: the rules decide
    assert sim.state is not None and sim.state.read_failures == 0


def test_schedule_window_opens_and_closes_across_a_dst_change() -> None:
    window = {
        "days": ["weekdays"],
        "start": "08:00",
        "end": "18:00",
        "timezone": "Europe/Berlin",
        "min_dynos": 2,
    }
    p = proc(rules=[(0, 0)], schedules=[window], delay=0)
    # Berlin moved from CET (UTC+1) to CEST (UTC+2) on Sunday 2026-03-29.
    before = datetime(2026, 3, 27, 6, 59, tzinfo=UTC)  # Friday 07:59 CET
    after = datetime(2026, 3, 30, 5, 59, tzinfo=UTC)  # Monday 07:59 CEST
    for monday_or_friday in (before, after):
        sim = Sim(p, current=0, start=monday_or_friday)
        assert sim.tick(stats(0), interval=60) == 0  # 07:59 local: closed
        assert sim.tick(stats(0), interval=60) == 2  # 08:00 local: open, min 2
    closing = datetime(2026, 3, 30, 15, 59, tzinfo=UTC)  # Monday 17:59 CEST
    sim = Sim(p, current=2, start=closing)
    assert sim.tick(stats(0), interval=60) == 2
    assert sim.tick(stats(0), interval=60) == 0  # 18:00 local: closed again
    saturday = datetime(2026, 3, 28, 10, 0, tzinfo=UTC)
    assert Sim(p, current=0, start=saturday).tick(stats(0)) == 0  # weekdays only


def test_overnight_window_and_first_match_wins() -> None:
    night = {"start": "22:00", "end": "06:00", "max_dynos": 1}
    day = {"start": "00:00", "end": "23:59", "max_dynos": 9}
    p = proc(schedules=[night, day], delay=0)
    assert Sim(p, start=datetime(2026, 3, 2, 23, 0, tzinfo=UTC)).tick(stats(31)) == 1
    assert Sim(p, start=datetime(2026, 3, 3, 5, 59, tzinfo=UTC)).tick(stats(31)) == 1
    assert Sim(p, start=datetime(2026, 3, 3, 6, 0, tzinfo=UTC)).tick(stats(31)) == 9


def test_the_hold_reason_counts_down_the_delay() -> None:
    p = proc(delay=120)
    d, state = policy.decide(p, stats(0), formation(worker=5), None, NOW)
    assert "scale-down delay 120s left" in d.reason
    d, _ = policy.decide(p, stats(0), formation(worker=5), state, NOW.replace(second=45))
    assert "scale-down delay 75s left" in d.reason
