"""A day of the demo workload, accelerated: the real tick, on a steppable clock, for 24 simulated
hours against real PostgreSQL (delayed_job rows) and the loopback Heroku stand-in, with history
on. The clock ends at the real present, so ``--since 24h`` covers the day.

Tests compare what ``history``, ``report`` and the status page show with the rows recorded, and
the rows with what each tick saw (``Day.seen``).
"""

from __future__ import annotations

import html
import random
import re
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from dynomatic_daemon import config, wiring
from dynomatic_daemon.clock import SteppableClock
from dynomatic_daemon.sandbox.heroku_standin import HerokuStandIn
from dynomatic_daemon.sandbox.schemas import SCHEMAS

APP = "day-app"
API_KEY = "hk-day-secret-31337"
DAY_PASSWORD = "day-page-pw-5521"
INTERVAL = 30
TICKS = 24 * 3600 // INTERVAL
CONFIG = f"""
[heroku]
app = "{APP}"
[daemon]
interval_seconds = {INTERVAL}
[history]
enabled = true
[http]
page_hours = 25
[[process]]
type = "worker"
adapter = "delayed_job"
queues = ["default"]
jobs_per_dyno = 25
max_dynos = 10
scale_down_delay_seconds = 120
latency_rules = [ {{ at_least_seconds = 300, dynos = 4 }} ]
[[process]]
type = "urgent"
adapter = "delayed_job"
queues = ["critical"]
worker_names = ["urgent1", "urgent2"]
scale_down_delay_seconds = 60
rules = [
  {{ at_least = 0, dynos = 0 }}, {{ at_least = 1, dynos = 1 }}, {{ at_least = 20, dynos = 2 }},
]
"""


class NullLog:
    def __getattr__(self, _name: str) -> Any:
        return lambda *args, **kwargs: None


@dataclass
class Day:
    url: str
    config_path: Path
    start: datetime
    end: datetime
    # (process type, minute) -> what the ticks of that minute saw: ready, latency, dynos after
    seen: dict[tuple[str, datetime], list[tuple[Any, Any, Any]]] = field(default_factory=dict)
    scaled: int = 0
    last_tick: list[Any] = field(default_factory=list)  # the outcomes of the day's last tick
    written: int = 0
    dropped: int = 0
    failed: int = 0

    def env(self) -> dict[str, str]:
        return {"HEROKU_API_KEY": API_KEY, "DATABASE_URL": self.url}


def trace(rng: random.Random) -> dict[str, list[int]]:
    """Ready jobs per tick per queue: a trickle plus bursts that drain over 10-60 minutes."""
    depth = {"default": [rng.randint(0, 3) for _ in range(TICKS)], "critical": [0] * TICKS}
    for queue, bursts, sizes in (("default", 10, (60, 400)), ("critical", 6, (5, 40))):
        for _ in range(bursts):
            start, size, drain = rng.randrange(TICKS), rng.randint(*sizes), rng.randint(20, 120)
            for i in range(min(drain, TICKS - start)):
                depth[queue][start + i] += int(size * (1 - i / drain))
    return depth


class Jobs:
    """Keeps delayed_jobs at the traced depth, the oldest job as old as the backlog implies."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        self.count: dict[str, int] = defaultdict(int)

    def set(self, queue: str, wanted: int) -> None:
        have = self.count[queue]
        if wanted > have:
            self.conn.execute(
                "INSERT INTO delayed_jobs (handler, queue, run_at, created_at, updated_at) "
                "SELECT 'h', %s, now() AT TIME ZONE 'UTC', now(), now() "
                "FROM generate_series(1, %s)",
                (queue, wanted - have),
            )
        elif wanted < have:
            self.conn.execute(
                "DELETE FROM delayed_jobs WHERE id IN (SELECT id FROM delayed_jobs "
                "WHERE queue = %s ORDER BY id DESC LIMIT %s)",
                (queue, have - wanted),
            )
        self.count[queue] = wanted
        if wanted:
            self.conn.execute(
                "UPDATE delayed_jobs SET run_at = (now() AT TIME ZONE 'UTC') - make_interval("
                "secs => %s) WHERE id = (SELECT min(id) FROM delayed_jobs WHERE queue = %s)",
                (min(900, 2 * wanted), queue),
            )


def record_day(url: str, workdir: Path, seed: int = 11) -> Day:
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute((SCHEMAS / "delayed_job.sql").read_text())
    path = workdir / "dynomatic.toml"
    path.write_text(CONFIG)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    start = now - timedelta(seconds=TICKS * INTERVAL) + timedelta(seconds=5)
    clock = SteppableClock(start)
    formation = {"web": 1, "worker": 1, "urgent1": 0, "urgent2": 0}
    sizes = {"worker": "Standard-1X", "urgent1": "Basic", "urgent2": "Basic"}
    day = Day(url, path, start, start)
    with (
        HerokuStandIn(
            app=APP, api_key=API_KEY, formation=formation, sizes=sizes, rate_limit=10**7
        ) as standin,
        psycopg.connect(url, autocommit=True) as conn,
    ):
        env = {**day.env(), "DYNOMATIC_HEROKU_API_URL": standin.url}
        settings = config.load(path, env)
        log = NullLog()
        built = wiring.build(settings, log, lock=True, clock=clock)
        watching = wiring.observe(settings, log, clock)
        built.ticker.observer = watching.hub
        jobs, depth = Jobs(conn), trace(random.Random(seed))
        with built.stack, watching.stack:
            for i in range(TICKS):
                for queue in depth:
                    jobs.set(queue, depth[queue][i])
                at = clock.now()
                day.last_tick = built.ticker.tick()
                for out in day.last_tick:
                    dynos = None
                    if out.decision is not None:
                        scaled = out.action == "scaled"
                        dynos = out.decision.desired if scaled else out.decision.current
                    stats = out.stats
                    seen = (
                        stats.ready if stats else None,
                        stats.oldest_ready_age_seconds if stats else None,
                        dynos,
                    )
                    day.seen.setdefault((out.process.type, at.replace(second=0)), []).append(seen)
                    day.scaled += out.action == "scaled"
                clock.advance(INTERVAL)
            writer = watching.writer
            assert writer is not None
            deadline = time.monotonic() + 60
            while writer.pending and time.monotonic() < deadline:
                time.sleep(0.05)  # a real thread draining a real queue: poll with a deadline
        day.written, day.dropped, day.failed = writer.written, writer.dropped, writer.failed
    day.end = clock.now()
    return day


FIGURE = re.compile(
    r'<figure data-type="([^"]+)" data-chart="([^"]+)" data-origin="([^"]+)">(.*?)</figure>', re.S
)
PATH = re.compile(r'data-series="([^"]*)" data-axis="[^"]*" data-points="([^"]*)"')


def charted(page: str) -> dict[tuple[str, str, str], list[tuple[datetime, float | None]]]:
    """(process type, chart, series) -> the (time, y) points each SVG path says it draws
    (x is minutes since the figure's data-origin)."""
    found = {}
    for ptype, chart, origin, body in FIGURE.findall(page):
        start = datetime.fromisoformat(html.unescape(origin))
        for series, points in PATH.findall(body):
            pairs = [p.split(",") for p in html.unescape(points).split(";") if p]
            found[(html.unescape(ptype), chart, series)] = [
                (start + timedelta(minutes=float(x)), float(y) if y else None) for x, y in pairs
            ]
    return found


def stored_samples(url: str) -> list[dict[str, Any]]:
    with psycopg.connect(url) as conn, conn.cursor(row_factory=dict_row) as cur:
        cur.execute("SELECT * FROM dynomatic.samples ORDER BY process_type, minute")
        return cur.fetchall()


def stored_events(url: str) -> list[dict[str, Any]]:
    with psycopg.connect(url) as conn, conn.cursor(row_factory=dict_row) as cur:
        cur.execute("SELECT * FROM dynomatic.events ORDER BY at, id")
        return cur.fetchall()
