"""The daemon as a process under faults: a twin, SIGTERM mid-tick, a stall, and secret hunting."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from daemon_support import API_KEY, DB_PASSWORD, DaemonProcess, enqueue

from dynomatic_daemon.sandbox.heroku_standin import HerokuStandIn

pytestmark = [pytest.mark.postgres, pytest.mark.e2e]
INTERVAL = 0.5
CONFIG = f"""
[heroku]
app = "my-app"
resync_seconds = 0
timeout_seconds = 8

[daemon]
interval_seconds = {INTERVAL}
stalled_after_intervals = 2

[[process]]
type = "worker"
adapter = "delayed_job"
scale_down_delay_seconds = 0
rules = [
  {{ at_least = 0, dynos = 1 }}, {{ at_least = 10, dynos = 5 }}, {{ at_least = 20, dynos = 10 }},
]
"""


def start(spawn: Any, tmp_path: Path, env: dict[str, str], name: str) -> DaemonProcess:
    path = tmp_path / "dynomatic.toml"
    path.write_text(CONFIG)
    daemon: DaemonProcess = spawn(["run", "--config", str(path), "--log-format", "json"], env, name)
    return daemon


def test_two_daemons_one_writer_and_a_takeover_within_two_intervals(
    tmp_path: Path,
    delayed_jobs: psycopg.Connection[Any],
    standin: HerokuStandIn,
    daemon_env: dict[str, str],
    spawn: Any,
) -> None:
    a = start(spawn, tmp_path, daemon_env, "a")
    assert standin.wait_for(lambda: bool(a.events("scale_decision")), timeout=15), a.output()
    b = start(spawn, tmp_path, daemon_env, "b")
    assert standin.wait_for(lambda: len(b.events("standby")) >= 2, timeout=15), b.output()
    enqueue(delayed_jobs, 25)
    assert standin.wait_for(lambda: standin.formation()["worker"] == 10, timeout=10)
    # both daemons go on ticking with the new formation a few times: still one PATCH
    decided, stood_by = len(a.events("scale_decision")), len(b.events("standby"))
    assert standin.wait_for(
        lambda: (
            len(a.events("scale_decision")) >= decided + 3
            and len(b.events("standby")) >= stood_by + 3
        ),
        timeout=10,
    ), a.output() + b.output()
    assert len(standin.patches()) == 1
    assert b.events("scale_decision") == []  # the standby never decided, let alone wrote

    a.proc.send_signal(signal.SIGKILL)  # the leader dies without any goodbye
    a.proc.wait(timeout=5)
    died = time.monotonic()
    delayed_jobs.execute("DELETE FROM delayed_jobs")
    assert standin.wait_for(lambda: standin.formation()["worker"] == 1, timeout=10), b.output()
    took_over = standin.patches()[-1].at - died
    assert took_over <= 2 * INTERVAL + 1.0, f"took over after {took_over:.2f}s"
    assert len(standin.patches()) == 2


def test_sigterm_mid_tick_exits_cleanly_without_a_half_sent_change(
    tmp_path: Path,
    delayed_jobs: psycopg.Connection[Any],
    standin: HerokuStandIn,
    daemon_env: dict[str, str],
    spawn: Any,
) -> None:
    # The first tick reads 25 ready jobs (a change from 1 to 10 dynos is due), then its
    # formation read takes 3 s: the signal lands while the tick is waiting for it. The answer
    # still comes within the shutdown grace, so only the stop flag keeps the PATCH back.
    enqueue(delayed_jobs, 25)
    standin.delay(3.0, method="GET")
    daemon = start(spawn, tmp_path, daemon_env, "slow")

    def waiting_for_the_formation() -> bool:
        return any(r.method == "GET" and r.answered_at is None for r in standin.requests)

    assert standin.wait_for(waiting_for_the_formation, timeout=15), daemon.output()
    code, took = daemon.stop(timeout=15)
    assert code == 0
    assert took < 10, f"exit took {took:.1f}s"
    assert standin.patches() == []  # the change was held, not half-sent
    (line,) = daemon.events("scale_decision")
    assert (line["current"], line["desired"], line["action"]) == (1, 10, "held"), line
    assert "not sent: shutting down" in line["reason"]
    events = [e["event"] for e in daemon.events()]
    assert events.index("shutdown_requested") < events.index("scale_decision")
    assert "daemon_stopped" in events and "shutdown_tick_abandoned" not in events


def test_a_stuck_api_is_reported_as_scaler_stalled_until_it_recovers(
    tmp_path: Path,
    delayed_jobs: psycopg.Connection[Any],
    standin: HerokuStandIn,
    daemon_env: dict[str, str],
    spawn: Any,
) -> None:
    daemon = start(spawn, tmp_path, daemon_env, "stuck")
    assert standin.wait_for(lambda: bool(daemon.events("scale_decision")), timeout=15)
    standin.script(200, [], delay=4.0, method="GET")  # one tick takes 4 s: 8 intervals
    assert standin.wait_for(lambda: len(daemon.events("scaler_stalled")) >= 2, timeout=10), (
        daemon.output()
    )
    assert all(e["at"] == "error" for e in daemon.events("scaler_stalled"))
    decided = len(daemon.events("scale_decision"))
    assert standin.wait_for(lambda: len(daemon.events("scale_decision")) > decided, timeout=15)
    count, decided = len(daemon.events("scaler_stalled")), len(daemon.events("scale_decision"))
    # four more intervals, counted by the ticks that complete in them
    assert standin.wait_for(lambda: len(daemon.events("scale_decision")) >= decided + 4, 10)
    assert len(daemon.events("scaler_stalled")) == count  # silent again once ticks complete
    assert daemon.alive()


@pytest.mark.usefixtures("db_url")
def test_no_secret_appears_in_any_output_whatever_fails(
    tmp_path: Path,
    delayed_jobs: psycopg.Connection[Any],
    standin: HerokuStandIn,
    daemon_env: dict[str, str],
    spawn: Any,
) -> None:
    daemon = start(spawn, tmp_path, daemon_env, "secrets")
    enqueue(delayed_jobs, 25)
    standin.script(401, {"id": "unauthorized", "message": f"bad token {API_KEY}"})
    standin.script(500, {"id": "server_error", "message": f"echo {API_KEY} {DB_PASSWORD}"})
    assert standin.wait_for(lambda: len(daemon.events("scale_decision")) >= 3, timeout=15)
    delayed_jobs.execute("DROP TABLE delayed_jobs")
    assert standin.wait_for(
        lambda: any("UndefinedTable" in e.get("reason", "") for e in daemon.events()), timeout=15
    )
    delayed_jobs.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE application_name LIKE 'dynomatic%%' AND datname = current_database()"
    )
    decided = len(daemon.events("scale_decision"))  # a few ticks against the killed sessions
    assert standin.wait_for(lambda: len(daemon.events("scale_decision")) >= decided + 3, 15)
    code, _ = daemon.stop()
    out = daemon.output()
    assert code == 0
    assert API_KEY not in out and DB_PASSWORD not in out
    # the once and check commands under the same faults
    bad_env = {**daemon_env, "DATABASE_URL": daemon_env["DATABASE_URL"].replace("port=", "port=1")}
    for args in (["once", "--json"], ["check"]):
        proc = spawn([*args, "--config", str(tmp_path / "dynomatic.toml")], bad_env, args[0])
        proc.proc.wait(timeout=30)
        text = proc.output()
        assert API_KEY not in text and DB_PASSWORD not in text, text
        assert proc.proc.returncode == 1, text  # the database cannot be read: a failure


def test_auto_detection_waits_for_a_database_that_is_down(
    tmp_path: Path, standin: HerokuStandIn, daemon_env: dict[str, str], spawn: Any
) -> None:
    path = tmp_path / "dynomatic.toml"
    path.write_text(CONFIG.replace('adapter = "delayed_job"\n', ""))  # adapter = "auto"
    env = {**daemon_env, "DATABASE_URL": "postgresql://postgres:x@127.0.0.1:1/none"}
    daemon = spawn(["run", "--config", str(path), "--log-format", "json"], env, "auto-down")
    assert standin.wait_for(lambda: len(daemon.events("startup_waiting_for_database")) >= 2, 15), (
        daemon.output()
    )
    assert daemon.alive()
    code, took = daemon.stop()
    assert (code, took < 5) == (0, True)
    assert standin.requests == []
