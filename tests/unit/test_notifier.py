"""Notifications: the right events, rate-limited, sent off the tick's thread, URL never logged."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import structlog
from pydantic import SecretStr
from structlog.testing import capture_logs

from dynomatic_daemon.clock import SteppableClock
from dynomatic_daemon.events import Event, Observation, TickReport
from dynomatic_daemon.notify.notifier import Notifier
from dynomatic_daemon.observe_config import NotifySettings

# logs nowhere, whatever another test left structlog configured to
QUIET = structlog.wrap_logger(structlog.ReturnLogger(), processors=[])
AT = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
HOOK = "https://hooks.example.com/services/T0/B0/secretTOKEN123"


def target(**kw: Any) -> NotifySettings:
    return NotifySettings(
        kind=kw.pop("kind", "webhook"), url_env="H", url=SecretStr(kw.pop("url", HOOK)), **kw
    )


class Capture:
    def __init__(self, status: int = 200) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.urls: list[str] = []
        self.status = status

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append(json.loads(request.content))
        self.urls.append(str(request.url))
        return httpx.Response(self.status)


def notifier(capture: Capture, clock: SteppableClock, log: Any = QUIET, **kw: Any) -> Notifier:
    n = Notifier(
        target(**kw),
        "notify[0]:webhook",
        clock,
        log,
        httpx.MockTransport(capture),
    )
    n.start()
    return n


def event(kind: str, ptype: str | None = "worker", **fields: Any) -> Event:
    return Event("my-app", AT, kind, ptype, 2, 5, "because", fields)


def test_a_webhook_gets_the_event_as_json_and_slack_gets_text() -> None:
    clock = SteppableClock(AT)
    hook, slack = Capture(), Capture()
    a = notifier(hook, clock)
    b = notifier(slack, clock, kind="slack")
    for n in (a, b):
        n.on_event(event("fallback"))
        n.close(5)
    (body,) = hook.bodies
    assert (body["app"], body["kind"], body["process_type"], body["desired"]) == (
        "my-app",
        "fallback",
        "worker",
        5,
    )
    assert "fallback raised it 2 -> 5: because" in body["text"]
    assert slack.bodies == [{"text": body["text"]}]
    assert hook.urls == [HOOK]
    assert a.counts["sent"] == 1


def test_only_the_chosen_events_and_every_scale_is_opt_in() -> None:
    clock, capture = SteppableClock(AT), Capture()
    n = notifier(capture, clock)
    for kind in ("scaled", "held", "stalled", "refused", "leader_change"):
        n.on_event(event(kind))
    n.close(5)
    assert [b["kind"] for b in capture.bodies] == ["stalled", "refused", "leader_change"]
    clock2, capture2 = SteppableClock(AT), Capture()
    m = notifier(capture2, clock2, events=["scaled"])
    m.on_event(event("scaled"))
    m.close(5)
    assert [b["kind"] for b in capture2.bodies] == ["scaled"]


def test_rate_limited_per_kind_and_type_and_the_held_ones_are_counted() -> None:
    clock, capture = SteppableClock(AT), Capture()
    n = notifier(capture, clock, min_interval_seconds=600)
    for _ in range(4):
        n.on_event(event("refused"))
        clock.advance(60)
    n.on_event(event("refused", ptype="urgent"))  # another type: its own budget
    clock.advance(600)
    n.on_event(event("refused"))
    n.close(5)
    assert [(b["process_type"], b["suppressed_since_last"]) for b in capture.bodies] == [
        ("worker", 0),
        ("urgent", 0),
        ("worker", 3),
    ]
    assert "(3 similar not sent since the last one)" in capture.bodies[-1]["text"]
    assert n.counts["suppressed"] == 3


def test_at_max_is_told_once_per_stretch_at_the_ceiling() -> None:
    clock, capture = SteppableClock(AT), Capture()
    n = notifier(capture, clock, at_max_minutes=10)

    def tick(minute: int, current: int) -> None:
        obs = Observation(
            "worker", 90, True, 40.0, 8, current, 8, current, "unchanged", None, "r", None, None, 8
        )
        n.on_tick(TickReport("my-app", AT + timedelta(minutes=minute), "leader", (obs,)))
        clock.advance(60)  # the rate limit (600 s) lets the second stretch through

    for minute in range(0, 25):  # at 8 of 8 from minute 0: told at minute 10 only
        tick(minute, 8)
    tick(25, 6)
    for minute in range(26, 37):
        tick(minute, 8)
    n.close(5)
    assert [(b["kind"], b["fields"]["minutes"]) for b in capture.bodies] == [
        ("at_max", 10),
        ("at_max", 10),
    ]


def test_failures_are_counted_and_logged_without_the_url() -> None:
    clock, capture = SteppableClock(AT), Capture(status=500)
    with capture_logs() as logs:
        n = notifier(capture, clock, structlog.get_logger())
        n.on_event(event("stalled"))
        n.close(5)
    assert n.counts == {"sent": 0, "suppressed": 0, "dropped": 0, "failed": 1}
    (line,) = [entry for entry in logs if entry["event"] == "notify_failed"]
    assert line["status"] == 500 and HOOK not in str(logs) and "secretTOKEN" not in str(logs)


class Hanging(BaseHTTPRequestHandler):
    release = threading.Event()

    def do_POST(self) -> None:
        self.release.wait(10)
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def hanging_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hanging)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    Hanging.release.set()
    server.shutdown()
    server.server_close()


def test_a_hanging_target_never_slows_the_caller_and_overflow_is_dropped(hanging_url: str) -> None:
    clock = SteppableClock(AT)
    n = Notifier(
        target(url=hanging_url, queue_size=3, timeout_seconds=0.5, min_interval_seconds=0),
        "notify[0]:webhook",
        clock,
        QUIET,
    )
    n.start()
    started = time.monotonic()
    for i in range(50):
        n.on_event(event("refused", ptype=f"t{i}"))
    took = time.monotonic() - started
    n.close(3)
    assert took < 0.2, f"on_event took {took:.2f}s"
    assert n.counts["dropped"] >= 45
    assert n.counts["sent"] == 0 and n.counts["failed"] >= 1
