"""Secrets never reach any output of a real process: bad URLs, echoed errors, every command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest
from daemon_support import API_KEY, DB_PASSWORD

from dynomatic_daemon.sandbox.heroku_standin import HerokuStandIn

pytestmark = [pytest.mark.postgres, pytest.mark.e2e]
CONFIG = """
[heroku]
app = "my-app"
max_retries = 0

[daemon]
interval_seconds = 0.5

[[process]]
type = "worker"
adapter = "delayed_job"
rules = [ { at_least = 0, dynos = 1 }, { at_least = 10, dynos = 5 } ]
"""
COMMANDS = [["check"], ["once"], ["once", "--json"], ["run"]]


def dynomatic(
    args: list[str], env: dict[str, str], tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "dynomatic.toml"
    path.write_text(CONFIG)
    return subprocess.run(
        [sys.executable, "-m", "dynomatic_daemon", *args, "--config", str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
@pytest.mark.parametrize(
    ("url", "secret"),
    [
        ("postgresql://u:Pw%zzSeCrEt@127.0.0.1/db", "SeCrEt"),  # a broken percent-escape
        ("postgresql://u:My@Secret@127.0.0.1/db", "Secret"),  # an '@' left unencoded
        ("postgresql://u:Pw%2@127.0.0.1/db", "Pw%2"),  # a percent-escape cut short
    ],
    ids=["bad-escape", "unencoded-at", "short-escape"],
)
def test_a_malformed_database_url_is_a_config_error_that_never_shows_it(
    args: list[str], url: str, secret: str, daemon_env: dict[str, str], tmp_path: Path
) -> None:
    proc = dynomatic(args, {**daemon_env, "DATABASE_URL": url}, tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert "DATABASE_URL" in proc.stderr
    assert secret not in out and "Traceback" not in out, out


def test_check_and_once_json_scrub_a_secret_heroku_echoes_back(
    delayed_jobs: psycopg.Connection[Any],
    standin: HerokuStandIn,
    daemon_env: dict[str, str],
    tmp_path: Path,
) -> None:
    echo = {"id": "server_error", "message": f"echo {DB_PASSWORD} {API_KEY}"}
    for args in (["check"], ["once", "--json"]):
        standin.script(500, echo, times=3)
        proc = dynomatic(args, daemon_env, tmp_path)
        out = proc.stdout + proc.stderr
        assert proc.returncode == 1, out
        assert "echo ***" in out, out  # the message is kept, the secrets are not
        assert DB_PASSWORD not in out and API_KEY not in out, out
    document = json.loads(proc.stdout)
    assert "echo ***" in document["processes"][0]["reason"]
