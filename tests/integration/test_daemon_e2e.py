"""The real daemon, end to end: delayed_job rows in Postgres -> Batch Update at the stand-in."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest
from daemon_support import API_KEY, DB_PASSWORD, enqueue

from dynomatic_daemon.sandbox.heroku_standin import HerokuStandIn

pytestmark = [pytest.mark.postgres, pytest.mark.e2e]
INTERVAL = 1.0
CONFIG = """
[heroku]
app = "my-app"
resync_seconds = 0

[daemon]
interval_seconds = {interval}

[[process]]
type = "worker"
adapter = "delayed_job"
queues = ["default", "mailers"]
scale_down_delay_seconds = 0
rules = [
  {{ at_least = 0,  dynos = 1 }},
  {{ at_least = 10, dynos = 5 }},
  {{ at_least = 20, dynos = 10 }},
  {{ at_least = 30, dynos = 15 }},
]

[[process]]
type = "urgent"
adapter = "delayed_job"
queues = ["critical"]
worker_names = ["urgent1", "urgent2", "urgent3"]
scale_down_delay_seconds = 0
rules = [
  {{ at_least = 0, dynos = 0 }}, {{ at_least = 1, dynos = 1 }}, {{ at_least = 50, dynos = 3 }},
]
"""


def write_config(tmp_path: Path) -> Path:
    path = tmp_path / "dynomatic.toml"
    path.write_text(CONFIG.format(interval=INTERVAL))
    return path


def patch_bodies(standin: HerokuStandIn) -> list[dict[str, int]]:
    return [{u["type"]: u["quantity"] for u in p.body["updates"]} for p in standin.patches()]


def first_patch_at(standin: HerokuStandIn, wanted: dict[str, int], after: float) -> float | None:
    for p in standin.patches():
        body = {u["type"]: u["quantity"] for u in p.body["updates"]}
        if p.at >= after and all(body.get(k) == v for k, v in wanted.items()):
            return p.at
    return None


def test_scales_up_within_two_intervals_and_back_down_after_the_drain(
    tmp_path: Path,
    delayed_jobs: psycopg.Connection[Any],
    standin: HerokuStandIn,
    daemon_env: dict[str, str],
    spawn: Any,
) -> None:
    daemon = spawn(
        ["run", "--config", str(write_config(tmp_path)), "--log-format", "json"], daemon_env
    )
    assert standin.wait_for(lambda: len(daemon.events("scale_decision")) >= 2, timeout=15), (
        daemon.output()
    )
    assert standin.patches() == []  # 0 jobs -> 1 worker, which is what runs: nothing to write

    committed = enqueue(delayed_jobs, 25, "default")
    assert standin.wait_for(lambda: standin.formation()["worker"] == 10, timeout=10), (
        daemon.output()
    )
    arrived = first_patch_at(standin, {"worker": 10}, committed)
    assert arrived is not None
    # The acceptance bound: the Batch Update arrives within two poll intervals of the commit.
    assert arrived - committed <= 2 * INTERVAL, f"took {arrived - committed:.2f}s"

    delayed_jobs.execute("DELETE FROM delayed_jobs")
    assert standin.wait_for(lambda: standin.formation()["worker"] == 1, timeout=10), daemon.output()
    assert patch_bodies(standin) == [{"worker": 10}, {"worker": 1}]

    def scaled_worker() -> list[dict[str, Any]]:
        return [
            e
            for e in daemon.events("scale_decision")
            if e["process_type"] == "worker" and e["action"] == "scaled"
        ]

    assert standin.wait_for(lambda: len(scaled_worker()) == 2, timeout=5)
    scaled = scaled_worker()
    assert [(e["current"], e["desired"]) for e in scaled] == [(1, 10), (10, 1)]
    assert scaled[0]["ready"] == 25 and scaled[0]["rule"] == "rules[at_least=20]"
    assert scaled[0]["request_id"]  # Heroku's Request-Id is logged with the change
    code, took = daemon.stop()
    assert (code, took < 5) == (0, True)
    output = daemon.output()
    assert API_KEY not in output and DB_PASSWORD not in output


def test_hobby_mode_toggles_the_right_types_in_one_batch(
    tmp_path: Path,
    delayed_jobs: psycopg.Connection[Any],
    standin: HerokuStandIn,
    daemon_env: dict[str, str],
    spawn: Any,
) -> None:
    daemon = spawn(
        ["run", "--config", str(write_config(tmp_path)), "--log-format", "json"], daemon_env
    )
    enqueue(delayed_jobs, 1, "critical")
    assert standin.wait_for(lambda: standin.formation()["urgent1"] == 1, timeout=10), (
        daemon.output()
    )
    enqueue(delayed_jobs, 60, "critical")
    assert standin.wait_for(lambda: standin.formation()["urgent3"] == 1, timeout=10), (
        daemon.output()
    )
    delayed_jobs.execute("DELETE FROM delayed_jobs")
    assert standin.wait_for(lambda: standin.formation()["urgent1"] == 0, timeout=10), (
        daemon.output()
    )
    assert patch_bodies(standin) == [
        {"urgent1": 1},
        {"urgent2": 1, "urgent3": 1},  # one Batch Update carries every change
        {"urgent1": 0, "urgent2": 0, "urgent3": 0},
    ]
    assert standin.formation()["worker"] == 1
    assert daemon.alive()


def test_dry_run_decides_and_logs_but_sends_no_patch(
    tmp_path: Path,
    delayed_jobs: psycopg.Connection[Any],
    standin: HerokuStandIn,
    daemon_env: dict[str, str],
    spawn: Any,
) -> None:
    env = {**daemon_env, "DYNOMATIC_DAEMON_DRY_RUN": "true"}
    enqueue(delayed_jobs, 31, "default")
    daemon = spawn(["run", "--config", str(write_config(tmp_path)), "--log-format", "json"], env)

    def dry_decided() -> bool:
        return any(
            e["action"] == "dry_run" and e["desired"] == 15 for e in daemon.events("scale_decision")
        )

    assert standin.wait_for(dry_decided, timeout=10), daemon.output()
    assert standin.wait_for(lambda: len(daemon.events("scale_decision")) >= 6, timeout=10)
    assert standin.patches() == []
    assert [r.method for r in standin.requests] and {r.method for r in standin.requests} == {"GET"}
    assert standin.formation()["worker"] == 1
