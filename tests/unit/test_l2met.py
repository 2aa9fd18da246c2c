"""Each scale_decision line carries l2met samples and counts a log drain can chart."""

from __future__ import annotations

from typing import Any

import httpx
import structlog
from structlog.testing import capture_logs

from dynomatic_daemon import config
from dynomatic_daemon.clock import SteppableClock
from dynomatic_daemon.formation_keeper import FormationKeeper
from dynomatic_daemon.heroku import HerokuClient
from dynomatic_daemon.models import QueueReading, QueueSelector, QueueStats
from dynomatic_daemon.tick import Ticker

SETTINGS = config.Settings.model_validate(
    {
        "heroku": {"app": "my-app", "api_key": "k" * 10},
        "database": {"url": "postgresql://x@127.0.0.1/db"},
        "process": [
            {"type": "worker", "adapter": "delayed_job", "rules": [{"at_least": 10, "dynos": 4}]}
        ],
    }
)


class Reader:
    def __init__(self, ready: int) -> None:
        self.ready = ready

    def read(self, conn: Any, selectors: list[QueueSelector], cap: int) -> QueueReading:
        q = QueueStats("default", self.ready, False, None, 42.04, 3)
        return QueueReading("delayed_job", None, (q,))  # type: ignore[arg-type]


class Db:
    def run(self, fn: Any) -> Any:
        return fn(None)


def ticker(ready: int, status: int = 200) -> Ticker:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "PATCH" and status != 200:
            return httpx.Response(status, json={"id": "invalid_params", "message": "no"})
        body = [{"type": "worker", "quantity": 1 if request.method == "GET" else 4}]
        return httpx.Response(200, json=body)

    http = httpx.Client(base_url="http://h", transport=httpx.MockTransport(handler))
    clock = SteppableClock()
    keeper = FormationKeeper(HerokuClient(http, app="my-app", api_key="k" * 10), clock, 60)
    log = structlog.get_logger()
    return Ticker(
        SETTINGS, {"delayed_job": Db()}, keeper, {"delayed_job": Reader(ready)}, clock, log
    )  # type: ignore[dict-item]


def decision_line(t: Ticker) -> dict[str, Any]:
    with capture_logs() as logs:
        t.tick()
    (line,) = [e for e in logs if e["event"] == "scale_decision"]
    return line


def test_samples_and_a_write_count_on_a_scaling_tick() -> None:
    line = decision_line(ticker(ready=25))
    assert line["sample#dynomatic.worker.ready"] == 25
    assert line["sample#dynomatic.worker.latency"] == 42.0
    assert line["sample#dynomatic.worker.running"] == 3
    assert line["sample#dynomatic.worker.dynos"] == 4  # after the change went out
    assert line["count#dynomatic.worker.writes"] == 1
    assert "count#dynomatic.worker.errors" not in line


def test_an_unchanged_tick_samples_the_current_dynos_and_counts_nothing() -> None:
    line = decision_line(ticker(ready=0))  # below every rule, but 1 runs: held by the delay
    assert line["sample#dynomatic.worker.dynos"] == 1
    assert not [k for k in line if k.startswith("count#")]


def test_a_refused_write_counts_an_error() -> None:
    line = decision_line(ticker(ready=25, status=422))
    assert line["action"] == "error"
    assert line["count#dynomatic.worker.errors"] == 1
    assert line["sample#dynomatic.worker.dynos"] == 1
