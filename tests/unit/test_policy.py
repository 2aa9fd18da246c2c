"""The step rules and hobby mode, as the original gem defined them, row by row."""

from __future__ import annotations

import pytest

from dynomatic_daemon import policy
from dynomatic_daemon.config import ProcessSettings
from dynomatic_daemon.models import (
    Formation,
    FormationEntry,
    FormationUpdate,
    ProcessStats,
    QueueStats,
)

GEM_RULES = [(0, 1), (10, 5), (20, 10), (30, 15)]


def proc(rules: list[tuple[int, int]], worker_names: list[str] | None = None) -> ProcessSettings:
    return ProcessSettings.model_validate(
        {
            "type": "worker" if worker_names is None else "urgent",
            "adapter": "delayed_job",
            "rules": [{"at_least": a, "dynos": d} for a, d in rules],
            "worker_names": worker_names,
        }
    )


def stats(ready: int, capped: bool = False) -> ProcessStats:
    return ProcessStats.combine([QueueStats("default", ready, capped, None, None, 0)])


def formation(**quantities: int) -> Formation:
    return Formation.of(FormationEntry(t, q) for t, q in quantities.items())


@pytest.mark.parametrize(
    ("ready", "expected"),
    [
        (0, 1),  # the gem's first rule doubles as a floor of one dyno
        (9, 1),
        (10, 5),  # a threshold is inclusive
        (19, 5),
        (20, 10),
        (25, 10),  # the example: 25 jobs -> 10 dynos
        (30, 15),
        (31, 15),  # above the last rule the last rule holds
        (10_000, 15),
    ],
)
def test_step_rules_pick_the_largest_threshold_not_above_ready(ready: int, expected: int) -> None:
    rules = proc(GEM_RULES).rules
    assert policy.step_target(rules, ready)[0] == expected


def test_rules_in_any_order_mean_the_same() -> None:
    shuffled = proc([(20, 10), (0, 1), (30, 15), (10, 5)])
    ordered = proc(GEM_RULES)
    for ready in range(0, 40):
        assert policy.step_target(shuffled.rules, ready) == policy.step_target(ordered.rules, ready)


def test_below_every_rule_means_zero_dynos() -> None:
    assert policy.step_target(proc([(5, 2)]).rules, 4) == (0, None)


def test_decide_scales_the_single_type_to_the_rule_target() -> None:
    decision = policy.decide(proc(GEM_RULES), stats(25), formation(worker=1))
    assert (decision.current, decision.desired) == (1, 10)
    assert decision.updates == (FormationUpdate("worker", 10),)
    assert decision.rule == "rules[at_least=20]"
    assert "25" in decision.reason


def test_decide_sends_nothing_when_the_formation_already_matches() -> None:
    decision = policy.decide(proc(GEM_RULES), stats(12), formation(worker=5))
    assert decision.desired == 5
    assert decision.updates == ()
    assert not decision.changes


def test_missing_data_holds_the_current_formation() -> None:
    decision = policy.decide(proc(GEM_RULES), None, formation(worker=7))
    assert (decision.current, decision.desired, decision.updates) == (7, 7, ())
    assert decision.reason.startswith("holding")


def test_capped_count_is_marked_in_the_reason() -> None:
    decision = policy.decide(proc(GEM_RULES), stats(31, capped=True), formation(worker=1))
    assert "31+" in decision.reason


HOBBY = ["urgent1", "urgent2", "urgent3"]
HOBBY_RULES = [(0, 0), (1, 1), (50, 3)]


@pytest.mark.parametrize(
    ("ready", "on"),
    [(0, []), (1, ["urgent1"]), (49, ["urgent1"]), (50, HOBBY), (500, HOBBY)],
)
def test_hobby_mode_switches_on_the_first_k_names(ready: int, on: list[str]) -> None:
    decision = policy.decide(
        proc(HOBBY_RULES, HOBBY), stats(ready), formation(urgent1=0, urgent2=0, urgent3=0)
    )
    wanted = {name: int(name in on) for name in HOBBY}
    assert decision.desired == len(on)
    assert {u.type: u.quantity for u in decision.updates} == {
        n: q for n, q in wanted.items() if q != 0
    }


def test_hobby_mode_counts_current_dynos_by_names_switched_on() -> None:
    decision = policy.decide(
        proc(HOBBY_RULES, HOBBY), stats(0), formation(urgent1=1, urgent2=1, urgent3=0)
    )
    assert decision.current == 2
    assert decision.desired == 0
    assert set(decision.updates) == {FormationUpdate("urgent1", 0), FormationUpdate("urgent2", 0)}
