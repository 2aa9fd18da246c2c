"""What a new user meets in the first hour: the messages that say what to do, a closed pipe, the
gem's HEROKU_TOKEN, and ``dynomatic standin`` to test against."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from daemon_support import API_KEY, DB_PASSWORD, enqueue
from psycopg import conninfo

from dynomatic_daemon import cli
from dynomatic_daemon.sandbox.heroku_standin import HerokuStandIn

pytestmark = pytest.mark.postgres

CONFIG = """
[heroku]
app = "my-app"

[daemon]
interval_seconds = 0.5

[[process]]
type = "{type}"
rules = [ {{ at_least = 0, dynos = 1 }}, {{ at_least = 10, dynos = 3 }} ]
"""


@pytest.fixture
def configured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, standin: HerokuStandIn, secret_db_url: str
) -> Path:
    path = tmp_path / "dynomatic.toml"
    path.write_text(CONFIG.format(type="worker"))
    monkeypatch.setenv("HEROKU_API_KEY", API_KEY)
    monkeypatch.setenv("DATABASE_URL", secret_db_url)
    monkeypatch.setenv("DYNOMATIC_HEROKU_API_URL", standin.url)
    return path


def test_auto_detection_that_finds_nothing_says_where_it_looked(
    configured: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["check", "--config", str(configured)]) == 2
    err = capsys.readouterr().err
    params = conninfo.conninfo_to_dict(db_url)
    where = f"database {params['dbname']} on {params['host']}:{params['port']} ($DATABASE_URL)"
    assert f"found no known queue tables in {where}, schemas " in err, err
    assert "graphile_worker, pgboss, pgmq, public;" in err  # the libraries' own and search_path's
    assert DB_PASSWORD not in err


def test_check_offers_the_closest_process_type_of_the_formation(
    configured: Path, delayed_jobs: psycopg.Connection[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    configured.write_text(CONFIG.format(type="wroker"))
    assert cli.main(["check", "--config", str(configured)]) == 1
    out = capsys.readouterr().out
    assert "FAIL  process wroker: process type 'wroker' is not in" in out
    assert "did you mean 'worker'?" in out
    configured.write_text(CONFIG.format(type="mailer"))
    assert cli.main(["check", "--config", str(configured)]) == 1
    out = capsys.readouterr().out
    assert "the formation has urgent1, urgent2, urgent3, web, worker" in out


def test_the_gems_heroku_token_works_with_one_notice_line_at_start(
    configured: Path,
    delayed_jobs: psycopg.Connection[Any],
    standin: HerokuStandIn,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("HEROKU_API_KEY")
    monkeypatch.setenv("HEROKU_TOKEN", API_KEY)
    enqueue(delayed_jobs, 12)
    argv = ["once", "--config", str(configured), "--log-format", "logfmt"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    notices = [line for line in out.splitlines() if "event=config_notice" in line]
    assert len(notices) == 1 and "HEROKU_TOKEN" in notices[0], out
    assert out.splitlines()[0] == notices[0]  # at start, before any decision
    assert API_KEY not in out
    assert standin.formation()["worker"] == 3  # the token really was used to scale


def spawn_into_closed_pipe(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    """``dynomatic ARGS`` writing into a pipe whose reader is gone, as after ``| head -1``."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "dynomatic_daemon", *args],
            env=env,
            stdout=write_end,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
    finally:
        os.close(write_end)


@pytest.mark.e2e
@pytest.mark.parametrize(
    "argv", [["check", "--config", "{config}"], ["run", "--config", "{config}"],
             ["demo", "--duration", "120"]],
)  # fmt: skip
def test_a_reader_that_goes_away_ends_the_command_quietly(
    configured: Path,
    delayed_jobs: psycopg.Connection[Any],
    daemon_env: dict[str, str],
    argv: list[str],
) -> None:
    args = [a.format(config=configured) for a in argv]
    proc = spawn_into_closed_pipe(args, daemon_env)
    try:
        _, err = proc.communicate(timeout=60)  # `run` and `demo` too end by themselves
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, err
    assert "BrokenPipe" not in err and "Exception ignored" not in err and err == "", err


@pytest.mark.e2e
def test_dynomatic_standin_serves_a_formation_the_daemon_can_scale(
    tmp_path: Path, delayed_jobs: psycopg.Connection[Any], secret_db_url: str
) -> None:
    command = [sys.executable, "-m", "dynomatic_daemon", "standin", "--app", "my-app",
               "--api-key", "local-key", "--formation", "web=1,worker=0"]  # fmt: skip
    pipe = subprocess.PIPE
    with subprocess.Popen(command, stdout=pipe, stderr=pipe, text=True) as proc:
        try:
            assert proc.stdout is not None
            url = proc.stdout.readline().strip()
            assert url.startswith("http://127.0.0.1:"), url
            enqueue(delayed_jobs, 12)
            path = tmp_path / "dynomatic.toml"
            path.write_text(CONFIG.format(type="worker"))
            env = {**os.environ, "HEROKU_API_KEY": "local-key", "DATABASE_URL": secret_db_url,
                   "DYNOMATIC_HEROKU_API_URL": url}  # fmt: skip
            once = subprocess.run(
                [sys.executable, "-m", "dynomatic_daemon", "once", "--config", str(path)],
                env=env, capture_output=True, text=True, timeout=60, check=False,
            )  # fmt: skip
            assert once.returncode == 0, once.stdout + once.stderr
            headers = {"Accept": "application/vnd.heroku+json; version=3",
                       "Authorization": "Bearer local-key"}  # fmt: skip
            items = httpx.get(f"{url}/apps/my-app/formation", headers=headers, timeout=5).json()
            assert {i["type"]: i["quantity"] for i in items} == {"web": 1, "worker": 3}
        finally:
            started = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert time.monotonic() - started < 5
    assert "DYNOMATIC_HEROKU_API_URL" in err  # it says how to point the daemon at it
