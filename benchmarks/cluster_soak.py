"""Multi-process chaos soak: real daemons sharing one leader lock, and everything that breaks it.

Runs ``--daemons`` copies of ``dynomatic run`` as real processes on their real schedulers
against a real PostgreSQL and the loopback Heroku stand-in, for ``--minutes`` (and at most
``--max-faults`` faults), while the queue changes. At random it SIGKILLs, SIGTERMs (or SIGINTs,
SIGHUPs) or SIGSTOPs (then SIGCONTs) the leader, terminates the lock's session or the queue
readers' sessions, locks the job table past ``statement_timeout``, makes PATCHes slow, time out
or fail (500/503/429), and scales by hand (see benchmarks/cluster_faults.py). Copies that exit
are replaced. The stand-in notes, as each PATCH arrives, which copy holds the lock.

Then it checks (sandbox/cluster_checks.py) and prints figures; must be 0: PATCHes from a copy
without the lock, two writers at once, PATCHes after a signal, scale-downs on missing data,
crashes, and secrets in any output. Exit code 1 if one is not.

    python -m benchmarks.cluster_soak [--minutes 30] [--daemons 3] [--interval 1] [--seed 7]
"""

from __future__ import annotations

import argparse
import faulthandler
import heapq
import itertools
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import conninfo

from benchmarks import cluster_faults, cluster_report
from benchmarks.common import scratch_database, server
from dynomatic_daemon.sandbox.cluster_checks import Event
from dynomatic_daemon.sandbox.heroku_standin import HerokuStandIn, RecordedRequest
from dynomatic_daemon.sandbox.schemas import SCHEMAS
from dynomatic_daemon.wiring import instance_name

API_KEY = "hk-cluster-SECRET-5c2e1a"
DB_PASSWORD = "pw-cluster-SECRET-90b1"
CLIENT_TIMEOUT = 2.0
STARTUP_SECONDS = 3.0  # a new copy imports, connects and ticks once within this
CONFIG = """
[heroku]
app = "chaos-app"
timeout_seconds = {timeout}
max_retries = 2
resync_seconds = 5
[database]
statement_timeout_ms = 500
connect_timeout_seconds = 2
[daemon]
interval_seconds = {interval}
[[process]]
type = "worker"
adapter = "delayed_job"
queues = ["default"]
scale_down_delay_seconds = 2
rules = [
  {{ at_least = 0, dynos = 1 }}, {{ at_least = 10, dynos = 4 }}, {{ at_least = 50, dynos = 8 }},
]
[[process]]
type = "urgent"
adapter = "delayed_job"
queues = ["critical"]
worker_names = ["urgent1", "urgent2"]
scale_down_delay_seconds = 0
rules = [ {{ at_least = 0, dynos = 0 }}, {{ at_least = 5, dynos = 2 }} ]
"""
FORMATION = {"web": 1, "worker": 1, "urgent1": 0, "urgent2": 0}
DRIVES = {"worker": "worker", "urgent1": "urgent", "urgent2": "urgent"}
SESSION_SQL = "SELECT 1 FROM pg_stat_activity WHERE pid = %s"
HOLDER_SQL = """
    SELECT a.application_name, l.pid FROM pg_locks l
    JOIN pg_stat_activity a ON a.pid = l.pid JOIN pg_database d ON d.oid = l.database
    WHERE l.locktype = 'advisory' AND l.classid = x'64796e6d'::int::oid AND l.granted
      AND d.datname = current_database()
"""


@dataclass
class Copy:
    """One daemon process and what the soak did to it."""

    proc: subprocess.Popen[bytes]
    log_path: Path
    instance: str
    started: float = field(default_factory=time.monotonic)
    stopped: bool = False
    ended: str | None = None  # the signal that ended it, if the soak sent one


@dataclass
class Pending:
    """A fault that should move the lock: when it happened, and the session that held it.

    ``ready``: another copy had been running for a while, so a takeover needed no start-up."""

    kind: str
    since: float
    instance: str
    backend: int
    ready: bool


@dataclass
class Cluster:
    url: str
    standin: HerokuStandIn
    workdir: Path
    daemons: int
    interval: float
    rng: random.Random
    admin: psycopg.Connection[Any] = field(init=False)
    copies: list[Copy] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    faults: Counter[str] = field(default_factory=Counter)
    takeovers: dict[str, list[float]] = field(default_factory=dict)
    kept: Counter[str] = field(default_factory=Counter)  # lock-moving faults that did not move it
    pending: list[Pending] = field(default_factory=list)
    exits: list[tuple[str, int | None, str | None]] = field(default_factory=list)
    _due: list[tuple[float, int, Callable[[], None]]] = field(default_factory=list)
    _order: itertools.count[int] = field(default_factory=itertools.count)

    def __post_init__(self) -> None:
        self.admin = psycopg.connect(self.url, autocommit=True, application_name="soak-admin")
        self.admin.execute((SCHEMAS / "delayed_job.sql").read_text())
        self.admin.execute("SET lock_timeout = '100ms'")  # never wait behind a table-lock fault
        self.config = self.workdir / "cluster.toml"
        self.config.write_text(CONFIG.format(timeout=CLIENT_TIMEOUT, interval=self.interval))
        self.env = {
            "HEROKU_API_KEY": API_KEY,
            "DATABASE_URL": conninfo.make_conninfo(self.url, password=DB_PASSWORD),
            "DYNOMATIC_HEROKU_API_URL": self.standin.url,
            "PYTHONUNBUFFERED": "1",
            "PATH": "/usr/bin:/bin",
        }

    # -- the run ---------------------------------------------------------------------------

    def run(self, seconds: float, max_faults: int) -> None:
        for _ in range(self.daemons):
            self.start_copy()
        deadline, next_step = time.monotonic() + seconds, 0.0
        while time.monotonic() < deadline and self.faults.total() < max_faults:
            now = time.monotonic()
            self._poll_lock(now)
            self._run_due(now)
            self._reap()
            if now >= next_step:
                cluster_faults.change_queue(self)
                if self.rng.random() < 0.35:
                    cluster_faults.inject(self)
                next_step = now + self.rng.uniform(0.3, 1.2) * self.interval
            time.sleep(0.05)
        self.stop_all()

    def start_copy(self) -> None:
        path = self.workdir / f"daemon-{len(self.copies)}.log"
        log = path.open("wb")
        command = ["run", "--config", str(self.config), "--log-format", "json"]
        proc = subprocess.Popen(
            [sys.executable, "-m", "dynomatic_daemon", *command],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        self.copies.append(Copy(proc, path, instance_name(proc.pid)))

    def stop_all(self) -> None:
        for copy in self.live():
            if copy.stopped:
                copy.proc.send_signal(signal.SIGCONT)
            self.send(copy, signal.SIGTERM)
        for copy in self.copies:
            try:
                copy.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                copy.proc.kill()
                copy.proc.wait()
        self._reap(replace=False)
        self.admin.close()

    # -- helpers for the faults ------------------------------------------------------------

    def live(self) -> list[Copy]:
        return [c for c in self.copies if c.proc.poll() is None and c.ended is None]

    def holder(self, conn: psycopg.Connection[Any] | None = None) -> tuple[str, int] | None:
        """(instance, backend pid) of the session holding the leader lock, if any."""
        row = (conn or self.admin).execute(HOLDER_SQL).fetchone()
        if row is None:
            return None
        return str(row[0]).removeprefix("dynomatic-leader").strip(), int(row[1])

    def leader(self) -> tuple[Copy, int] | None:
        held = self.holder()
        for copy in self.live():
            if held and copy.instance == held[0] and not copy.stopped:
                return copy, held[1]
        return None

    def send(self, copy: Copy, sig: signal.Signals) -> None:
        copy.proc.send_signal(sig)
        self.events.append(Event(time.monotonic(), copy.instance, sig.name))
        if sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGKILL):
            copy.ended = sig.name

    def later(self, seconds: float, action: Callable[[], None]) -> None:
        heapq.heappush(self._due, (time.monotonic() + seconds, next(self._order), action))

    def expect_takeover(self, kind: str, copy: Copy, backend: int) -> None:
        now = time.monotonic()
        others = [c for c in self.live() if c is not copy and not c.stopped]
        ready = any(now - c.started > STARTUP_SECONDS for c in others)
        self.pending.append(Pending(kind, now, copy.instance, backend, ready))

    def thawed(self, copy: Copy) -> None:
        """A frozen leader thawed: if its lock's session still lives, its lease had not run
        out and it keeps the lock; otherwise the takeover is still to be timed."""
        for p in [p for p in self.pending if p.instance == copy.instance and p.kind == "SIGSTOP"]:
            alive = self.admin.execute(SESSION_SQL, (p.backend,)).fetchone()
            if alive is not None:
                self.kept["SIGSTOP"] += 1
                self.pending.remove(p)

    # -- the loop's chores -----------------------------------------------------------------

    def _run_due(self, now: float) -> None:
        while self._due and self._due[0][0] <= now:
            heapq.heappop(self._due)[2]()

    def _reap(self, *, replace: bool = True) -> None:
        """Note each copy that has exited, and start another in its place a little later."""
        for copy in self.copies:
            code = copy.proc.poll()
            if code is None or any(e[0] == copy.instance for e in self.exits):
                continue
            self.exits.append((copy.instance, code, copy.ended))
            if replace:
                self.later(self.rng.uniform(0.5, 2.0), self.start_copy)

    def _poll_lock(self, now: float) -> None:
        held = self.holder()
        for p in list(self.pending):
            if held is not None and held[1] != p.backend:
                kind = p.kind if p.ready else f"{p.kind}, no standby running yet"
                self.takeovers.setdefault(kind, []).append(now - p.since)
                self.pending.remove(p)
            elif now - p.since > 30:
                self.kept[p.kind] += 1
                self.pending.remove(p)


def observer(url: str, cluster: list[Cluster]) -> Callable[[RecordedRequest], Any]:
    """The stand-in's hook: for each PATCH, who held the lock and the formation before it."""
    conn = psycopg.connect(url, autocommit=True, application_name="soak-observer")

    def observe(request: RecordedRequest) -> Any:
        if request.method != "PATCH" or not cluster:
            return None
        held = cluster[0].holder(conn)
        return (held[0] if held else None), cluster[0].standin.formation()

    return observe


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cluster_soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--daemons", type=int, default=3)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--max-faults", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    faulthandler.register(signal.SIGUSR1)  # `kill -USR1` shows where a stuck soak is
    holder: list[Cluster] = []
    with (
        tempfile.TemporaryDirectory() as workdir,
        server() as srv,
        scratch_database(srv) as url,
    ):
        sizes = {"urgent1": "Basic", "urgent2": "Basic"}
        standin = HerokuStandIn(
            "chaos-app", API_KEY, FORMATION, sizes, 10_000_000,
            observe=observer(url, holder), record_limit=1_000_000,
        )  # fmt: skip
        with standin:
            cluster = Cluster(url, standin, Path(workdir), args.daemons, args.interval,
                              random.Random(args.seed))  # fmt: skip
            holder.append(cluster)
            started = time.monotonic()
            cluster.run(args.minutes * 60, args.max_faults)
            took = time.monotonic() - started
        report = cluster_report.Report(cluster, API_KEY, DB_PASSWORD, CLIENT_TIMEOUT, DRIVES)
        return report.print(took)


if __name__ == "__main__":
    sys.exit(main())
