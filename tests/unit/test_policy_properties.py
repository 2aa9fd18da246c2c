"""Properties of the decision engine that must hold for any valid settings and any facts."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from policy_support import NOW, Sim, formation, proc, stats

from dynomatic_daemon import policy
from dynomatic_daemon.models import ProcessStats


def monotone(rules: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Valid step tables never ask for fewer dynos at a higher threshold."""
    thresholds = sorted(r[0] for r in rules)
    dynos = sorted(r[1] for r in rules)
    return list(zip(thresholds, dynos, strict=True))


def monotone_latency(rules: list[dict[str, int]]) -> list[dict[str, int]]:
    pairs = monotone([(r["at_least_seconds"], r["dynos"]) for r in rules])
    return [{"at_least_seconds": a, "dynos": d} for a, d in pairs]


def settings_strategy(*, steps: bool = True) -> st.SearchStrategy[dict[str, Any]]:
    step = st.none() | st.integers(1, 5) if steps else st.none()
    return st.fixed_dictionaries(
        {
            "rules": st.lists(
                st.tuples(st.integers(0, 60), st.integers(0, 20)),
                max_size=4,
                unique_by=lambda r: r[0],
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
            "max_step_up": step,
            "max_step_down": step,
            "worker_concurrency": st.integers(1, 4),
            "protect_running": st.booleans(),
            "wake_from_zero": st.booleans(),
            "delay": st.sampled_from([0, 30, 120]),
            "dyno_boot_seconds": st.sampled_from([0, 45, 300]),
            "idle_before_zero_seconds": st.sampled_from([0, 30, 600]),
        }
    ).filter(lambda s: s["rules"] or s["jobs_per_dyno"] or s["latency_rules"])


observations = st.builds(
    stats,
    ready=st.integers(0, 200),
    age=st.none() | st.floats(0, 1000),
    running=st.none() | st.integers(0, 30),
)


def busy(p: Any, observed: ProcessStats) -> int:
    if not p.protect_running or observed.running is None:
        return 0
    return -(-observed.running // p.worker_concurrency)


@given(settings_strategy(), observations, st.integers(0, 40))
@settings(max_examples=300, deadline=None)
def test_bounds_always_hold_and_the_busy_level_is_never_undercut(
    kw: dict[str, Any], observed: ProcessStats, current: int
) -> None:
    p = proc(**kw)
    d, _ = policy.decide(p, observed, formation(worker=current), None, NOW)
    high = p.max_dynos
    assert d.desired >= p.min_dynos
    assert high is None or d.desired <= high
    floor = busy(p, observed)
    assert d.desired >= min(current, floor, high if high is not None else floor)


@given(settings_strategy(), observations, st.integers(0, 40), st.data())
@settings(max_examples=150, deadline=None)
def test_the_busy_level_is_never_undercut_over_time(
    kw: dict[str, Any], first: ProcessStats, current: int, data: st.DataObject
) -> None:
    p = proc(**kw)
    sim = Sim(p, current=current)
    for _ in range(40):
        observed = data.draw(observations) if data.draw(st.booleans()) else first
        before = policy.current_dynos(p, sim.formation)
        after = sim.tick(observed, interval=data.draw(st.sampled_from([1, 10, 60])))
        high = p.max_dynos
        floor = busy(p, observed)
        assert after >= min(before, floor, high if high is not None else floor)
        assert p.min_dynos <= after and (high is None or after <= high)


@given(
    settings_strategy(),
    st.tuples(st.integers(0, 200), st.integers(0, 200)),
    st.tuples(st.none() | st.floats(0, 1000), st.floats(0, 1000)),
    st.tuples(st.integers(0, 30), st.integers(0, 30)),
    st.integers(0, 40),
)
@settings(max_examples=300, deadline=None)
def test_more_work_never_means_fewer_dynos(
    kw: dict[str, Any],
    counts: tuple[int, int],
    ages: tuple[float | None, float],
    running: tuple[int, int],
    current: int,
) -> None:
    p = proc(**kw)
    (age, extra_age), (r_low, r_high) = ages, sorted(running)
    low, high = sorted(counts)
    older = None if age is None else age + extra_age
    d1, _ = policy.decide(p, stats(low, age, r_low), formation(worker=current), None, NOW)
    d2, _ = policy.decide(p, stats(high, older, r_high), formation(worker=current), None, NOW)
    assert d2.desired >= d1.desired


@given(settings_strategy(), st.integers(0, 40), st.integers(0, 10))
@settings(max_examples=200, deadline=None)
def test_missing_data_never_lowers_the_count(
    kw: dict[str, Any], current: int, failures: int
) -> None:
    p = proc(**kw)
    state = policy.PolicyState(read_failures=failures)
    d, _ = policy.decide(p, None, formation(worker=current), state, NOW)
    assert d.desired >= current


@given(
    settings_strategy(steps=False),
    st.none() | observations,
    st.integers(0, 30),
    st.sampled_from([1, 10, 60]),
)
@settings(max_examples=300, deadline=None)
def test_constant_input_never_changes_the_formation_twice(
    kw: dict[str, Any], observed: ProcessStats | None, current: int, interval: int
) -> None:
    # Step limits are left out: max_step_up/down exist to spread one change over several. The
    # formation starts inside the bounds: one outside is brought inside at once, whatever else.
    p = proc(**kw)
    current = max(p.min_dynos, min(current, p.max_dynos if p.max_dynos is not None else current))
    sim = Sim(p, current=current)
    ticks = int(900 / interval) + 3  # past every delay, boot and idle wait the settings use
    for _ in range(ticks):
        sim.tick(observed, interval=interval)
    assert sim.changes(current) <= 1, sim.reasons
