"""Chaos soak: the real tick under random database and Heroku faults while the queue changes.

Runs a bounded number of ticks (default 2,000) on a steppable clock (10 simulated seconds a tick,
so backoffs and pauses play out) against a real PostgreSQL and the loopback Heroku stand-in, and
prints: ticks, faults injected by kind, crashes (must be 0), wrong-direction scale actions on
missing data (must be 0), secrets seen in any output (must be 0), and RSS at start and end.
Exit code 1 if any must-be-zero count is not zero.

    python -m benchmarks.chaos [--ticks 2000] [--seed 7]
"""

from __future__ import annotations

import argparse
import io
import random
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import psycopg
import structlog
from psycopg import conninfo

from benchmarks.common import scratch_database, server
from dynomatic_daemon import config, logs, wiring
from dynomatic_daemon.clock import SteppableClock
from dynomatic_daemon.sandbox.heroku_standin import HerokuStandIn
from dynomatic_daemon.sandbox.schemas import SCHEMAS

API_KEY = "hk-chaos-SECRET-4b1d9e"
DB_PASSWORD = "pw-chaos-SECRET-77aa"
FIXTURE = SCHEMAS / "delayed_job.sql"
CONFIG = """
[heroku]
app = "chaos-app"
timeout_seconds = 0.3
max_retries = 1
[database]
statement_timeout_ms = 200
connect_timeout_seconds = 2
[[process]]
type = "worker"
adapter = "delayed_job"
queues = ["default"]
scale_down_delay_seconds = 60
fallback_dynos = 3
rules = [ { at_least = 0, dynos = 1 }, { at_least = 10, dynos = 4 }, { at_least = 50, dynos = 8 } ]
[[process]]
type = "urgent"
adapter = "delayed_job"
queues = ["critical"]
worker_names = ["urgent1", "urgent2"]
scale_down_delay_seconds = 0
rules = [ { at_least = 0, dynos = 0 }, { at_least = 5, dynos = 2 } ]
"""
FORMATION = {"web": 1, "worker": 1, "urgent1": 0, "urgent2": 0}


class Soak:
    def __init__(self, url: str, standin: HerokuStandIn, seed: int, workdir: Path) -> None:
        self.rng = random.Random(seed)
        self.url, self.standin = url, standin
        self.admin = psycopg.connect(url, autocommit=True)
        self.admin.execute(FIXTURE.read_text())
        self.output = io.StringIO()
        secret_url = conninfo.make_conninfo(url, password=DB_PASSWORD)
        path = workdir / "chaos.toml"
        path.write_text(CONFIG)
        env = {
            "HEROKU_API_KEY": API_KEY,
            "DATABASE_URL": secret_url,
            "DYNOMATIC_HEROKU_API_URL": standin.url,
        }
        settings = config.load(path, env)
        logs.configure("json", stream=self.output, secrets=wiring.secrets_of(settings))
        self.clock = SteppableClock()
        self.built = wiring.build(settings, structlog.get_logger(), lock=True, clock=self.clock)
        self.faults: Counter[str] = Counter()
        self.crashes = self.wrong_direction = 0

    def run(self, ticks: int) -> None:
        for _ in range(ticks):
            self._change_queue()
            kind = self.rng.choice(list(FAULTS)) if self.rng.random() < 0.25 else None
            if kind:
                self.faults[kind] += 1
            before = self.standin.formation()
            patches = len(self.standin.patches())
            with FAULTS[kind](self) if kind else nullcontext():
                try:
                    outcomes = self.built.ticker.tick()
                except Exception:  # noqa: BLE001 - counting escapes is the point
                    self.crashes += 1
                    outcomes = []
            self._check_direction(outcomes, before, patches)
            self.clock.advance(10)

    def close(self) -> None:
        self.built.stack.close()
        self.admin.close()

    def secrets_seen(self) -> int:
        text = self.output.getvalue()
        return text.count(API_KEY) + text.count(DB_PASSWORD)

    def _change_queue(self) -> None:
        roll = self.rng.random()
        if roll < 0.3:
            queue = self.rng.choice(["default", "default", "critical"])
            self.admin.execute(
                "INSERT INTO delayed_jobs (handler, queue, run_at, created_at, updated_at)"
                " SELECT 'h', %s, now() AT TIME ZONE 'UTC', now(), now()"
                " FROM generate_series(1, %s)",
                (queue, self.rng.randint(1, 40)),
            )
        elif roll < 0.55:
            self.admin.execute(
                "DELETE FROM delayed_jobs WHERE id IN (SELECT id FROM delayed_jobs"
                " ORDER BY random() LIMIT %s)",
                (self.rng.randint(1, 60),),
            )

    def _check_direction(self, outcomes: list[Any], before: dict[str, int], patches: int) -> None:
        sent: dict[str, int] = {}
        for request in self.standin.patches()[patches:]:
            sent.update({u["type"]: u["quantity"] for u in request.body["updates"]})
        for out in outcomes:
            if "queue read failed" not in out.reason:
                continue
            for ftype in out.process.formation_types:
                if ftype in sent and sent[ftype] < before.get(ftype, 0):
                    self.wrong_direction += 1


@contextmanager
def kill_connections(soak: Soak) -> Iterator[None]:
    soak.admin.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE"
        " application_name LIKE 'dynomatic%%' AND datname = current_database()"
    )
    yield


@contextmanager
def slow_query(soak: Soak) -> Iterator[None]:
    with psycopg.connect(soak.url) as blocker:  # an exclusive lock outlasts statement_timeout
        blocker.execute("LOCK TABLE delayed_jobs IN ACCESS EXCLUSIVE MODE")
        yield
        blocker.rollback()


@contextmanager
def table_gone(soak: Soak) -> Iterator[None]:
    soak.admin.execute("ALTER TABLE delayed_jobs RENAME TO delayed_jobs_away")
    try:
        yield
    finally:
        soak.admin.execute("ALTER TABLE delayed_jobs_away RENAME TO delayed_jobs")


def heroku(status: int, body: dict[str, str], **kw: Any) -> Callable[[Soak], Any]:
    @contextmanager
    def inject(soak: Soak) -> Iterator[None]:
        soak.standin.script(status, body, times=soak.rng.randint(1, 3), **kw)
        yield
        soak.standin.clear_script()  # a fault lasts one tick

    return inject


@contextmanager
def manual_scale(soak: Soak) -> Iterator[None]:
    soak.standin.set_quantity("worker", soak.rng.randint(0, 9))
    yield


FAULTS: dict[str, Callable[[Soak], Any]] = {
    "db_connection_killed": kill_connections,
    "db_statement_timeout": slow_query,
    "db_table_dropped": table_gone,
    "heroku_503": heroku(503, {"id": "unavailable", "message": "down"}),
    "heroku_429": heroku(
        429, {"id": "rate_limit", "message": "slow down"}, headers={"RateLimit-Remaining": "0"}
    ),
    "heroku_401": heroku(401, {"id": "unauthorized", "message": f"bad {API_KEY}"}),
    "heroku_422": heroku(422, {"id": "invalid_params", "message": "no"}, method="PATCH"),
    "heroku_timeout": heroku(200, {"id": "late"}, delay=0.5),
    "manual_scale": manual_scale,
}


def rss_mb() -> float:
    """Resident memory now (Linux), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.chaos", description=__doc__)
    parser.add_argument("--ticks", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    start_rss = rss_mb()
    with (
        tempfile.TemporaryDirectory() as workdir,
        server() as srv,
        scratch_database(srv) as url,
        HerokuStandIn(
            app="chaos-app",
            api_key=API_KEY,
            formation=FORMATION,
            sizes={"urgent1": "Basic", "urgent2": "Basic"},
            rate_limit=1_000_000,
        ) as standin,
    ):
        soak = Soak(url, standin, args.seed, Path(workdir))
        try:
            soak.run(args.ticks)
        finally:
            soak.close()
    rows = [
        ("ticks", args.ticks),
        *((f"faults: {k}", n) for k, n in sorted(soak.faults.items())),
        ("faults: total", sum(soak.faults.values())),
        ("crashes (must be 0)", soak.crashes),
        ("wrong-direction actions on missing data (must be 0)", soak.wrong_direction),
        ("secrets seen (must be 0)", soak.secrets_seen()),
        ("API calls received by the stand-in", len(standin.requests)),
        ("RSS at start, MB", f"{start_rss:.1f}"),
        ("RSS at end, MB", f"{rss_mb():.1f}"),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    failed = soak.crashes or soak.wrong_direction or soak.secrets_seen()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
