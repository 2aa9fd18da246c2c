"""The daemon under measurement: a scratch delayed_job database, the stand-in, a config file."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from benchmarks.common import scratch_database, server
from dynomatic_daemon.sandbox.heroku_standin import HerokuStandIn
from dynomatic_daemon.sandbox.schemas import SCHEMAS

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = SCHEMAS / "delayed_job.sql"
API_KEY = "hk-bench-0000"
RULES = (
    "rules = [ { at_least = 0, dynos = 1 }, { at_least = 10, dynos = 5 },"
    " { at_least = 20, dynos = 10 } ]"
)


def config_text(interval: float, delay: float = 2, resync: float = 60) -> str:
    return f"""
[heroku]
app = "bench-app"
resync_seconds = {resync}
[daemon]
interval_seconds = {interval}
[[process]]
type = "worker"
adapter = "delayed_job"
scale_down_delay_seconds = {delay}
{RULES}
"""


@dataclass
class Rig:
    url: str
    standin: HerokuStandIn
    workdir: Path
    admin: psycopg.Connection[Any]

    def env(self) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items() if not k.startswith(("DYNOMATIC_", "HEROKU_"))}
        return {
            **keep,
            "HEROKU_API_KEY": API_KEY,
            "DATABASE_URL": self.url,
            "DYNOMATIC_HEROKU_API_URL": self.standin.url,
            "PYTHONUNBUFFERED": "1",
        }

    def config(self, text: str) -> Path:
        path = self.workdir / "dynomatic.toml"
        path.write_text(text)
        return path

    def enqueue(self, count: int, queue: str = "default") -> None:
        self.admin.execute(
            "INSERT INTO delayed_jobs (handler, queue, run_at, created_at, updated_at)"
            " SELECT 'h', %s, now() AT TIME ZONE 'UTC', now(), now()"
            " FROM generate_series(1, %s)",
            (queue, count),
        )

    def drain(self) -> None:
        self.admin.execute("DELETE FROM delayed_jobs")

    def spawn(
        self, config: Path, log: Path, python: Path | str = sys.executable
    ) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [
                str(python),
                "-m",
                "dynomatic_daemon",
                "run",
                "--config",
                str(config),
                "--log-format",
                "json",
            ],
            env=self.env(),
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


@contextmanager
def rig(workdir: Path, formation: dict[str, int] | None = None) -> Iterator[Rig]:
    with (
        server() as srv,
        scratch_database(srv) as url,
        HerokuStandIn(
            app="bench-app",
            api_key=API_KEY,
            formation=formation or {"web": 1, "worker": 1},
            rate_limit=10_000_000,
        ) as standin,
        psycopg.connect(url, autocommit=True) as admin,
    ):
        admin.execute(FIXTURE.read_text())
        yield Rig(url, standin, workdir, admin)
