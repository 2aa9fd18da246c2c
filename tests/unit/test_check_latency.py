"""``dynomatic check`` warns about latency rules shorter than interval + dyno boot."""

from __future__ import annotations

from typing import Any

from dynomatic_daemon.check import latency_warnings
from dynomatic_daemon.config import Settings


def settings(interval: float, *processes: dict[str, Any]) -> Settings:
    return Settings.model_validate(
        {
            "heroku": {"app": "my-app", "api_key": "k"},
            "database": {"url": "postgresql://localhost/x"},
            "daemon": {"interval_seconds": interval},
            "process": [{"adapter": "delayed_job", **p} for p in processes],
        }
    )


def rule(seconds: float) -> dict[str, Any]:
    return {"at_least_seconds": seconds, "dynos": 2}


def test_rules_shorter_than_interval_plus_boot_are_named() -> None:
    found = latency_warnings(
        settings(
            10,
            {"type": "worker", "latency_rules": [rule(30), rule(54.5), rule(55), rule(300)]},
            {"type": "fast", "latency_rules": [rule(15)], "dyno_boot_seconds": 5},
            {"type": "plain", "jobs_per_dyno": 10},
        )
    )
    assert found == [
        (
            "process worker",
            "latency_rules at 30s, 54.5s are shorter than interval_seconds + dyno_boot_seconds"
            " = 55s; a job that wakes a dyno waits that long anyway (see docs/scaling.md)",
        )
    ]


def test_no_warning_when_every_rule_is_long_enough() -> None:
    assert latency_warnings(settings(60, {"type": "worker", "latency_rules": [rule(105)]})) == []
