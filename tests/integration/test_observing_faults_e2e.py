"""Under load, the history database dies (hangs, then refuses) and the webhook target hangs, then
goes away: the daemon scales on at its cadence, never crashes, and counts every loss in its log."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
from daemon_support import enqueue
from fault_proxy import FaultProxy
from psycopg import conninfo

from dynomatic_daemon.sandbox.heroku_standin import HerokuStandIn

pytestmark = [pytest.mark.postgres, pytest.mark.e2e]
INTERVAL = 0.5
CONFIG = f"""
[heroku]
app = "my-app"
resync_seconds = 0
[daemon]
interval_seconds = {INTERVAL}
[history]
enabled = true
url_env = "HISTORY_DATABASE_URL"
queue_size = 10
connect_timeout_seconds = 1
statement_timeout_ms = 500
[[notify]]
kind = "webhook"
url_env = "ALERT_WEBHOOK_URL"
events = ["scaled", "stalled"]
min_interval_seconds = 0
timeout_seconds = 1
queue_size = 2
[[process]]
type = "worker"
adapter = "delayed_job"
queues = ["default"]
scale_down_delay_seconds = 0
rules = [ {{ at_least = 0, dynos = 1 }}, {{ at_least = 10, dynos = 5 }} ]
"""


class Hook(BaseHTTPRequestHandler):
    hang = threading.Event()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.hang.is_set():
            time.sleep(3)  # far past the target's 1 s timeout
        assert body
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def tick_times(daemon: Any) -> list[float]:
    return [
        datetime.fromisoformat(e["timestamp"]).timestamp() for e in daemon.events("scale_decision")
    ]


def test_scaling_carries_on_while_history_and_the_webhook_die(  # noqa: PLR0917 - fixtures
    tmp_path: Path,
    delayed_jobs: psycopg.Connection[Any],
    standin: HerokuStandIn,
    daemon_env: dict[str, str],
    db_url: str,
    spawn: Any,
    hook: ThreadingHTTPServer,
) -> None:
    parts = urlsplit(db_url)
    with FaultProxy((parts.hostname or "127.0.0.1", parts.port or 5432)) as proxy:
        history_url = conninfo.make_conninfo(db_url, host="127.0.0.1", port=str(proxy.port))
        env = {
            **daemon_env,
            "HISTORY_DATABASE_URL": history_url,
            "ALERT_WEBHOOK_URL": f"http://127.0.0.1:{hook.server_address[1]}/hook",
        }
        (tmp_path / "dynomatic.toml").write_text(CONFIG)
        daemon = spawn(
            ["run", "--config", str(tmp_path / "dynomatic.toml"), "--log-format", "json"], env
        )
        assert standin.wait_for(lambda: bool(daemon.events("history_ready")), timeout=15), (
            daemon.output()
        )

        Hook.hang.set()
        proxy.hang()  # the history database stops answering
        fault_started = time.time()
        scale_ups = 0
        for round_ in range(10):
            if round_ == 5:
                proxy.refuse()  # ... and then is gone
                hook.shutdown()  # and so is the webhook target
                hook.server_close()
            committed = enqueue(delayed_jobs, 15, "default")
            reached = standin.wait_for(lambda: standin.formation()["worker"] == 5, timeout=5)
            assert reached, daemon.output()[-3000:]
            assert standin.patches()[-1].at - committed <= 3 * INTERVAL
            scale_ups += 1
            delayed_jobs.execute("DELETE FROM delayed_jobs")
            assert standin.wait_for(lambda: standin.formation()["worker"] == 1, timeout=5)
        fault_ended = time.time()
        assert daemon.alive(), daemon.output()[-3000:]

        times = [t for t in tick_times(daemon) if fault_started <= t <= fault_ended]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        expected = (fault_ended - fault_started) / INTERVAL
        assert len(times) >= 0.7 * expected, (len(times), expected)
        assert max(gaps) <= 3 * INTERVAL, max(gaps)  # the cadence held throughout

        proxy.forward()  # the database is back: history carries on by itself
        enqueue(delayed_jobs, 15, "default")
        assert standin.wait_for(lambda: standin.formation()["worker"] == 5, timeout=5)
        assert standin.wait_for(lambda: len(daemon.events("history_ready")) >= 2, timeout=90), (
            daemon.output()[-3000:]
        )
        code, took = daemon.stop()

    assert code == 0 and took < 8, (code, took)
    assert daemon.events("tick_failed") == [] and daemon.events("observer_failed") == []
    (stopped,) = daemon.events("history_stopped")
    lost = stopped["dropped_rows"] + stopped["failed_rows"]
    assert lost > 0 and stopped["written_rows"] > 0, stopped
    assert daemon.events("history_write_failed") and (
        daemon.events("history_dropped") or daemon.events("history_rows_lost")
    )
    notify_losses = daemon.events("notify_failed") + daemon.events("notify_dropped")
    assert notify_losses and all(e["total"] >= 1 for e in notify_losses)
    assert "/hook" not in daemon.output()  # the webhook URL (its secret) is never printed
    with psycopg.connect(db_url) as conn:
        scaled = conn.execute(
            "SELECT count(*) FROM dynomatic.events WHERE kind = 'scaled'"
        ).fetchone()
    assert scaled is not None and 0 < scaled[0] < 2 * scale_ups + 1  # some lost, counted above
