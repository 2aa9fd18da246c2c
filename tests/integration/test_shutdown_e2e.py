"""Signals and hostile input with real processes: nothing goes out after a signal, no traceback."""

from __future__ import annotations

import resource
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest
from daemon_support import DaemonProcess, enqueue

from dynomatic_daemon.sandbox.heroku_standin import HerokuStandIn

pytestmark = [pytest.mark.postgres, pytest.mark.e2e]
CONFIG = """
[heroku]
app = "my-app"
resync_seconds = 0
timeout_seconds = 8
max_retries = 2

[daemon]
interval_seconds = 0.5

[[process]]
type = "worker"
adapter = "delayed_job"
scale_down_delay_seconds = 0
rules = [ { at_least = 0, dynos = 1 }, { at_least = 10, dynos = 5 } ]
"""


def config_file(tmp_path: Path) -> str:
    path = tmp_path / "dynomatic.toml"
    path.write_text(CONFIG)
    return str(path)


def run(spawn: Any, tmp_path: Path, env: dict[str, str], name: str) -> DaemonProcess:
    daemon: DaemonProcess = spawn(
        ["run", "--config", config_file(tmp_path), "--log-format", "json"], env, name
    )
    return daemon


def test_no_retry_goes_out_after_sigterm(
    tmp_path: Path,
    delayed_jobs: psycopg.Connection[Any],
    standin: HerokuStandIn,
    daemon_env: dict[str, str],
    spawn: Any,
) -> None:
    daemon = run(spawn, tmp_path, daemon_env, "term")
    assert standin.wait_for(lambda: bool(daemon.events("scale_decision")), timeout=15)
    standin.script(503, {"id": "unavailable", "message": "later"}, delay=1.0, method="PATCH")
    enqueue(delayed_jobs, 25)
    assert standin.wait_for(lambda: len(standin.patches()) == 1, timeout=10), daemon.output()
    code, _ = daemon.stop(timeout=15)  # SIGTERM while the PATCH waits for its 503
    assert code == 0, daemon.output()
    assert len(standin.patches()) == 1, daemon.output()
    assert standin.formation()["worker"] == 1
    assert all(e["action"] != "scaled" for e in daemon.events("scale_decision"))
    assert daemon.events("daemon_stopped"), daemon.output()


def test_sighup_stops_the_daemon_like_sigterm(
    tmp_path: Path,
    delayed_jobs: psycopg.Connection[Any],
    standin: HerokuStandIn,
    daemon_env: dict[str, str],
    spawn: Any,
) -> None:
    daemon = run(spawn, tmp_path, daemon_env, "hup")
    assert standin.wait_for(lambda: bool(daemon.events("scale_decision")), timeout=15)
    daemon.proc.send_signal(signal.SIGHUP)
    assert daemon.proc.wait(timeout=10) == 0, daemon.output()
    (requested,) = daemon.events("shutdown_requested")
    assert requested["signal"] == "SIGHUP"
    assert daemon.events("daemon_stopped"), daemon.output()


def test_sigint_to_once_exits_130_without_a_traceback(
    tmp_path: Path,
    delayed_jobs: psycopg.Connection[Any],
    standin: HerokuStandIn,
    daemon_env: dict[str, str],
    spawn: Any,
) -> None:
    standin.script(200, [], delay=5.0, method="GET")  # the formation read hangs
    once = spawn(["once", "--config", config_file(tmp_path)], daemon_env, "once")
    assert standin.wait_for(lambda: len(standin.requests) == 1, timeout=15), once.output()
    once.proc.send_signal(signal.SIGINT)
    assert once.proc.wait(timeout=10) == 130, once.output()
    assert "Traceback" not in once.output()
    assert "interrupted" in once.output()
    assert standin.patches() == []


def limit_memory() -> None:
    # Bounds the child, so a program that reads an endless file fails fast instead of eating RAM.
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


@pytest.mark.parametrize("command", ["check", "once", "run"])
def test_an_endless_config_file_is_refused_with_exit_2(
    command: str, daemon_env: dict[str, str]
) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "dynomatic_daemon", command, "--config", "/dev/zero"],
        env=daemon_env,
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=limit_memory,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "/dev/zero" in proc.stderr and "too large" in proc.stderr
