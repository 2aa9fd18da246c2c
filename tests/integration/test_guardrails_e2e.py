"""Guardrails end to end: the real daemon, real Postgres, the loopback stand-in, and a second
process giving `dynomatic pause` as a person would (docs/guardrails.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import psycopg
import pytest
from daemon_support import API_KEY, DB_PASSWORD, enqueue

from dynomatic_daemon.sandbox.heroku_standin import HerokuStandIn
from dynomatic_daemon.store import migrations

pytestmark = [pytest.mark.postgres, pytest.mark.e2e]
CONFIG = """
[heroku]
app = "my-app"
resync_seconds = 0
releases_poll_seconds = {poll}

[daemon]
interval_seconds = 1.0

[{store}]
enabled = true

[[process]]
type = "worker"
adapter = "delayed_job"
scale_down_delay_seconds = 0
idle_before_zero_seconds = 0
manual_override_seconds = {override}
release_hold_seconds = {hold}
rules = [
  {{ at_least = 0,  dynos = 1 }},
  {{ at_least = 10, dynos = 5 }},
  {{ at_least = 20, dynos = 10 }},
]
{extra}
"""


def write_config(
    tmp_path: Path,
    *,
    override: float = 0,
    hold: float = 0,
    poll: float = 60,
    extra: str = "",
    store: str = "state",
) -> str:
    path = tmp_path / "dynomatic.toml"
    text = CONFIG.format(override=override, hold=hold, poll=poll, extra=extra, store=store)
    path.write_text(text)
    return str(path)


def cli(args: list[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """A second process, as `heroku run dynomatic ...` would be."""
    return subprocess.run(
        [sys.executable, "-m", "dynomatic_daemon", *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def decisions(daemon: Any, *, busy: bool | None = None, **wanted: Any) -> list[dict[str, Any]]:
    """Its scale_decision lines with these fields; ``busy``: whether jobs were ready."""
    return [
        e
        for e in daemon.events("scale_decision")
        if all(e.get(k) == v for k, v in wanted.items())
        and (busy is None or busy == bool(e.get("ready")))
    ]


def db_seconds_until(conn: psycopg.Connection[Any], kind: str) -> float:
    row = conn.execute(
        "SELECT extract(epoch FROM until - now()) FROM dynomatic.guardrails WHERE kind = %s",
        (kind,),
    ).fetchone()
    assert row is not None
    return float(row[0])


def test_a_pause_from_another_process_is_honoured_next_tick_survives_a_restart_and_expires(
    tmp_path: Path,
    delayed_jobs: psycopg.Connection[Any],
    standin: HerokuStandIn,
    daemon_env: dict[str, str],
    spawn: Any,
) -> None:
    config = write_config(tmp_path)
    args = ["run", "--config", config, "--log-format", "json"]
    daemon = spawn(args, daemon_env)
    assert standin.wait_for(lambda: len(daemon.events("scale_decision")) >= 2, timeout=15), (
        daemon.output()
    )
    paused = cli(["pause", "--config", config, "--type", "worker", "--for", "10s",
                  "--reason", "db migration"], daemon_env)  # fmt: skip
    assert paused.returncode == 0, paused.stderr
    assert "paused process type worker" in paused.stdout
    enqueue(delayed_jobs, 25)
    # the first tick that saw the jobs had already seen the pause, given before them
    assert standin.wait_for(lambda: decisions(daemon, busy=True), timeout=10), daemon.output()
    first = decisions(daemon, busy=True)[0]
    assert (first["action"], first["desired"], first["current"]) == ("paused", 10, 1)
    assert "db migration" in first["reason"] and first["guardrails"] == "pause"
    assert daemon.events("paused"), daemon.output()

    status = cli(["status", "--config", config], daemon_env)
    assert status.returncode == 0 and "pause" in status.stdout and "db migration" in status.stdout

    # A restart while paused: the new daemon reads the pause from the state schema.
    daemon.stop()
    again = spawn(args, daemon_env)
    assert standin.wait_for(lambda: decisions(again, action="paused"), timeout=15), again.output()
    assert standin.patches() == []
    left = db_seconds_until(delayed_jobs, "pause")
    assert left > 0  # still paused by the database's clock when the new daemon held back

    # It expires by itself: the daemon scales once the database clock passes `until`.
    assert standin.wait_for(lambda: standin.formation()["worker"] == 10, timeout=left + 10), (
        again.output()
    )
    assert again.events("resumed_after_pause")
    assert len(standin.patches()) == 1
    output = again.output() + daemon.output() + paused.stdout + status.stdout
    assert API_KEY not in output and DB_PASSWORD not in output


def test_resume_ends_a_pause_at_once_and_history_shares_its_schema_and_records_it(
    tmp_path: Path,
    delayed_jobs: psycopg.Connection[Any],
    standin: HerokuStandIn,
    daemon_env: dict[str, str],
    spawn: Any,
) -> None:
    config = write_config(tmp_path, store="history")  # no [state]: history's schema serves
    assert cli(["pause", "--config", config, "--for", "1h"], daemon_env).returncode == 0
    enqueue(delayed_jobs, 25)
    daemon = spawn(["run", "--config", config, "--log-format", "json"], daemon_env)
    assert standin.wait_for(lambda: len(decisions(daemon, action="paused")) >= 2, timeout=15)
    assert standin.patches() == []
    resumed = cli(["resume", "--config", config], daemon_env)
    assert resumed.returncode == 0 and "resumed every type" in resumed.stdout
    assert standin.wait_for(lambda: standin.formation()["worker"] == 10, timeout=5), daemon.output()
    daemon.stop()  # history is written on its own thread: stopping flushes it

    def kinds() -> list[str]:
        rows = delayed_jobs.execute("SELECT kind FROM dynomatic.events ORDER BY id").fetchall()
        return [r[0] for r in rows]

    assert standin.wait_for(lambda: "scaled" in kinds(), timeout=5), kinds()
    assert kinds().index("paused") < kinds().index("scaled")


def test_pause_without_a_state_store_says_so_and_points_to_ps_scale(
    tmp_path: Path, daemon_env: dict[str, str], db_url: str
) -> None:
    path = tmp_path / "plain.toml"
    path.write_text(
        '[heroku]\napp = "my-app"\n[[process]]\ntype = "worker"\nadapter = "delayed_job"\n'
        "rules = [ { at_least = 0, dynos = 1 } ]\n"
    )
    done = cli(["pause", "--config", str(path)], daemon_env)
    assert done.returncode == 1
    assert "[state] enabled = true" in done.stderr and "heroku ps:scale scaler=0" in done.stderr
    bad = cli(["pause", "--config", write_config(tmp_path), "--type", "nope"], daemon_env)
    assert bad.returncode == 2 and "'nope'" in bad.stderr


def test_a_manual_scale_is_left_alone_for_the_override_then_resumed_even_across_a_restart(
    tmp_path: Path,
    delayed_jobs: psycopg.Connection[Any],
    standin: HerokuStandIn,
    daemon_env: dict[str, str],
    spawn: Any,
) -> None:
    config = write_config(tmp_path, override=6)
    args = ["run", "--config", config, "--log-format", "json"]
    enqueue(delayed_jobs, 25)
    daemon = spawn(args, daemon_env)
    assert standin.wait_for(lambda: standin.formation()["worker"] == 10, timeout=15), (
        daemon.output()
    )
    standin.set_quantity("worker", 2)  # someone ran heroku ps:scale worker=2
    assert standin.wait_for(lambda: daemon.events("override"), timeout=10), daemon.output()
    (seen,) = daemon.events("override")
    assert (seen["expected"], seen["actual"], seen["stored"]) == (10, 2, True)
    assert seen["resume_at"] and "does not say who" in seen["by"]
    assert standin.wait_for(lambda: decisions(daemon, action="override"), timeout=5)
    held = decisions(daemon, action="override")[0]
    assert (held["current"], held["desired"]) == (2, 10)

    daemon.stop()  # a restart during the override: the new copy never saw the change itself
    again = spawn(args, daemon_env)
    assert standin.wait_for(lambda: decisions(again, action="override"), timeout=15), again.output()
    assert standin.formation()["worker"] == 2
    assert len(standin.patches()) == 1  # only the first scale-up, before the person's change
    left = db_seconds_until(delayed_jobs, "override")
    assert standin.wait_for(lambda: standin.formation()["worker"] == 10, timeout=left + 10), (
        again.output()
    )
    assert again.events("override_ended")
    # resumed from what ran: one write, straight to what the queue asks for
    assert [p.body["updates"][0]["quantity"] for p in standin.patches()] == [10, 10]


def test_a_release_holds_scale_downs_but_not_scale_ups(
    tmp_path: Path,
    delayed_jobs: psycopg.Connection[Any],
    standin: HerokuStandIn,
    daemon_env: dict[str, str],
    spawn: Any,
) -> None:
    config = write_config(tmp_path, hold=5, poll=0.5)
    enqueue(delayed_jobs, 12)
    daemon = spawn(["run", "--config", config, "--log-format", "json"], daemon_env)
    assert standin.wait_for(lambda: standin.formation()["worker"] == 5, timeout=15), daemon.output()
    assert not daemon.events("release_hold")  # the app's release is a day old
    version = standin.release("Deploy 4f2a1c")
    assert standin.wait_for(lambda: daemon.events("release_hold"), timeout=5), daemon.output()
    assert daemon.events("release_hold")[0]["version"] == version
    delayed_jobs.execute("DELETE FROM delayed_jobs")
    assert standin.wait_for(
        lambda: any("scale-down held" in e["reason"] for e in decisions(daemon, busy=False)),
        timeout=5,
    ), daemon.output()
    assert standin.formation()["worker"] == 5
    enqueue(delayed_jobs, 25)  # a scale-up still goes out during the hold
    assert standin.wait_for(lambda: standin.formation()["worker"] == 10, timeout=5), daemon.output()
    delayed_jobs.execute("DELETE FROM delayed_jobs")
    assert standin.wait_for(lambda: standin.formation()["worker"] == 1, timeout=10), daemon.output()
    held = [e for e in decisions(daemon, busy=False) if "scale-down held" in e["reason"]]
    assert held and all(e["action"] == "unchanged" for e in held)
    releases = [r for r in standin.requests if r.path.endswith("/releases")]
    assert releases and all(r.headers.get("range", "").startswith("version") for r in releases)


def test_a_clamp_budget_caps_a_long_burst_says_why_and_keeps_its_spend_across_restarts(
    tmp_path: Path,
    delayed_jobs: psycopg.Connection[Any],
    standin: HerokuStandIn,
    daemon_env: dict[str, str],
    spawn: Any,
) -> None:
    hours_left = float(
        delayed_jobs.execute(
            "SELECT extract(epoch FROM date_trunc('day', now()) + interval '1 day' - now()) / 3600"
        ).fetchone()[0]  # type: ignore[index]
    )
    if hours_left < 0.1:
        pytest.skip("too close to midnight UTC: the day's budget would reset mid-test")
    # Spent so far today (as a daemon before this one recorded it): 3.5 dynos' worth of the
    # day's remaining hours are left under the limit, so the cap is 3 dynos.
    migrations.migrate(delayed_jobs, "dynomatic")
    seeded = (100 - 3.5 * hours_left) * 3600
    delayed_jobs.execute(
        "INSERT INTO dynomatic.spend (app, process_type, day, dyno_seconds, usd) "
        "VALUES ('my-app', 'worker', (now() AT TIME ZONE 'UTC')::date, %s, 0)",
        (seeded,),
    )
    budget = '[budget]\nmode = "clamp"\nmax_dyno_hours_per_day = 100\n'
    config = write_config(tmp_path, extra=budget)
    args = ["run", "--config", config, "--log-format", "json"]
    enqueue(delayed_jobs, 25)
    daemon = spawn(args, daemon_env)
    assert standin.wait_for(lambda: standin.formation()["worker"] == 3, timeout=15), daemon.output()
    assert standin.wait_for(lambda: decisions(daemon, action="scaled"), timeout=5)
    capped = decisions(daemon, action="scaled")[0]
    assert capped["desired"] == 3 and "budget caps it at 3" in capped["reason"]
    assert "max_dyno_hours_per_day=100" in capped["reason"] and capped["guardrails"] == "budget"
    assert standin.wait_for(lambda: len(decisions(daemon, busy=True)) >= 4, timeout=10)
    assert all(e["desired"] == 3 for e in decisions(daemon, busy=True))  # the burst goes on

    def spent() -> float:
        row = delayed_jobs.execute("SELECT dyno_seconds FROM dynomatic.spend").fetchone()
        return float(row[0]) if row else 0.0

    assert standin.wait_for(lambda: spent() > seeded + 3, timeout=10)  # 3 dynos' seconds, kept
    daemon.stop()
    again = spawn(args, daemon_env)
    assert standin.wait_for(lambda: len(decisions(again, busy=True)) >= 2, timeout=15)
    assert all(e["desired"] == 3 for e in decisions(again, busy=True)), again.output()
    assert [p.body["updates"][0]["quantity"] for p in standin.patches()] == [3]


def test_check_and_once_json_show_the_guardrails_in_force_and_the_cost(
    tmp_path: Path,
    delayed_jobs: psycopg.Connection[Any],
    standin: HerokuStandIn,
    daemon_env: dict[str, str],
) -> None:
    budget = '[budget]\nmode = "alert"\nmax_monthly_usd = 1000\n'
    config = write_config(tmp_path, extra=budget)
    paused = cli(["pause", "--config", config, "--for", "10m", "--reason", "incident"], daemon_env)
    assert paused.returncode == 0, paused.stderr
    enqueue(delayed_jobs, 25)
    check = cli(["check", "--config", config], daemon_env)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "ok    state store: schema 'dynomatic', 1 guardrail(s) in force" in check.stdout
    assert "warn  guardrail pause on worker:" in check.stdout and "incident" in check.stdout
    # one Standard-1X dyno at Heroku's list price of $25 a month (prices.py)
    assert "ok    cost worker: 1 dyno(s) now: $0.0347/h, $0.83/day" in check.stdout

    once = cli(["once", "--config", config, "--json"], daemon_env)
    assert once.returncode == 0, once.stderr
    (worker,) = json.loads(once.stdout)["processes"]
    assert (worker["action"], worker["desired"], worker["guardrails"]) == ("paused", 10, ["pause"])
    assert worker["cost_per_hour_usd"] == pytest.approx(25 / 720, abs=1e-4)
    assert worker["cost_per_day_usd"] == pytest.approx(25 / 30, abs=1e-3)
    assert standin.patches() == []
    assert API_KEY not in check.stdout + once.stdout + once.stderr
