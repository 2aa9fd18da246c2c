"""``dynomatic once`` and ``dynomatic check`` against real Postgres and the loopback stand-in."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
import pytest
from daemon_support import API_KEY, DB_PASSWORD

from dynomatic_daemon import cli
from dynomatic_daemon.sandbox.heroku_standin import HerokuStandIn

pytestmark = pytest.mark.postgres

CONFIG = """
[heroku]
app = "my-app"

[[process]]
type = "worker"
adapter = "delayed_job"
queues = ["default", "mailers"]
rules = [
  { at_least = 0,  dynos = 1 },
  { at_least = 10, dynos = 5 },
  { at_least = 20, dynos = 10 },
  { at_least = 30, dynos = 15 },
]

[[process]]
type = "urgent"
adapter = "delayed_job"
queues = ["critical"]
worker_names = ["urgent1", "urgent2", "urgent3"]
rules = [ { at_least = 0, dynos = 0 }, { at_least = 1, dynos = 1 }, { at_least = 50, dynos = 3 } ]
"""


@pytest.fixture
def configured(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    standin: HerokuStandIn,
    secret_db_url: str,
    delayed_jobs: psycopg.Connection[Any],
) -> Path:
    path = tmp_path / "dynomatic.toml"
    path.write_text(CONFIG)
    monkeypatch.setenv("HEROKU_API_KEY", API_KEY)
    monkeypatch.setenv("DATABASE_URL", secret_db_url)
    monkeypatch.setenv("DYNOMATIC_HEROKU_API_URL", standin.url)
    return path


def add(conn: psycopg.Connection[Any], queue: str | None, count: int, **state: Any) -> None:
    run_in = state.get("run_in", -120)
    locked_ago = state.get("locked_ago")
    conn.execute(
        """
        INSERT INTO delayed_jobs (handler, queue, run_at, locked_at, failed_at, created_at,
                                  updated_at)
        SELECT 'h', %(queue)s,
               now() AT TIME ZONE 'UTC' + make_interval(secs => %(run_in)s),
               now() AT TIME ZONE 'UTC' - make_interval(secs => %(locked_ago)s),
               CASE WHEN %(failed)s THEN now() AT TIME ZONE 'UTC' END, now(), now()
        FROM generate_series(1, %(count)s)
        """,
        {
            "queue": queue,
            "count": count,
            "run_in": run_in,
            "locked_ago": locked_ago,
            "failed": state.get("failed", False),
        },
    )


def test_once_dry_run_json_matches_a_hand_count_and_writes_nothing(
    configured: Path,
    delayed_jobs: psycopg.Connection[Any],
    standin: HerokuStandIn,
    capsys: pytest.CaptureFixture[str],
) -> None:
    add(delayed_jobs, "default", 12)  # ready
    add(delayed_jobs, None, 3)  # ready, reported under "default"
    add(delayed_jobs, "default", 4, run_in=600)  # future
    add(delayed_jobs, "default", 5, failed=True)  # failed
    add(delayed_jobs, "default", 2, locked_ago=60)  # running
    add(delayed_jobs, "mailers", 6)  # ready
    add(delayed_jobs, "mailers", 1, run_in=-5 * 3600, locked_ago=5 * 3600)  # abandoned lock: ready
    add(delayed_jobs, "critical", 2)  # ready, hobby-mode type
    add(delayed_jobs, "other", 9)  # belongs to no process type

    assert cli.main(["once", "--dry-run", "--json", "--config", str(configured)]) == 0
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert doc["app"] == "my-app"
    worker, urgent = doc["processes"]
    assert worker["type"] == "worker" and worker["adapter"] == "delayed_job"
    queues = {name: (q["ready"], q["running"]) for name, q in worker["queues"].items()}
    assert queues == {"default": (15, 2), "mailers": (7, 0)}
    assert worker["totals"]["ready"] == 22 and worker["totals"]["running"] == 2
    assert worker["queues"]["mailers"]["oldest_ready_age_seconds"] >= 5 * 3600 - 5
    assert 119 <= worker["queues"]["default"]["oldest_ready_age_seconds"] < 180
    assert (worker["current"], worker["desired"], worker["action"]) == (1, 10, "dry_run")
    assert worker["rule"] == "rules[at_least=20]"
    assert urgent["queues"]["critical"]["ready"] == 2
    assert (urgent["current"], urgent["desired"], urgent["action"]) == (0, 1, "dry_run")
    assert urgent["updates"] == {"urgent1": 1}
    assert standin.patches() == []
    assert standin.formation()["worker"] == 1
    assert "scale_decision" in err  # the log lines went to stderr, the JSON alone to stdout
    assert API_KEY not in out + err and DB_PASSWORD not in out + err


def test_once_without_dry_run_scales(
    configured: Path,
    delayed_jobs: psycopg.Connection[Any],
    standin: HerokuStandIn,
    capsys: pytest.CaptureFixture[str],
) -> None:
    add(delayed_jobs, "mailers", 60)
    assert cli.main(["once", "--config", str(configured), "--log-format", "logfmt"]) == 0
    out = capsys.readouterr().out
    assert standin.formation()["worker"] == 15
    line = next(x for x in out.splitlines() if "process_type=worker" in x)
    assert line.startswith("at=info event=scale_decision")
    # one read serves both types, so the count stops at the larger cap (urgent's 50, plus one)
    assert "ready=51 ready_capped=true" in line
    assert "action=scaled" in line and "desired=15" in line


def test_check_reports_every_part(
    configured: Path, standin: HerokuStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["check", "--config", str(configured)]) == 0
    out = capsys.readouterr().out
    assert "ok    database for delayed_job: PostgreSQL" in out
    assert "read-only on" in out
    assert "ok    adapter delayed_job" in out
    assert "ok    process urgent: in formation: urgent1=0, urgent2=0, urgent3=0" in out
    assert "all checks passed" in out
    assert standin.patches() == []


def test_check_fails_clearly_on_a_missing_worker_name(
    configured: Path, standin: HerokuStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    configured.write_text(CONFIG.replace('"urgent3"]', '"urgent4"]'))
    assert cli.main(["check", "--config", str(configured)]) == 1
    out = capsys.readouterr().out
    assert "FAIL  process urgent: process type 'urgent4' is not in the app's formation" in out
    assert "Procfile" in out


def test_check_fails_clearly_without_the_table(
    configured: Path, delayed_jobs: psycopg.Connection[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    delayed_jobs.execute("DROP TABLE delayed_jobs")
    assert cli.main(["check", "--config", str(configured)]) == 1
    out = capsys.readouterr().out
    assert "FAIL  adapter delayed_job: UndefinedTable" in out
    assert DB_PASSWORD not in out


def test_check_fails_clearly_on_a_bad_api_key(
    configured: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HEROKU_API_KEY", "wrong-key-123456")
    assert cli.main(["check", "--config", str(configured)]) == 1
    out = capsys.readouterr().out
    assert "FAIL  heroku:" in out and "unauthorized" in out
    assert "wrong-key-123456" not in out


def test_auto_detects_delayed_job(
    configured: Path, standin: HerokuStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    configured.write_text(CONFIG.replace('adapter = "delayed_job"\n', ""))
    assert cli.main(["once", "--dry-run", "--json", "--config", str(configured)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [p["adapter"] for p in doc["processes"]] == ["delayed_job", "delayed_job"]


def test_check_says_what_auto_detection_found(
    configured: Path, standin: HerokuStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    configured.write_text(CONFIG.replace('adapter = "delayed_job"\n', ""))
    assert cli.main(["check", "--config", str(configured)]) == 0
    out = capsys.readouterr().out
    assert "ok    auto-detected adapter: delayed_job: found table" in out
    assert "run_at, locked_at, failed_at" in out
