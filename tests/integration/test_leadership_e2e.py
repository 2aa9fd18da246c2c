"""Leader election with real daemons: a lost lock, a regained lock, a frozen leader, a standby.

Each test runs the daemon as child processes against real PostgreSQL and the loopback Heroku
stand-in, and breaks leadership the way production does: the lock's session is terminated, the
leader is frozen (SIGSTOP) or killed, and the stand-in answers slowly.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from daemon_support import DaemonProcess, enqueue, kill_lock_backend, lock_holder, wait_until

from dynomatic_daemon.sandbox.heroku_standin import HerokuStandIn

pytestmark = [pytest.mark.postgres, pytest.mark.e2e]
CONFIG = """
[heroku]
app = "my-app"
resync_seconds = {resync}
timeout_seconds = 8
max_retries = 2

[daemon]
interval_seconds = {interval}

[[process]]
type = "worker"
adapter = "delayed_job"
scale_down_delay_seconds = 0
rules = [ {{ at_least = 0, dynos = 1 }}, {{ at_least = 50, dynos = 8 }} ]
"""
UNAVAILABLE = {"id": "unavailable", "message": "Heroku is having trouble"}


def start(
    spawn: Any, tmp_path: Path, env: dict[str, str], name: str, *, interval: float, resync: float
) -> DaemonProcess:
    path = tmp_path / f"{name}.toml"
    path.write_text(CONFIG.format(interval=interval, resync=resync))
    daemon: DaemonProcess = spawn(["run", "--config", str(path), "--log-format", "json"], env, name)
    return daemon


def decisions(daemon: DaemonProcess) -> list[dict[str, Any]]:
    return daemon.events("scale_decision")


def sender_pids(standin: HerokuStandIn, after: float = 0.0) -> list[int]:
    """The process id each PATCH names in its User-Agent (``... (instance PID@host) ...``)."""
    pids = []
    for request in standin.patches():
        if request.at >= after:
            agent = request.headers.get("user-agent", "")
            pids.append(int(agent.split("(instance ", 1)[1].split("@", 1)[0]))
    return pids


def test_a_leader_that_lost_its_lock_sends_no_retry(
    tmp_path: Path,
    delayed_jobs: psycopg.Connection[Any],
    standin: HerokuStandIn,
    daemon_env: dict[str, str],
    spawn: Any,
) -> None:
    standin.set_quantity("worker", 8)
    enqueue(delayed_jobs, 60)
    a = start(spawn, tmp_path, daemon_env, "a", interval=1.0, resync=0)
    assert standin.wait_for(lambda: bool(decisions(a)), timeout=15), a.output()
    b = start(spawn, tmp_path, daemon_env, "b", interval=1.0, resync=0)
    assert standin.wait_for(lambda: bool(b.events("standby")), timeout=15), b.output()

    standin.script(503, UNAVAILABLE, delay=3.0, times=2, method="PATCH")
    seen = len(decisions(a))
    delayed_jobs.execute("DELETE FROM delayed_jobs")  # A wants 1 and sends it: 503 after 3 s
    assert standin.wait_for(lambda: len(standin.patches()) == 1, timeout=10), a.output()
    kill_lock_backend(delayed_jobs)  # while that PATCH is in flight, A loses the lock
    enqueue(delayed_jobs, 60)  # and the work comes back: 8 dynos are right again
    assert standin.wait_for(lambda: bool(decisions(b)), timeout=10), b.output()
    # A's tick ends when its first attempt is answered; a retry must not follow.
    assert standin.wait_for(lambda: len(decisions(a)) > seen, timeout=20), a.output()
    later = len(decisions(b)) + 2  # B decides twice more, on the formation A might have broken
    assert standin.wait_for(lambda: len(decisions(b)) >= later, timeout=10), b.output()
    assert len(standin.patches()) == 1, [p.body for p in standin.patches()]
    assert standin.formation()["worker"] == 8
    assert all(e["action"] != "scaled" for e in decisions(a)[seen:]), a.output()


def test_a_leader_that_regains_the_lock_lists_the_formation_first(
    tmp_path: Path,
    delayed_jobs: psycopg.Connection[Any],
    standin: HerokuStandIn,
    daemon_env: dict[str, str],
    spawn: Any,
) -> None:
    enqueue(delayed_jobs, 60)
    # resync 60 s: without a fresh listing, A would trust the formation it last knew for a minute
    a = start(spawn, tmp_path, daemon_env, "a", interval=0.5, resync=60)
    assert standin.wait_for(lambda: standin.formation()["worker"] == 8, timeout=15), a.output()
    # the tick after a write lists the formation again: from then on A remembers worker=8
    assert standin.wait_for(lambda: len(decisions(a)) >= 3, timeout=10), a.output()
    b = start(spawn, tmp_path, daemon_env, "b", interval=0.5, resync=60)
    assert standin.wait_for(lambda: bool(b.events("standby")), timeout=15), b.output()

    a.proc.send_signal(signal.SIGSTOP)
    try:
        kill_lock_backend(delayed_jobs)
        delayed_jobs.execute("DELETE FROM delayed_jobs")
        assert standin.wait_for(lambda: standin.formation()["worker"] == 1, timeout=10), b.output()
        b.proc.send_signal(signal.SIGKILL)
        b.proc.wait(timeout=5)
        enqueue(delayed_jobs, 60)
    finally:
        a.proc.send_signal(signal.SIGCONT)
    # A leads again: it must see worker=1 (not the 8 it wrote) and scale back up.
    assert standin.wait_for(lambda: standin.formation()["worker"] == 8, timeout=8), a.output()


def test_a_frozen_leader_loses_the_lock_and_writes_nothing_once_thawed(
    tmp_path: Path,
    delayed_jobs: psycopg.Connection[Any],
    standin: HerokuStandIn,
    daemon_env: dict[str, str],
    spawn: Any,
) -> None:
    interval = 1.0
    enqueue(delayed_jobs, 60)
    a = start(spawn, tmp_path, daemon_env, "a", interval=interval, resync=0)
    assert standin.wait_for(lambda: standin.formation()["worker"] == 8, timeout=15), a.output()
    b = start(spawn, tmp_path, daemon_env, "b", interval=interval, resync=0)
    assert standin.wait_for(lambda: bool(b.events("standby")), timeout=15), b.output()

    a.proc.send_signal(signal.SIGSTOP)
    frozen = time.monotonic()
    try:
        delayed_jobs.execute("DELETE FROM delayed_jobs")
        assert standin.wait_for(lambda: standin.formation()["worker"] == 1, timeout=15), b.output()
        took_over = standin.patches()[-1].at - frozen
        # the lock's session idles out after 1.5 intervals; B's next tick takes the lock
        assert took_over <= 3 * interval + 1.0, f"took over {took_over:.2f}s after the freeze"
        enqueue(delayed_jobs, 60)  # while A sleeps, the work comes back
    finally:
        a.proc.send_signal(signal.SIGCONT)
    thawed = time.monotonic()
    assert standin.wait_for(lambda: standin.formation()["worker"] == 8, timeout=10), b.output()
    assert wait_until(lambda: bool(a.events("standby")), timeout=10), a.output()
    assert set(sender_pids(standin, after=thawed)) == {b.proc.pid}
    assert sender_pids(standin) == [a.proc.pid, b.proc.pid, b.proc.pid]


def test_once_on_a_standby_says_so_and_exits_3(
    tmp_path: Path,
    delayed_jobs: psycopg.Connection[Any],
    standin: HerokuStandIn,
    daemon_env: dict[str, str],
    spawn: Any,
) -> None:
    a = start(spawn, tmp_path, daemon_env, "a", interval=0.5, resync=0)
    assert standin.wait_for(lambda: bool(decisions(a)), timeout=15), a.output()
    assert lock_holder(delayed_jobs) is not None
    once = spawn(["once", "--json", "--config", str(tmp_path / "a.toml")], daemon_env, "once")
    assert once.proc.wait(timeout=30) == 3, once.output()
    document = json.loads(once.output()[once.output().index("{\n") :])
    assert (document["role"], document["processes"]) == ("standby", [])


def test_a_stuck_leader_lets_its_lease_lapse_and_a_standby_scales(
    tmp_path: Path,
    delayed_jobs: psycopg.Connection[Any],
    standin: HerokuStandIn,
    daemon_env: dict[str, str],
    spawn: Any,
) -> None:
    a = start(spawn, tmp_path, daemon_env, "a", interval=0.5, resync=0)
    assert standin.wait_for(lambda: bool(decisions(a)), timeout=15), a.output()
    b = start(spawn, tmp_path, daemon_env, "b", interval=0.5, resync=0)
    assert standin.wait_for(lambda: bool(b.events("standby")), timeout=15), b.output()

    standin.script(200, [], delay=20.0, method="GET")  # A's next listing hangs (8 s timeout)
    assert standin.wait_for(lambda: len(a.events("scaler_stalled")) >= 1, timeout=10), a.output()
    enqueue(delayed_jobs, 60)  # work arrives while A is stuck
    # A's ticks stopped completing, so its keepalive stopped and its lease ran out: B scales.
    assert standin.wait_for(lambda: standin.formation()["worker"] == 8, timeout=10), b.output()
    assert sender_pids(standin) == [b.proc.pid]
