"""One ``dynomatic demo`` run: the real daemon loop against a simulated app, all on loopback.

Everything started is registered on one ExitStack as it starts, so it is stopped and removed in
reverse order however the run ends: the threads, the daemon's connections, the Heroku stand-in,
the demo schema, the embedded server and its directory, and the temporary config.
"""

from __future__ import annotations

import random
import secrets
import shutil
import tempfile
import textwrap
import threading
import time
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from dynomatic_daemon import __version__, config, logs, wiring
from dynomatic_daemon.demo import infra
from dynomatic_daemon.demo.output import Output
from dynomatic_daemon.demo.simulation import LoadGenerator, LoadPlan, Tally, WorkerPool
from dynomatic_daemon.demo.summary import Summary
from dynomatic_daemon.demo.view import WIDTH, Observer, TtyView
from dynomatic_daemon.demo.workloads import WORKLOADS
from dynomatic_daemon.sandbox.heroku_standin import HerokuStandIn

JOBS_PER_DYNO_SECOND = 5.0  # each simulated dyno finishes this many jobs a second
JOIN_SECONDS = 10.0


@dataclass(frozen=True)
class DemoOptions:
    duration: float
    interval: float
    adapter: str
    seed: int
    log_format: str | None = None  # None or "auto": the live view on a terminal, else logfmt

    @property
    def scale_down_delay(self) -> float:
        # Long enough to show the hold, short enough that the fall fits in the run.
        return min(6.0, max(2.0, self.duration / 10))


class Demo:
    def __init__(
        self,
        options: DemoOptions,
        out: TextIO,
        env: Mapping[str, str],
        interrupt: threading.Event,
    ) -> None:
        self.options = options
        self.interrupt = interrupt  # set by a signal outside the daemon loop
        self.workload = WORKLOADS[options.adapter]
        self.stack = ExitStack()
        self.tally = Tally()
        self.app = f"dynomatic-demo-{secrets.token_hex(3)}"  # two demos on one DB: two locks
        self.url = env.get("DATABASE_URL", "").strip()
        self.output = Output(out, self.url, options.log_format)
        self.completed = False  # the duration ran out, rather than a signal ending the run
        self.seconds = 0.0

    @property
    def log(self) -> Any:
        return self.output.log

    def start(self) -> None:
        """Set everything up; returns early (leaving ``run`` out) once a signal has arrived."""
        workdir = Path(tempfile.mkdtemp(prefix="dynomatic-demo-"))
        self.stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        note = self.output.note
        if self.url:
            note("demo_database", "Using the database in DATABASE_URL", embedded=False)
        url = self.url or infra.start_database(self.stack, note)
        if self.interrupt.is_set():
            return
        schema = infra.create_schema(self.stack, url, self.workload, note)
        standin = self.stack.enter_context(
            HerokuStandIn(self.app, infra.DEMO_API_KEY, {"web": 1, "worker": 1})
        )
        note("demo_standin", f"Heroku API stand-in at {standin.url}", url=standin.url)
        self._daemon(workdir / "dynomatic.toml", url, schema, standin.url)
        self._simulation(infra.connector(url, schema), standin)

    def _daemon(self, path: Path, url: str, schema: str, api_url: str) -> None:
        """The real daemon, configured the way ``dynomatic run`` is: a TOML file plus env."""
        infra.write_config(
            path, app=self.app, interval=self.options.interval, workload=self.workload,
            schema=schema, delay=self.options.scale_down_delay,
        )  # fmt: skip
        # Only what the demo sets: the caller's DYNOMATIC_* variables must not steer it.
        env = {
            "HEROKU_API_KEY": infra.DEMO_API_KEY,
            "DATABASE_URL": url,
            "DYNOMATIC_HEROKU_API_URL": api_url,
        }
        settings = config.load(path, env)
        built = wiring.build(settings, self.log, lock=True)
        self.stack.enter_context(built.stack)
        self.stopping = built.ticker.stopping
        self.loop = wiring.daemon_loop(built.ticker, self.log)  # as `dynomatic run` has it

    def _simulation(self, connect: infra.Connect, standin: HerokuStandIn) -> None:
        rng = random.Random(self.options.seed)  # noqa: S311 - a reproducible simulation
        self.plan = LoadPlan.for_duration(self.options.duration, rng)

        def dynos() -> int:
            return standin.formation().get("worker", 0)

        seed = self.options.seed + 1
        self.load = LoadGenerator(self.workload, connect, self.plan, seed, self.tally)
        self.pool = WorkerPool(
            self.workload, connect, dynos,
            slots=infra.MAX_DYNOS, rate=JOBS_PER_DYNO_SECOND, tally=self.tally,
        )  # fmt: skip
        self.view: TtyView | None = None
        if self.output.tty:
            heading = [
                f"dynomatic demo: {self.workload.adapter}, local app {self.app}",
                *textwrap.wrap(
                    f"rules: {infra.policy_text(self.options.scale_down_delay)}. "
                    f"Each dyno does {JOBS_PER_DYNO_SECOND:g} jobs a second.",
                    WIDTH,
                    subsequent_indent="  ",
                ),
            ]
            self.view = TtyView(self.output, self.tally, heading, infra.MAX_DYNOS)
        self.observer = Observer(self.tally, dynos, self._show, self.output.refresh_seconds)
        self.stack.callback(self._stop_simulation)

    def run(self) -> None:
        self.log.info("daemon_started", version=__version__, app=self.app, processes="worker",
                      interval_seconds=self.options.interval, dry_run=False,
                      policy=infra.policy_text(self.options.scale_down_delay))  # fmt: skip
        if self.view is not None:
            self.view.open()
        self.pool.start()
        self.load.start()
        self.observer.start()
        finished = threading.Event()
        watcher = threading.Thread(target=self._watch, args=(finished,), daemon=True)
        watcher.start()
        try:
            self.loop.run()  # the daemon's own loop, which also handles SIGINT and SIGTERM
        finally:
            finished.set()
            watcher.join(JOIN_SECONDS)

    def _watch(self, finished: threading.Event) -> None:
        """End the loop when the duration is up or a signal stopped it; repeat ``stop`` until
        the loop has returned, in case it came before the scheduler had started."""
        deadline = time.monotonic() + self.options.duration
        while not (self.interrupt.is_set() or self.stopping.is_set()):
            left = deadline - time.monotonic()
            if left <= 0:
                self.completed = True
                break
            self.interrupt.wait(min(left, 0.2))
        while not finished.is_set():
            self.loop.stop()
            finished.wait(0.2)

    def _show(self, elapsed: float, dynos: int) -> None:
        if self.view is not None:
            self.view.show(elapsed, dynos, self.plan, self.options.duration)
            return
        with self.tally.lock:
            enqueued, done = self.tally.enqueued, self.tally.done
        arrivals = round(self.plan.rate_at(elapsed), 1)
        self.log.info("demo_status", elapsed=round(elapsed, 1), dynos=dynos,
                      arrivals_per_second=arrivals, enqueued=enqueued, done=done)  # fmt: skip

    def _stop_simulation(self) -> None:
        self.load.stop.set()
        self.load.join(JOIN_SECONDS)
        self.pool.stop.set()
        self.pool.join(JOIN_SECONDS)
        self.observer.stop.set()
        self.observer.join(JOIN_SECONDS)
        self.seconds = self.observer.elapsed()
        if self.view is not None:
            self.view.close()

    def summary(self, interrupted: bool) -> Summary:
        return Summary.of(
            self.tally, adapter=self.options.adapter, seconds=self.seconds,
            scale_events=self.output.tap.scaled, interrupted=interrupted,
        )  # fmt: skip

    def scrub(self, text: str) -> str:
        return logs.SecretScrubber(self.output.secrets).scrub(text)
