"""The reference policies do what their makers document (docs/scaling.md, "Reference policies")."""

from __future__ import annotations

from typing import Any

import pytest

from dynomatic_daemon.process_config import ProcessSettings
from dynomatic_daemon.simulate.records import Observation
from dynomatic_daemon.simulate.reference import NAMES, reference


def proc(**kw: Any) -> ProcessSettings:
    base = {"type": "worker", "adapter": "delayed_job", "jobs_per_dyno": 25, "max_dynos": 10}
    return ProcessSettings.model_validate(base | kw)


def seen(ready: int = 0, running: int = 0, age: float | None = None) -> Observation:
    return Observation(ready, age, running)


def test_always_max_runs_the_maximum() -> None:
    ctrl = reference("always-max", proc())
    assert ctrl.decide(0, seen(), 0) == 10


def test_hirefire_counts_running_jobs_and_never_decrements_while_jobs_remain() -> None:
    ctrl = reference("hirefire", proc(min_dynos=1))
    assert ctrl.interval == 60
    assert ctrl.decide(0, seen(ready=20, running=11), 1) == 2  # ceil(31 / 25)
    assert ctrl.decide(60, seen(ready=0, running=1), 5) == 5  # a job remains: no decrement
    assert ctrl.decide(120, seen(), 5) == 1  # empty: straight to the minimum
    assert ctrl.decide(180, seen(ready=500), 1) == 10  # within max_dynos


def test_keda_wakes_on_activity_and_goes_to_zero_after_its_cooldown() -> None:
    ctrl = reference("keda-hpa", proc())
    assert ctrl.interval == 30
    assert ctrl.decide(0, seen(ready=3), 0) == 1  # KEDA's 0 -> 1
    assert ctrl.decide(30, seen(), 1) == 1  # idle, but the cooldown has not passed
    assert ctrl.decide(270, seen(), 1) == 1
    assert ctrl.decide(300, seen(), 1) == 0  # 300 s since the last active poll


def test_hpa_scales_up_within_its_rate_limit_and_down_after_its_stabilisation() -> None:
    ctrl = reference("keda-hpa", proc(max_dynos=100))
    # two HPA periods of 15 s per poll, each max(+100 %, +4 pods): 1 -> 5 -> 10
    assert ctrl.decide(0, seen(ready=2000), 1) == 10
    assert ctrl.decide(30, seen(ready=2000), 10) == 40  # 10 -> 20 -> 40
    assert ctrl.decide(60, seen(ready=50), 40) == 40  # the window still holds 80
    assert ctrl.decide(300, seen(ready=50), 40) == 40
    assert ctrl.decide(330, seen(ready=50), 40) == 2  # the high recommendations aged out


def test_hpa_tolerance_ignores_a_ratio_within_ten_percent() -> None:
    ctrl = reference("keda-hpa", proc())
    assert ctrl.decide(0, seen(ready=1), 0) == 1
    assert ctrl.decide(30, seen(ready=105), 4) == 4  # 105 / (25 * 4) = 1.05: no change
    assert ctrl.decide(60, seen(ready=115), 4) == 5  # 1.15: ceil(115 / 25)


def test_judoscale_steps_one_dyno_with_its_upscale_frequency_and_downscale_delay() -> None:
    ctrl = reference("judoscale", proc())
    assert ctrl.interval == 10
    assert ctrl.decide(0, seen(ready=1, age=6), 0) == 1  # queue time above 5 s: +1
    assert ctrl.decide(10, seen(ready=300, age=60), 1) == 1  # no second upscale within 3 min
    assert ctrl.decide(180, seen(ready=300, age=200), 1) == 2
    for t in range(190, 780, 10):  # calm from 190 s on; the last upscale was at 180 s
        assert ctrl.decide(t, seen(), 2) == 2
    assert ctrl.decide(790, seen(), 2) == 1  # 10 minutes calm and since the last change
    assert ctrl.decide(800, seen(), 1) == 1  # the next downscale waits another delay
    assert ctrl.decide(1390, seen(), 1) == 0


def test_unknown_reference_names_the_valid_ones() -> None:
    with pytest.raises(KeyError, match="always-max, hirefire, keda-hpa, judoscale"):
        reference("autoscaler-9000", proc())
    assert NAMES == ("always-max", "hirefire", "keda-hpa", "judoscale")
