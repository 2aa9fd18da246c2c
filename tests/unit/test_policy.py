"""The decision engine: a table of rule rows, and scenarios on a steppable clock.

The hypothesis properties are in test_policy_properties.py."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from policy_support import GEM_RULES, NOW, Sim, desired, formation, proc, stats

from dynomatic_daemon import policy
from dynomatic_daemon.models import ProcessStats

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
    # proportional: ceil((ready + running) / N): work in progress is demand too
    ({"jobs_per_dyno": 10}, stats(0), 0, 0),
    ({"jobs_per_dyno": 10}, stats(1), 0, 1),
    ({"jobs_per_dyno": 10}, stats(10), 0, 1),
    ({"jobs_per_dyno": 10}, stats(11), 0, 2),
    ({"jobs_per_dyno": 10}, stats(5, running=6), 1, 2),  # ready alone would say 1
    ({"jobs_per_dyno": 10}, stats(5, running=None), 1, 1),  # running unknowable: ready only
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
    ({"rules": [(0, 3)], "max_step_down": 3}, stats(0), 5, 3),  # a step within the limit
    # the busy level holds dynos, but never raises the count
    ({"rules": [(0, 0)], "worker_concurrency": 5}, stats(0, running=7), 2, 2),
    ({"rules": [(0, 0)]}, stats(0, running=20), 2, 2),
    ({"rules": [(0, 0)], "max_dynos": 3}, stats(0, running=20), 5, 3),  # max_dynos caps it
    # quiet tick: down only as far as leaves the running jobs at most half the slots
    ({"rules": [(0, 0)]}, stats(0, running=4), 10, 8),
    ({"rules": [(0, 1)], "worker_concurrency": 1}, stats(0, running=1), 3, 2),  # one job
    ({"rules": [(0, 0)], "worker_concurrency": 5}, stats(0, running=11), 10, 5),
    ({"rules": [(0, 0)], "worker_concurrency": 5}, stats(0, running=5), 10, 2),
    ({"rules": [(0, 0)], "worker_concurrency": 5}, stats(0, running=5), 2, 2),
    ({"rules": [(0, 0)], "max_dynos": 3}, stats(0, running=4), 10, 3),  # bounds beat it
    ({"rules": [(0, 0)], "protect_running": False}, stats(0, running=4), 10, 0),
    ({"rules": [(0, 0)]}, stats(0, running=None), 10, 0),  # running unknowable: no floor
    # the last dyno waits for idle_before_zero_seconds; several idle dynos stop together
    ({"rules": [(0, 0)]}, stats(0), 1, 1),
    ({"rules": [(0, 0)], "idle_before_zero_seconds": 0}, stats(0), 1, 0),
    ({"rules": [(0, 0)]}, stats(0), 3, 0),
    ({"rules": [(0, 0)], "protect_running": False}, stats(0, running=2), 1, 1),  # not idle long
    # missing data holds
    ({}, None, 7, 7),
    ({"rules": [(0, 0)], "fallback_dynos": 3, "read_failures_before_fallback": 1}, None, 1, 3),
    ({"rules": [(0, 0)], "fallback_dynos": 3, "read_failures_before_fallback": 1}, None, 5, 5),
    (
        {
            "rules": [(0, 0)],
            "fallback_dynos": 9,
            "max_dynos": 4,
            "read_failures_before_fallback": 1,
        },
        None,
        1,
        4,  # max_dynos caps the fallback
    ),
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


# --- schedules and hobby mode (rows for the mutants issue 11 found alive) ------------------

ALL_DAY = {"start": "00:00", "end": "23:59"}


@pytest.mark.parametrize(
    ("settings_", "observed", "current", "expected"),
    [
        # a window's 0 is a value, not "unset": max 0 stops everything, min 0 lifts a floor
        ({"schedules": [ALL_DAY | {"max_dynos": 0}]}, stats(31), 2, 0),
        (
            {"rules": [(0, 0)], "min_dynos": 2, "schedules": [ALL_DAY | {"min_dynos": 0}]},
            stats(0),
            2,
            0,
        ),
        # a window's max below the process min wins: low is clamped to high
        (
            {"rules": [(0, 0)], "min_dynos": 3, "schedules": [ALL_DAY | {"max_dynos": 1}]},
            stats(0),
            3,
            1,
        ),
    ],
)
def test_schedule_windows_override_the_bounds(
    settings_: dict[str, Any], observed: ProcessStats, current: int, expected: int
) -> None:
    assert desired(proc(**settings_), observed, current) == expected


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
    p = proc(worker_names=HOBBY, rules=[(0, want)], idle_before_zero_seconds=0)
    f = formation(**{n: int(n in before) for n in HOBBY})
    d, _ = policy.decide(p, stats(0), f, None, NOW)
    assert d.current == len(before)  # a type at quantity 0 is off
    assert d.desired == want
    result = {n: int(n in before) for n in HOBBY} | {u.type: u.quantity for u in d.updates}
    assert [n for n in HOBBY if result[n]] == after
    assert len(d.updates) == len(set(before) ^ set(after))


def test_hobby_mode_obeys_a_max_dynos_below_the_number_of_names() -> None:
    p = proc(worker_names=HOBBY, rules=[(0, 3)], max_dynos=2)
    d, _ = policy.decide(p, stats(0), formation(**dict.fromkeys(HOBBY, 0)), None, NOW)
    assert d.desired == 2


# --- scenarios on a steppable clock --------------------------------------------------------


def test_burst_then_drain_scales_up_at_once_and_down_after_the_delay() -> None:
    sim = Sim(proc(delay=120))
    assert sim.tick(stats(0)) == 1
    assert sim.tick(stats(35)) == 15  # up at once
    for _ in range(12):  # drained: 120 s of lower levels are needed before going down
        assert sim.tick(stats(0)) == 15
    assert sim.tick(stats(0)) == 1


def test_down_goes_only_to_the_highest_level_of_the_window() -> None:
    sim = Sim(proc(delay=60), current=1)
    sim.tick(stats(35))  # 15
    sim.tick(stats(12))  # target 5
    results = [sim.tick(stats(0)) for _ in range(6)]
    # the target of 5 seen 10 s after the peak keeps the count at 5 once the peak ages out
    assert results[-1] == 5
    assert "down only to the window's highest level 5" in sim.reasons[-1]
    assert sim.tick(stats(0)) == 1


def test_a_flapping_target_does_not_flap_the_formation() -> None:
    sim = Sim(proc(delay=120), current=1)
    for i in range(60):
        sim.tick(stats(35 if i % 2 == 0 else 0))
    assert sim.history[0] == 15
    assert sim.changes(1) == 1


def test_a_dipping_busy_level_does_not_saw_tooth() -> None:
    # Two dynos keep up (nothing waits) while the running count wanders 3..9: the busy level
    # dips to 1 now and then, but never for a whole delay, so the formation stays at 2.
    sim = Sim(proc(jobs_per_dyno=25, worker_concurrency=5, delay=120), current=2)
    for i in range(200):
        sim.tick(stats(0, running=(3, 9, 4, 8, 5, 6)[i % 6]))
    assert sim.history == [2] * 200


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


def test_the_hold_reason_counts_down_the_delay_from_the_last_level_that_held() -> None:
    sim = Sim(proc(rules=[(0, 0)], worker_concurrency=5, delay=120), current=5)
    sim.tick(stats(0, running=25), interval=30)  # t=0: level 5
    sim.tick(stats(0), interval=30)  # t=30: level 0; the 5 holds until 30 + 120
    sim.tick(stats(0), interval=30)  # t=60
    assert "scale-down delay 90s left" in sim.reasons[-1]


def test_the_last_dyno_stays_through_a_trickle_and_stops_after_the_idle_wait() -> None:
    sim = Sim(proc(rules=[(0, 0)], delay=120, idle_before_zero_seconds=600), current=1)
    assert [sim.tick(stats(0)) for _ in range(30)] == [1] * 30  # t=0..290
    assert sim.tick(stats(0, running=1)) == 1  # t=300: a trickle job runs; the wait restarts
    assert [sim.tick(stats(0)) for _ in range(60)] == [1] * 60  # t=310..900
    assert "holding the last dyno: idle 590s of idle_before_zero_seconds=600" in sim.reasons[-1]
    assert sim.tick(stats(0)) == 0  # t=910: 600 s without a ready or running job


def test_one_dyno_that_is_wanted_is_not_said_to_be_held() -> None:
    sim = Sim(proc(rules=[(0, 1)], idle_before_zero_seconds=600), current=1)
    assert sim.tick(stats(0)) == 1
    assert "holding the last dyno" not in sim.reasons[-1]  # the rule wants it; nothing is held


def test_several_idle_dynos_stop_together_after_the_delay() -> None:
    sim = Sim(proc(rules=[(0, 0)], delay=120, idle_before_zero_seconds=600), current=4)
    for _ in range(30):
        sim.tick(stats(0))
    assert sim.changes(4) == 1 and sim.history[-1] == 0  # 4 -> 0 once, not 4 -> 1 -> 0


def test_a_scale_down_waits_for_a_quiet_tick() -> None:
    sim = Sim(proc(rules=[(0, 0)], worker_concurrency=5, delay=60), current=4)
    for _ in range(7):  # the busy level is 1 all along, but 4 running would fill 1 dyno
        sim.tick(stats(0, running=4))
    assert sim.history[-1] == 2  # ceil(4 / 2.5): the running jobs fill half of 2 dynos
    assert "held at 2: 4 running would fill over half of 1 dyno(s)" in sim.reasons[-1]
    assert sim.tick(stats(0, running=2)) == 1


LATENCY = {"latency_rules": [{"at_least_seconds": 20, "dynos": 3}], "dyno_boot_seconds": 45}


def test_age_that_accrues_while_a_woken_dyno_boots_does_not_start_more() -> None:
    sim = Sim(proc(**LATENCY, delay=120), current=0)
    assert sim.tick(stats(1, age=5)) == 1  # t=0: woken
    # the job keeps waiting while the dyno boots; its age passes the 20 s rule, but all of
    # the age since t=0 fell in the boot
    assert [sim.tick(stats(1, age=5 + t)) for t in (10, 20, 30, 40)] == [1, 1, 1, 1]
    assert "40s of the 45s wait fell while dynos booted" in sim.reasons[-1]
    # still waiting 55 s after the wake-up: the dyno is up and not enough; 10 s of it count
    assert sim.tick(stats(1, age=60)) == 1
    assert sim.tick(stats(1, age=75)) == 3  # 75 - 45 = 30 s beyond the boot


def test_the_boot_allowance_never_lowers_the_count() -> None:
    sim = Sim(proc(**LATENCY, delay=30), current=1)
    assert sim.tick(stats(4, age=25)) == 3  # t=0: the rule fires; dynos 2 and 3 boot
    # the age goes on growing while they boot: the discounted age is below the rule, but the
    # age as read still holds the 3 dynos
    assert [sim.tick(stats(4, age=25 + t)) for t in range(10, 80, 10)] == [3] * 7


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


# --- the reason names what decided, and only that ------------------------------------------


@pytest.mark.parametrize(
    ("settings_", "observed", "current", "present", "absent"),
    [
        ({"max_step_up": 20}, stats(31), 1, "up 1 -> 15", "limited by"),
        ({"max_step_up": 2}, stats(31), 1, "limited by max_step_up=2", None),
        (
            {"rules": [(0, 0)], "max_step_down": 3, "idle_before_zero_seconds": 0},
            stats(0),
            3,
            "down 3 -> 0",
            "limited by",
        ),
        ({"jobs_per_dyno": 10}, stats(15), 5, "down 5 -> 2", "window's highest"),
        # the level is 2 and 5 running fill exactly half of 2 dynos: the quiet tick does not bite
        (
            {"jobs_per_dyno": 5, "worker_concurrency": 5},
            stats(5, running=5),
            4,
            "down 4 -> 2",
            "held at",
        ),
        ({}, stats(0), 1, "stay at 1", "->"),
        ({"rules": [(5, 2)]}, stats(0), 1, "target 0: ready 0 below every rule", None),
        # ready jobs below every rule, not woken: not idle, so the idle wait has not begun
        (
            {"rules": [(5, 2)], "wake_from_zero": False},
            stats(4),
            1,
            "idle 0s of idle_before_zero_seconds=600",
            None,
        ),
        (
            {"rules": [(0, 0)], "fallback_dynos": 3, "read_failures_before_fallback": 1},
            None,
            3,
            "stay at 3",
            "raises",
        ),
    ],
)
def test_the_reason_names_the_limits_that_bit_and_no_others(
    settings_: dict[str, Any],
    observed: ProcessStats | None,
    current: int,
    present: str,
    absent: str | None,
) -> None:
    d, _ = policy.decide(proc(**settings_), observed, formation(worker=current), None, NOW)
    assert present in d.reason
    assert absent is None or absent not in d.reason, d.reason


def test_a_wait_that_began_after_the_boot_counts_in_full() -> None:
    sim = Sim(proc(latency_rules=[{"at_least_seconds": 60, "dynos": 3}], delay=600), current=0)
    assert sim.tick(stats(1, age=1), interval=200) == 1  # t=0: woken; booted by t=45
    assert sim.tick(stats(1, age=60)) == 3  # t=200: waiting since 140, all of it after the boot


def test_the_rule_named_is_the_one_that_reached_the_count() -> None:
    # At t=10 the latency rule (3) and jobs_per_dyno (3) agree on the age as read; with the boot
    # allowance only jobs_per_dyno reaches 3. The count is the same either way: the latency
    # rule, which comes first, is named, as it would be without any boot.
    p = proc(latency_rules=[{"at_least_seconds": 5, "dynos": 3}], jobs_per_dyno=10, delay=600)
    sim = Sim(p, current=1)
    sim.tick(stats(15, age=2))  # t=0: 2 dynos from jobs_per_dyno; dyno 2 boots until 45
    d, _ = policy.decide(p, stats(25, age=12), sim.formation, sim.state, sim.clock.now())
    assert d.desired == 3 and d.rule == "latency_rules[at_least_seconds=5]"
