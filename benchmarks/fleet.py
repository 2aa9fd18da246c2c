"""Several apps from one scaler: 100 apps x 3 process types from one daemon process.

One PostgreSQL database holds a schema per app (each with its own delayed_jobs table), one
loopback stand-in serves every app under one token, and the real daemon runs as a child process
(`dynomatic run` on a config of [[app]] blocks). Measured from outside: the CPU time and peak
RSS of the daemon's process (/proc), the API requests it sent (the stand-in's count), and how
late each tick started (the daemon's own ``fleet_ticks`` lines, and the gaps between one app's
``scale_decision`` lines).

- main: 100 apps, interval 10 s: p99 lag, CPU % of one core, peak RSS, requests per token.
- cost: per-app tick cost (CPU ms per app tick) at 1, 10 and 100 apps.
- faults: 10 of the 100 apps broken (a database that never answers, a revoked token, an app the
  API does not know); the other 90 must scale and keep their turns.
- day: the per-token budget over a simulated day with bursts (in process, a steppable clock).

    python -m benchmarks.fleet [--apps 100] [--seconds 180] [--quick]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import psycopg

from benchmarks.common import machine, scratch_database, server
from benchmarks.report import print_table, table, update_section
from dynomatic_daemon.api_budget import HEROKU_BUCKET, TokenBudget
from dynomatic_daemon.clock import SteppableClock
from dynomatic_daemon.sandbox.heroku_standin import HerokuStandIn
from dynomatic_daemon.sandbox.schemas import SCHEMAS

API_KEY = "hk-bench-fleet-0000"
REVOKED = "hk-bench-revoked-0000"
FORMATION = {"web": 1, "worker": 1, "urgent": 0, "low": 0}
HEAD = """
[fleet]
concurrency = 8

[defaults.heroku]
api_url = "{api_url}"
timeout_seconds = 5
max_retries = 1

[defaults.database]
connect_timeout_seconds = 3

[defaults.daemon]
interval_seconds = {interval}

[defaults.process]
adapter = "delayed_job"
scale_down_delay_seconds = 0
"""
APP = """
[[app]]
name = "{name}"
{extra}
adapters = {{ delayed_job = {{ schema = "{schema}" }} }}
[[app.process]]
type = "worker"
queues = ["default"]
rules = [ {{ at_least = 0, dynos = 1 }}, {{ at_least = 10, dynos = 3 }} ]
[[app.process]]
type = "urgent"
queues = ["critical"]
rules = [ {{ at_least = 0, dynos = 0 }}, {{ at_least = 1, dynos = 1 }} ]
[[app.process]]
type = "low"
queues = ["low"]
jobs_per_dyno = 50
max_dynos = 4
"""
DAEMON = (sys.executable, "-m", "dynomatic_daemon", "run")
BROKEN_KINDS = ("database", "token", "app")  # a black-hole database, a 401, a 404


def name_of(i: int) -> str:
    return f"app-{i:03d}"


@dataclass
class Run:
    """What one daemon run measured."""

    apps: int
    interval: float
    seconds: float
    cpu_seconds: float = 0.0
    peak_rss_mb: float = 0.0
    peak_connections: int = 0  # the daemon's sessions on the database server
    requests: int = 0
    ticks: int = 0
    window_p99: list[float] = field(default_factory=list)
    gaps: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    scaled: set[str] = field(default_factory=set)
    window: tuple[float, float] = (0.0, 0.0)  # wall-clock span CPU was measured over

    @property
    def cpu_percent(self) -> float:
        return 100.0 * self.cpu_seconds / self.seconds

    @property
    def p99_lag(self) -> float:
        """The worst window's p99 of how late ticks started, in seconds."""
        return max(self.window_p99, default=float("nan"))

    @property
    def gap_p99(self) -> float:
        """p99 of how much later than one interval each app's tick followed its previous one."""
        extra = sorted(g - self.interval for gaps in self.gaps.values() for g in gaps)
        return extra[min(len(extra) - 1, int(len(extra) * 0.99))] if extra else float("nan")

    @property
    def late_gaps(self) -> int:
        """Ticks of one app more than an interval plus a second after its previous one."""
        return sum(1 for g in self.gaps.values() for x in g if x > self.interval + 1.0)


@contextmanager
def black_hole() -> Iterator[int]:
    """A port that takes connections into the kernel's backlog and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        yield sock.getsockname()[1]


def prepare(url: str, apps: int) -> None:
    """A schema per app with its own delayed_jobs table, and work in every queue."""
    ddl = (SCHEMAS / "delayed_job.sql").read_text()
    with psycopg.connect(url, autocommit=True) as conn:
        for i in range(apps):
            schema = f"s{i:03d}"
            conn.execute(f"CREATE SCHEMA {schema}")
            conn.execute(f"SET search_path = {schema}")
            conn.execute(ddl)
            conn.execute(
                "INSERT INTO delayed_jobs (handler, queue, run_at, created_at, updated_at) "
                "SELECT 'h', q, now() AT TIME ZONE 'UTC', now(), now() "
                "FROM unnest(ARRAY['default','critical','low']) q, generate_series(1, 12)"
            )


def config_text(api_url: str, interval: float, apps: int, broken: dict[int, str]) -> str:
    blocks = []
    for i in range(apps):
        kind = broken.get(i)
        extra = {
            "database": 'url_env = "BROKEN_DATABASE_URL"',
            "token": 'api_key_env = "REVOKED_KEY"',
        }.get(kind or "", "")
        name = f"gone-{i:03d}" if kind == "app" else name_of(i)
        blocks.append(APP.format(name=name, extra=extra, schema=f"s{i:03d}"))
    return HEAD.format(api_url=api_url, interval=interval) + "".join(blocks)


def run_daemon(
    db_url: str, apps: int, interval: float, seconds: float, broken: dict[int, str] | None = None
) -> Run:
    broken = broken or {}
    result = Run(apps, interval, seconds)
    with (
        HerokuStandIn(name_of(0), API_KEY, FORMATION, rate_limit=10**9) as api,
        black_hole() as port,
        tempfile.TemporaryDirectory() as tmp,
    ):
        for i in range(1, apps):
            api.add_app(name_of(i), FORMATION)
        path = Path(tmp) / "fleet.toml"
        path.write_text(config_text(api.url, interval, apps, broken))
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("DYNOMATIC_", "HEROKU_"))},
            "HEROKU_API_KEY": API_KEY,
            "REVOKED_KEY": REVOKED,
            "DATABASE_URL": db_url,
            "BROKEN_DATABASE_URL": f"postgresql://u:pw@127.0.0.1:{port}/x",
        }
        log = Path(tmp) / "daemon.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [*DAEMON, "--config", str(path), "--log-format", "json"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
            try:
                _measure(proc.pid, result, seconds, db_url, api)
            finally:
                proc.terminate()
                proc.wait(timeout=30)
        result.requests = result.requests - api.rate_limit_remaining  # since the window began
        _read_log(log, result)
        for i in range(apps):
            if i not in broken and api.formation(name_of(i))["worker"] == 3:
                result.scaled.add(name_of(i))
    return result


def _measure(pid: int, result: Run, seconds: float, db_url: str, api: HerokuStandIn) -> None:
    """CPU time and API requests over the run, after the first interval and a half: start-up
    (every app lists, scales and lists again at once) is not the steady state."""
    time.sleep(1.5 * result.interval)
    result.requests = api.rate_limit_remaining
    cpu0, t0, wall0 = _cpu(pid), time.monotonic(), time.time()
    while time.monotonic() - t0 < seconds:
        time.sleep(1.0)
        result.peak_rss_mb = max(result.peak_rss_mb, _rss_mb(pid))
        result.peak_connections = max(result.peak_connections, _sessions(db_url))
    result.cpu_seconds = _cpu(pid) - cpu0
    result.seconds = time.monotonic() - t0
    result.window = (wall0, time.time())


def _sessions(db_url: str) -> int:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE application_name LIKE 'dynomatic%' AND datname = current_database()"
        ).fetchone()
    return int(row[0]) if row else 0


def _cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _read_log(path: Path, result: Run) -> None:
    times: dict[str, list[float]] = defaultdict(list)
    for line in path.read_text(errors="replace").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        name = event.get("event")
        if name == "fleet_ticks":
            result.window_p99.append(float(event["lag_p99_seconds"]))
        elif name == "scale_decision" and event.get("process_type") == "worker":
            app = event["app"]
            times[app].append(datetime.fromisoformat(event["timestamp"]).timestamp())
            if event["action"] == "error":
                result.errors[app] = result.errors.get(app, 0) + 1
    result.gaps = {a: [b - x for x, b in itertools.pairwise(t)] for a, t in times.items()}
    start, end = result.window
    result.ticks = sum(1 for t in times.values() for x in t if start <= x <= end)


def simulated_day(apps: int, interval: float, bursts: bool = True) -> dict[str, float]:
    """Every app asking for a write and a re-list at every tick during bursts (10 minutes every
    two hours), a re-list every resync otherwise, against a model of Heroku's own bucket (4,500,
    refilled at 4,500 an hour, told back as RateLimit-Remaining): how low it ran, and how many
    requests it would have refused (429)."""
    clock = SteppableClock()
    names = [name_of(i) for i in range(apps)]
    token = TokenBudget("token 1", names, clock)
    per_hour: dict[int, int] = defaultdict(int)
    heroku, lowest, refused_by_heroku = float(HEROKU_BUCKET), float(HEROKU_BUCKET), 0
    ticks = int(24 * 3600 / interval)
    resync_every = max(1, round(apps * 3600 / (token.usable * 0.5) / interval))
    refused = 0
    for n in range(ticks):
        clock.advance(interval)
        heroku = min(float(HEROKU_BUCKET), heroku + interval * HEROKU_BUCKET / 3600)
        hour = int(n * interval // 3600)
        in_burst = bursts and (n * interval) % 7200 < 600
        for k, app in enumerate(names):
            asks = 2 if in_burst else (1 if (n + k) % resync_every == 0 else 0)
            for _ in range(asks):
                if token.spend(app) is not None:
                    refused += 1
                    continue
                per_hour[hour] += 1
                if heroku < 1:
                    refused_by_heroku += 1
                    continue
                heroku -= 1
                lowest = min(lowest, heroku)
                token.seen(int(heroku))
    return {
        "max_per_hour": max(per_hour.values()),
        "total": sum(per_hour.values()),
        "refused": refused,
        "lowest_remaining": lowest,
        "refused_by_heroku": refused_by_heroku,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fleet", description=__doc__)
    parser.add_argument("--apps", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    seconds = 60.0 if args.quick else args.seconds
    with server() as srv, scratch_database(srv) as url:
        facts = machine(url)
        prepare(url, args.apps)
        main_run = run_daemon(url, args.apps, 10.0, seconds)
        cost = [(n, run_daemon(url, n, 2.0, 20.0 if args.quick else 40.0)) for n in (1, 10, 100)]
        broken = {i: BROKEN_KINDS[k % 3] for k, i in enumerate(range(0, args.apps, 10))}
        faults = run_daemon(url, args.apps, 10.0, 40.0 if args.quick else 90.0, broken)
    day = simulated_day(args.apps, 10.0)
    ok = report(facts, main_run, cost, (faults, broken), day)
    return 0 if ok else 1


def report(
    facts: dict[str, str],
    main_run: Run,
    cost: list[tuple[int, Run]],
    fault_test: tuple[Run, dict[int, str]],
    day: dict[str, float],
) -> bool:
    faults, broken = fault_test
    budget_hour = HEROKU_BUCKET
    main_rows = [
        ["p99 tick lag (worst 30 s window)", f"{main_run.p99_lag:.3f} s", "<= 1 s"],
        ["p99 of an app's tick gap beyond one interval", f"{main_run.gap_p99:.3f} s", "-"],
        ["ticks more than interval + 1 s apart", str(main_run.late_gaps), "0"],
        ["CPU, % of one core", f"{main_run.cpu_percent:.1f} %", "<= 15 %"],
        ["peak RSS", f"{main_run.peak_rss_mb:.0f} MB", "<= 120 MB"],
        ["database sessions (one server, one URL)", str(main_run.peak_connections), "-"],
        [
            "API requests, one token, per hour (steady state, this run's rate)",
            f"{main_run.requests * 3600 / main_run.seconds:.0f}",
            f"<= {budget_hour}",
        ],
        ["apps scaled to their target", f"{len(main_run.scaled)} of {main_run.apps}", "all"],
        [
            "simulated day with bursts: lowest RateLimit-Remaining",
            f"{day['lowest_remaining']:.0f}",
            ">= 0 (reserve 450)",
        ],
        ["simulated day: requests Heroku would refuse (429)", f"{day['refused_by_heroku']}", "0"],
        [
            "simulated day: requests sent / held by the budget",
            f"{day['total']:.0f} / {day['refused']:.0f}",
            "-",
        ],
    ]
    headers = ["measure", "value", "target"]
    print_table(f"{main_run.apps} apps x 3 process types, interval 10 s", headers, main_rows)
    cost_headers = ["apps", "interval", "app ticks", "CPU ms per app tick", "CPU % of one core"]
    cost_rows = [
        [n, "2 s", r.ticks, f"{1000 * r.cpu_seconds / max(1, r.ticks):.1f}", f"{r.cpu_percent:.1f}"]
        for n, r in cost
    ]
    print_table("per-app tick cost", cost_headers, cost_rows)
    healthy = [name_of(i) for i in range(faults.apps) if i not in broken]
    healthy_gaps = sorted(g - faults.interval for a in healthy for g in faults.gaps.get(a, []))
    healthy_gap_p99 = healthy_gaps[int(len(healthy_gaps) * 0.99)] if healthy_gaps else float("nan")
    late_healthy = sum(
        1 for a in healthy for g in faults.gaps.get(a, []) if g > faults.interval + 1.0
    )
    fault_rows = [
        ["broken apps", f"{len(broken)} ({', '.join(sorted(set(broken.values())))})"],
        ["healthy apps scaled to their target", f"{len(faults.scaled)} of {len(healthy)}"],
        ["healthy apps' ticks more than interval + 1 s apart", str(late_healthy)],
        ["healthy apps: p99 of a tick gap beyond one interval", f"{healthy_gap_p99:.3f} s"],
        [
            "all apps: p99 tick lag (the broken ones' ticks outlast their interval)",
            f"{faults.p99_lag:.3f} s",
        ],
        ["healthy apps with an error decision", str(sum(1 for a in healthy if a in faults.errors))],
    ]
    print_table("fault test: 10 of 100 apps broken", ["measure", "value"], fault_rows)
    update_section(
        "fleet",
        "## Several apps from one scaler\n\n"
        "`python -m benchmarks.fleet` (part of `make bench`): the real daemon in a child process "
        f"scaling {main_run.apps} apps x 3 process types (a schema each in one database, one "
        "loopback stand-in, one token), measured from outside over "
        f"{main_run.seconds:.0f} s. {facts['machine']}, Python {facts['python']}, PostgreSQL "
        f"{facts['postgres']}.\n\n"
        + table(headers, main_rows)
        + "\n\nPer-app tick cost (the same apps, interval 2 s, 3 process types each):\n\n"
        + table(cost_headers, cost_rows)
        + "\n\nFault test: every tenth app broken (a database that never answers, a revoked "
        "token, an app the API does not know), interval 10 s:\n\n"
        + table(["measure", "value"], fault_rows),
    )
    return len(faults.scaled) == len(healthy) and late_healthy == 0


if __name__ == "__main__":
    sys.exit(main())
