"""The status server over real loopback HTTP: who may see what, health, and valid /metrics."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
import structlog
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from dynomatic_daemon.clock import SteppableClock
from dynomatic_daemon.events import Event, Observation, TickReport
from dynomatic_daemon.web.live import LiveStatus
from dynomatic_daemon.web.server import Credentials, StatusServer

PASSWORD = "s3cret-page-pw"
# logs nowhere, whatever another test left structlog configured to
QUIET = structlog.wrap_logger(structlog.ReturnLogger(), processors=[])
AT = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def observation(**kw: object) -> Observation:
    values: dict[str, object] = {
        "process_type": "worker",
        "ready": 25,
        "ready_capped": False,
        "latency": 31.5,
        "running": None,
        "current": 2,
        "desired": 5,
        "dynos": 5,
        "action": "scaled",
        "rule": "r",
        "reason": 'up "quoted"\nline',
        "request_id": None,
        "size": None,
        "ceiling": 10,
    }
    values.update(kw)
    return Observation(**values)  # type: ignore[arg-type]


@pytest.fixture
def clock() -> SteppableClock:
    return SteppableClock(AT)


@pytest.fixture
def live(clock: SteppableClock) -> LiveStatus:
    return LiveStatus("my-app", clock, interval_seconds=10, minutes=60)


@pytest.fixture
def server(live: LiveStatus) -> Iterator[StatusServer]:
    srv = StatusServer(
        host="127.0.0.1",
        port=0,
        credentials=Credentials("dynomatic", SecretStr(PASSWORD)),
        live=live,
        page=lambda: "<html>the page</html>",
        counters=lambda: {"history": {"written": 7, "dropped": 2}},
        stalled_after_seconds=30,
        log=QUIET,
    )
    srv.start()
    yield srv
    srv.stop()


def get(server: StatusServer, path: str, **kw: object) -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{server.port}{path}", timeout=5, **kw)  # type: ignore[arg-type]


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.mark.parametrize("path", ["/", "/metrics", "/nope"])
@pytest.mark.parametrize(
    "headers",
    [
        {},
        basic("dynomatic", "wrong"),
        basic("someone", PASSWORD),
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Basic !!notbase64"},
        {"Authorization": PASSWORD},
    ],
)
def test_nothing_but_health_without_the_password(
    server: StatusServer, path: str, headers: dict[str, str]
) -> None:
    response = get(server, path, headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert "the page" not in response.text


def test_basic_auth_and_a_bearer_token_both_open_the_page(server: StatusServer) -> None:
    for headers in (basic("dynomatic", PASSWORD), {"Authorization": f"Bearer {PASSWORD}"}):
        response = get(server, "/", headers=headers)
        assert response.status_code == 200
        assert response.text == "<html>the page</html>"
        assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert get(server, "/nope", headers=basic("dynomatic", PASSWORD)).status_code == 404
    assert PASSWORD not in repr(server.credentials)


def test_health_is_open_and_turns_503_when_ticks_stop(
    server: StatusServer, live: LiveStatus, clock: SteppableClock
) -> None:
    assert get(server, "/healthz").json()["status"] == "starting"
    live.on_tick(TickReport("my-app", AT, "leader", (observation(),)))
    assert get(server, "/healthz").json() == {"status": "ok", "seconds_since_last_tick": 0.0}
    clock.advance(31)
    stalled = get(server, "/healthz")
    assert (stalled.status_code, stalled.json()["status"]) == (503, "stalled")


def test_metrics_parse_as_prometheus_text_with_the_latest_values(
    server: StatusServer, live: LiveStatus
) -> None:
    live.on_tick(TickReport("my-app", AT, "leader", (observation(),)))
    live.on_tick(TickReport("my-app", AT, "leader", (observation(action="error", ready=None),)))
    live.on_event(Event("my-app", AT, "scaled", "worker"))
    response = get(server, "/metrics", headers={"Authorization": f"Bearer {PASSWORD}"})
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    found = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(response.text)
        for s in fam.samples
    }
    worker = (("app", "my-app"), ("process_type", "worker"))
    assert found[("dynomatic_ticks_total", (("app", "my-app"),))] == 2
    assert found[("dynomatic_leader", (("app", "my-app"),))] == 1
    assert found[("dynomatic_dynos", worker)] == 5
    assert found[("dynomatic_oldest_ready_age_seconds", worker)] == 31.5
    assert ("dynomatic_ready_jobs", worker) not in found  # unknown this tick: not sent as 0
    assert found[("dynomatic_scale_writes_total", worker)] == 1
    assert found[("dynomatic_errors_total", worker)] == 1
    assert found[("dynomatic_events_total", (("app", "my-app"), ("kind", "scaled")))] == 1
    dropped = (("app", "my-app"), ("outcome", "dropped"), ("source", "history"))
    assert found[("dynomatic_background_rows_total", dropped)] == 2
