"""The pure guardrails: what a pause, an override, a release hold and a budget cap do to the
policy's decision, and what they never do (raise it, or hold back the fail-safe)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from policy_support import NOW, formation, proc, stats

from dynomatic_daemon import budget, policy
from dynomatic_daemon.guard_config import BudgetLimit
from dynomatic_daemon.guardrails import NOTHING, InForce, guard


def decided(current: int, ready: int | None, **kw: object):  # type: ignore[no-untyped-def]
    p = proc(**kw)
    f = formation(worker=current)
    d, _ = policy.decide(p, None if ready is None else stats(ready), f, None, NOW)
    return p, f, d


def test_a_pause_sends_nothing_but_keeps_the_decision_for_the_log() -> None:
    p, f, d = decided(1, 25)
    out = guard(p, d, f, InForce(pause="by ops"), has_data=True, floor=0)
    assert out.hold == "paused" and out.decision.updates == ()
    assert (out.decision.current, out.decision.desired) == (1, 10)
    assert "paused: by ops" in out.decision.reason and "would go 1 -> 10" in out.decision.reason


def test_an_override_sends_nothing() -> None:
    p, f, d = decided(4, 0)
    out = guard(p, d, f, InForce(override="set to 4"), has_data=True, floor=0)
    assert out.hold == "override" and not out.decision.changes


def test_missing_data_fallback_goes_out_whatever_is_in_force() -> None:
    p = proc(fallback_dynos=3, read_failures_before_fallback=1)
    f = formation(worker=1)
    d, _ = policy.decide(p, None, f, None, NOW)
    assert d.desired == 3
    everything = InForce(pause="p", override="o", release_hold="r", cap=0, cap_reason="b")
    out = guard(p, d, f, everything, has_data=False, floor=0)
    assert out.hold is None and out.decision == d


def test_a_release_hold_stops_scale_downs_only() -> None:
    p, f, d = decided(10, 0)
    out = guard(p, d, f, InForce(release_hold="v7"), has_data=True, floor=0)
    assert out.decision.desired == 10 and not out.decision.changes
    assert "scale-down held: v7" in out.decision.reason
    p, f, d = decided(1, 25)
    assert guard(p, d, f, InForce(release_hold="v7"), has_data=True, floor=0).decision == d


def test_a_cap_lowers_the_count_but_never_below_the_floor() -> None:
    p, f, d = decided(1, 25)
    out = guard(p, d, f, InForce(cap=3, cap_reason="budget"), has_data=True, floor=0)
    assert out.decision.desired == 3 and out.decision.updates[0].quantity == 3
    assert "budget caps it at 3" in out.decision.reason
    out = guard(p, d, f, InForce(cap=0, cap_reason="budget"), has_data=True, floor=2)
    assert out.decision.desired == 2


@given(
    current=st.integers(0, 30),
    ready=st.integers(0, 40),
    cap=st.none() | st.integers(0, 30),
    hold=st.booleans(),
    max_dynos=st.integers(1, 20),
)
def test_no_guardrail_ever_raises_the_count_above_the_decision_or_max_dynos(
    current: int, ready: int, cap: int | None, hold: bool, max_dynos: int
) -> None:
    p, f, d = decided(current, ready, max_dynos=max_dynos)
    in_force = InForce(release_hold="r" if hold else None, cap=cap, cap_reason="b")
    out = guard(p, d, f, in_force, has_data=True, floor=0).decision
    assert out.desired <= max(d.desired, current)
    assert out.desired <= max(max_dynos, current)  # a formation above max was already there
    assert guard(p, d, f, NOTHING, has_data=True, floor=0).decision == d


def test_the_day_cap_spreads_what_is_left_over_the_hours_left() -> None:
    noon = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    limit = BudgetLimit(max_dyno_hours_per_day=48)
    # 12 h left, 12 dyno-hours used: 36 left, 3 dynos an hour
    found = budget.cap(limit, budget.Usage(12, 0, 0.05), noon, "budget")
    assert found is not None and found.dynos == 3 and "12.0 used" in found.reason
    # the app-wide limit counts what the other types run now
    found = budget.cap(limit, budget.Usage(12, 0, 0.05, others_dynos=2), noon, "budget")
    assert found is not None and found.dynos == 1
    assert budget.cap(limit, budget.Usage(100, 0, 0.05), noon, "budget").dynos == 0  # type: ignore[union-attr]


def test_the_month_cap_uses_the_price() -> None:
    day_one = datetime(2026, 4, 1, 0, 0, tzinfo=UTC)  # 720 h left in April
    limit = BudgetLimit(max_monthly_usd=72)
    found = budget.cap(limit, budget.Usage(0, 0, 0.02), day_one, "budget")
    assert found is not None and found.dynos == 5  # $0.1/h affords 5 dynos at $0.02
    assert budget.cap(limit, budget.Usage(0, 0, None), day_one, "budget") is None  # no price


@pytest.mark.parametrize(
    ("now", "hours"),
    [
        (datetime(2026, 3, 2, 23, 0, tzinfo=UTC), 1.0),
        (datetime(2026, 12, 31, 0, 0, tzinfo=UTC), 24.0),
    ],
)
def test_hours_left(now: datetime, hours: float) -> None:
    assert budget.hours_left_in_day(now) == pytest.approx(hours)
    if now.month == 12:
        assert budget.hours_left_in_month(now) == pytest.approx(24.0)
