"""Several apps from one scaler, with real daemons, real PostgreSQL and the loopback stand-in.

One config of five apps: two healthy, one whose database never answers (a black hole that
accepts the connection and says nothing), one whose token is revoked (401) and one the API does
not know (404). The healthy apps must scale on time; the broken ones must hold only themselves.
Then leader election per app: two daemons split apps, and a standby takes over only the app
whose leader died.
"""

from __future__ import annotations

import itertools
import json
import os
import socket
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from daemon_support import API_KEY, DB_PASSWORD, DaemonProcess, enqueue, wait_until

from dynomatic_daemon.sandbox.heroku_standin import HerokuStandIn

pytestmark = [pytest.mark.postgres, pytest.mark.e2e]
REVOKED_KEY = "hk-revoked-e2e-0a1b2c3d4e"
APP_BLOCK = """
[[app]]
name = "{name}"
{extra}
[[app.process]]
type = "worker"
queues = ["{name}"]
"""
DEFAULTS = """
[fleet]
concurrency = 4

[defaults.heroku]
api_url = "{api_url}"
resync_seconds = 0
timeout_seconds = 3
max_retries = 0

[defaults.database]
connect_timeout_seconds = 4

[defaults.daemon]
interval_seconds = {interval}

[defaults.process]
adapter = "delayed_job"
scale_down_delay_seconds = 0
rules = [ {{ at_least = 0, dynos = 1 }}, {{ at_least = 10, dynos = 3 }} ]
"""
HEALTHY = ("shop-a", "shop-b")


@pytest.fixture
def black_hole() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield sock.getsockname()[1]


@pytest.fixture
def fleet_standin() -> Iterator[HerokuStandIn]:
    with HerokuStandIn(app="shop-a", api_key=API_KEY, formation={"worker": 1}) as standin:
        for app in ("shop-b", "slow-db", "revoked"):
            standin.add_app(app, {"worker": 1})
        yield standin


def config_text(api_url: str, interval: float, apps: dict[str, str]) -> str:
    blocks = "".join(APP_BLOCK.format(name=n, extra=e) for n, e in apps.items())
    return DEFAULTS.format(api_url=api_url, interval=interval) + blocks


@pytest.fixture
def fleet_env(db_url: str, black_hole: int) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("DYNOMATIC_", "HEROKU_"))}
    return {
        **keep,
        "HEROKU_API_KEY": API_KEY,
        "REVOKED_KEY": REVOKED_KEY,
        "DATABASE_URL": db_url,
        "SLOW_DATABASE_URL": f"postgresql://u:{DB_PASSWORD}@127.0.0.1:{black_hole}/x",
        "HEROKU_APP_NAME": "the-scalers-own-app",
        "PYTHONUNBUFFERED": "1",
    }


def decisions(daemon: DaemonProcess, app: str) -> list[dict[str, Any]]:
    return [e for e in daemon.events("scale_decision") if e.get("app") == app]


def run(tmp_path: Path, name: str, text: str, env: dict[str, str], spawn: Any) -> DaemonProcess:
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    daemon: DaemonProcess = spawn(["run", "--config", str(path), "--log-format", "json"], env, name)
    return daemon


def gaps(events: list[dict[str, Any]]) -> list[float]:
    times = [datetime.fromisoformat(e["timestamp"]).timestamp() for e in events]
    return [b - a for a, b in itertools.pairwise(times)]


def test_broken_apps_hold_only_themselves(
    tmp_path: Path,
    delayed_jobs: psycopg.Connection[Any],
    fleet_env: dict[str, str],
    fleet_standin: HerokuStandIn,
    spawn: Any,
) -> None:
    apps = {
        "shop-a": "",
        "shop-b": "",
        "slow-db": 'url_env = "SLOW_DATABASE_URL"',
        "revoked": 'api_key_env = "REVOKED_KEY"',
        "gone-app": "",
    }
    text = config_text(fleet_standin.url, 1.0, apps)
    daemon = run(tmp_path, "fleet", text, fleet_env, spawn)
    enqueue(delayed_jobs, 12, queue="shop-a")
    enqueue(delayed_jobs, 30, queue="shop-b")
    enqueue(delayed_jobs, 30, queue="revoked")
    enqueue(delayed_jobs, 30, queue="gone-app")
    for app in HEALTHY:
        ok = fleet_standin.wait_for(lambda a=app: fleet_standin.formation(a)["worker"] == 3, 20)
        assert ok, daemon.output()
    # Ten more seconds of healthy ticks while the black hole holds a thread per attempt.
    start = {app: len(decisions(daemon, app)) for app in HEALTHY}
    ten_more = lambda: all(len(decisions(daemon, a)) >= start[a] + 10 for a in HEALTHY)  # noqa: E731
    assert wait_until(ten_more, 20), daemon.output()
    for app in HEALTHY:
        recent = decisions(daemon, app)[start[app] :]
        assert max(gaps(recent)) < 2.0, (app, gaps(recent))  # interval 1 s: none skipped
        assert all(e["action"] in ("unchanged", "scaled") for e in recent), recent
    revoked, gone = decisions(daemon, "revoked"), decisions(daemon, "gone-app")
    assert revoked and all(e["action"] == "error" for e in revoked), daemon.output()
    assert "401" in revoked[0]["reason"]
    assert gone and all(e["action"] == "error" for e in gone) and "404" in gone[0]["reason"]
    assert fleet_standin.formation("revoked")["worker"] == 1  # never written with a bad token
    slow = decisions(daemon, "slow-db")
    assert slow and all(e["action"] == "error" and e["ready"] is None for e in slow), slow
    assert fleet_standin.formation("slow-db")["worker"] == 1
    code, took = daemon.stop()
    assert code == 0 and took < 10, daemon.output()
    said = daemon.output()
    assert all(s not in said for s in (API_KEY, REVOKED_KEY, DB_PASSWORD)), "a secret leaked"


def test_two_scalers_split_apps_and_a_standby_takes_over_only_the_dead_leaders_app(
    tmp_path: Path,
    delayed_jobs: psycopg.Connection[Any],
    fleet_env: dict[str, str],
    fleet_standin: HerokuStandIn,
    spawn: Any,
) -> None:
    env = fleet_env
    only_b = run(tmp_path, "b", config_text(fleet_standin.url, 0.5, {"shop-b": ""}), env, spawn)
    assert wait_until(lambda: bool(only_b.events("leader_elected")), 15), only_b.output()
    both = config_text(fleet_standin.url, 0.5, {"shop-a": "", "shop-b": ""})
    fleet = run(tmp_path, "ab", both, env, spawn)
    leads = lambda: {e["app"] for e in fleet.events("leader_elected")}  # noqa: E731
    assert wait_until(lambda: leads() == {"shop-a"}, 15), fleet.output()
    assert wait_until(lambda: any(e["app"] == "shop-b" for e in fleet.events("standby")), 15)
    enqueue(delayed_jobs, 30, queue="shop-b")
    assert fleet_standin.wait_for(lambda: fleet_standin.formation("shop-b")["worker"] == 3, 15)
    writers = {r.headers.get("user-agent", "") for r in fleet_standin.patches()}
    assert all(f"instance {only_b.proc.pid}@" in w for w in writers), writers

    only_b.proc.kill()  # the leader of shop-b dies; its lock goes with its session
    only_b.proc.wait(timeout=5)
    assert wait_until(lambda: leads() == {"shop-a", "shop-b"}, 15), fleet.output()
    elected = [e["app"] for e in fleet.events("leader_elected")]
    assert elected.count("shop-a") == 1, elected  # shop-a's leadership never wavered
    delayed_jobs.execute("DELETE FROM delayed_jobs")
    assert fleet_standin.wait_for(lambda: fleet_standin.formation("shop-b")["worker"] == 1, 15)
    code, _ = fleet.stop()
    assert code == 0, fleet.output()


def test_once_json_and_check_name_every_app(
    tmp_path: Path,
    delayed_jobs: psycopg.Connection[Any],
    fleet_env: dict[str, str],
    fleet_standin: HerokuStandIn,
    spawn: Any,
) -> None:
    text = config_text(fleet_standin.url, 10, {"shop-a": "", "gone-app": ""})
    path = tmp_path / "two.toml"
    path.write_text(text)
    enqueue(delayed_jobs, 12, queue="shop-a")
    once = spawn(["once", "--json", "--config", str(path)], fleet_env, "once")
    assert once.proc.wait(timeout=30) == 1  # gone-app could not be scaled
    document = json.loads(once.output()[once.output().index('{\n  "apps"') :])
    by_app = {d["app"]: d for d in document["apps"]}
    assert by_app["shop-a"]["processes"][0]["action"] == "scaled"
    assert by_app["gone-app"]["processes"][0]["action"] == "error"
    assert fleet_standin.formation("shop-a")["worker"] == 3
    check = spawn(["check", "--config", str(path)], fleet_env, "check")
    assert check.proc.wait(timeout=30) == 1
    said = check.output()
    assert "dynomatic check: app shop-a" in said and "dynomatic check: app gone-app" in said
    assert API_KEY not in said and DB_PASSWORD not in said
