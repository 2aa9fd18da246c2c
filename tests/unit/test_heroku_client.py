"""HerokuClient against httpx.MockTransport: headers, parsing, paging, error mapping, retries."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from dynomatic_daemon import __version__
from dynomatic_daemon.errors import (
    HerokuAuthError,
    HerokuError,
    HerokuHeldBackError,
    HerokuInvalidRequestError,
    HerokuNotFoundError,
    HerokuRateLimitedError,
    HerokuUnavailableError,
)
from dynomatic_daemon.heroku import HerokuClient
from dynomatic_daemon.models import FormationEntry, FormationUpdate

# Recognisable, so any leak shows up in a failing assertion or a log.
API_KEY = "HRKU-FAKE-KEY-0123456789-must-never-leak"
APP = "my-app"
PATH = f"/apps/{APP}/formation"
USER_AGENT = f"dynomatic-daemon/{__version__} httpx/{httpx.__version__}"

Answer = Callable[[httpx.Request], httpx.Response]


def reply(status: int = 200, body: Any = None, headers: dict[str, str] | None = None) -> Answer:
    def answer(request: httpx.Request) -> httpx.Response:
        content = b"" if body is None else json.dumps(body).encode()
        return httpx.Response(status, content=content, headers=headers)

    return answer


def error(
    status: int, error_id: str | None, message: str = "nope", headers: dict[str, str] | None = None
) -> Answer:
    body = {"message": message} if error_id is None else {"id": error_id, "message": message}
    return reply(status, body, headers)


def raising(exc_type: type[httpx.TransportError], text: str = "network trouble") -> Answer:
    def answer(request: httpx.Request) -> httpx.Response:
        raise exc_type(text, request=request)

    return answer


def entry(ptype: str, quantity: int, size: str = "Standard-1X") -> dict[str, Any]:
    return {
        "app": {"id": "01234567-89ab-cdef-0123-456789abcdef", "name": APP},
        "command": f"bin/{ptype}",
        "created_at": "2026-01-01T12:00:00Z",
        "dyno_size": {"id": "11111111-2222-3333-4444-555555555555", "name": size},
        "id": str(uuid.uuid4()),
        "quantity": quantity,
        "size": size,
        "type": ptype,
        "updated_at": "2026-01-02T08:00:00Z",
    }


@dataclass
class Harness:
    client: HerokuClient
    requests: list[httpx.Request] = field(default_factory=list)
    sleeps: list[float] = field(default_factory=list)


@pytest.fixture
def harness() -> Iterator[Callable[..., Harness]]:
    """Build a client whose transport plays ``answers`` in order; the last one repeats."""
    clients: list[httpx.Client] = []

    def build(*answers: Answer, max_retries: int = 2, backoff_seconds: float = 0.5) -> Harness:
        queue = list(answers)
        requests: list[httpx.Request] = []

        def handle(request: httpx.Request) -> httpx.Response:
            requests.append(request)
            answer = queue.pop(0) if len(queue) > 1 else queue[0]
            return answer(request)

        transport = httpx.MockTransport(handle)
        http = httpx.Client(base_url="https://api.heroku.com", transport=transport)
        clients.append(http)
        sleeps: list[float] = []
        client = HerokuClient(
            http,
            app=APP,
            api_key=API_KEY,
            max_retries=max_retries,
            sleep=sleeps.append,
            backoff_seconds=backoff_seconds,
        )
        return Harness(client, requests, sleeps)

    yield build
    for http in clients:
        http.close()


def test_every_request_sends_the_protocol_headers(harness: Callable[..., Harness]) -> None:
    h = harness(reply(200, [entry("worker", 1)]))
    h.client.list_formation()
    h.client.batch_update([FormationUpdate("worker", 2)])

    assert len(h.requests) == 2
    for request in h.requests:
        assert request.url.path == PATH
        assert request.headers["Accept"] == "application/vnd.heroku+json; version=3"
        assert request.headers["Authorization"] == f"Bearer {API_KEY}"
        assert request.headers["User-Agent"] == USER_AGENT
        assert uuid.UUID(request.headers["Request-Id"]).version == 4
    assert h.requests[0].headers["Request-Id"] != h.requests[1].headers["Request-Id"]
    assert [r.method for r in h.requests] == ["GET", "PATCH"]
    assert h.requests[0].headers["Range"] == "id ..; max=1000"
    assert "Range" not in h.requests[1].headers
    assert h.requests[1].headers["Content-Type"] == "application/json"


def test_list_parses_tolerantly(harness: Callable[..., Harness]) -> None:
    legacy = {"type": "clock", "quantity": 1, "size": "Basic", "attached": False}
    unknown = {**entry("urgent", 0, "Performance-M"), "future_field": {"nested": [1, 2]}}
    bare = {"type": "release", "quantity": 0}
    headers = {"Request-Id": "req-1", "RateLimit-Remaining": "4321"}
    h = harness(reply(200, [entry("worker", 3), legacy, unknown, bare], headers))

    result = h.client.list_formation()

    assert result.formation.entries == {
        "worker": FormationEntry("worker", 3, "Standard-1X"),
        "clock": FormationEntry("clock", 1, "Basic"),
        "urgent": FormationEntry("urgent", 0, "Performance-M"),
        "release": FormationEntry("release", 0, None),
    }
    assert result.request_id == "req-1"
    assert result.rate_limit_remaining == 4321


def test_list_follows_next_range_on_206(harness: Callable[..., Harness]) -> None:
    next_range = "]0b1c2d3e-0000-0000-0000-000000000001..; max=1000"
    h = harness(
        reply(206, [entry("web", 1)], {"Next-Range": next_range}),
        reply(200, [entry("worker", 2)], {"Request-Id": "last-page"}),
    )

    result = h.client.list_formation()

    assert [r.headers["Range"] for r in h.requests] == ["id ..; max=1000", next_range]
    assert result.formation.quantity("web") == 1
    assert result.formation.quantity("worker") == 2
    assert result.request_id == "last-page"


def test_batch_update_sends_only_types_and_integer_quantities(
    harness: Callable[..., Harness],
) -> None:
    h = harness(reply(200, [entry("worker", 3)]))

    result = h.client.batch_update([FormationUpdate("worker", 3), FormationUpdate("urgent", 0)])

    assert json.loads(h.requests[0].content) == {
        "updates": [{"type": "worker", "quantity": 3}, {"type": "urgent", "quantity": 0}]
    }
    # The response may list only some types: index what came back, invent nothing.
    assert result.formation.entries == {"worker": FormationEntry("worker", 3, "Standard-1X")}


@pytest.mark.parametrize(
    "updates",
    [
        pytest.param([], id="empty"),
        pytest.param([FormationUpdate("worker", -1)], id="negative"),
        pytest.param([FormationUpdate("worker", True)], id="bool"),
        pytest.param([FormationUpdate("worker", "2")], id="string"),  # type: ignore[arg-type]
        pytest.param([FormationUpdate("worker", 1), FormationUpdate("worker", 2)], id="duplicate"),
    ],
)
def test_batch_update_refuses_bad_updates_without_calling_heroku(
    harness: Callable[..., Harness], updates: list[FormationUpdate]
) -> None:
    h = harness(reply(200, []))
    with pytest.raises(ValueError, match=r"update|quantity|twice"):
        h.client.batch_update(updates)
    assert h.requests == []


def test_401_is_an_auth_error_and_is_not_retried(harness: Callable[..., Harness]) -> None:
    h = harness(error(401, "unauthorized", "Invalid credentials.", {"Request-Id": "r401"}))

    with pytest.raises(HerokuAuthError) as caught:
        h.client.list_formation()

    assert len(h.requests) == 1
    assert h.sleeps == []
    assert (caught.value.status, caught.value.error_id) == (401, "unauthorized")
    assert caught.value.request_id == "r401"


@pytest.mark.parametrize(
    ("status", "error_id", "expected"),
    [
        (402, "delinquent", HerokuAuthError),
        (403, "forbidden", HerokuAuthError),
        (403, "suspended", HerokuAuthError),
        (404, "not_found", HerokuNotFoundError),
        (400, "bad_request", HerokuInvalidRequestError),
        (409, "conflict", HerokuInvalidRequestError),
        (412, None, HerokuInvalidRequestError),
        (416, "requested_range_not_satisfiable", HerokuInvalidRequestError),
        (422, "invalid_params", HerokuInvalidRequestError),
        (422, "verification_needed", HerokuInvalidRequestError),
        (422, "verification_required", HerokuInvalidRequestError),
        (406, "not_acceptable", HerokuInvalidRequestError),
    ],
)
def test_client_errors_map_by_id_and_status_without_retry(
    harness: Callable[..., Harness],
    status: int,
    error_id: str | None,
    expected: type[HerokuError],
) -> None:
    h = harness(error(status, error_id))
    with pytest.raises(expected) as caught:
        h.client.batch_update([FormationUpdate("worker", 1)])
    assert type(caught.value) is expected
    assert (caught.value.status, caught.value.error_id) == (status, error_id)
    assert len(h.requests) == 1
    assert h.sleeps == []


def test_preboot_refusal_is_an_invalid_request(harness: Callable[..., Harness]) -> None:
    message = "Cannot change formation while preboot is in progress."
    h = harness(error(422, "invalid_params", message))
    with pytest.raises(HerokuInvalidRequestError, match="preboot"):
        h.client.batch_update([FormationUpdate("web", 2)])
    assert len(h.requests) == 1


def test_unknown_process_type_is_not_found_with_message_and_request_id(
    harness: Callable[..., Harness],
) -> None:
    h = harness(
        error(404, "not_found", "Couldn't find that process type (worker).", {"Request-Id": "abc"})
    )

    with pytest.raises(HerokuNotFoundError) as caught:
        h.client.batch_update([FormationUpdate("worker", 1)])

    assert str(caught.value) == (
        "PATCH /apps/my-app/formation: 404 not_found: Couldn't find that process type (worker)."
    )
    assert caught.value.request_id == "abc"
    assert len(h.requests) == 1


def test_429_is_not_retried_within_the_call(harness: Callable[..., Harness]) -> None:
    # The bucket refills at about a token a second: retrying now only spends the next token.
    h = harness(
        error(429, "rate_limit", "Out of tokens", {"RateLimit-Remaining": "0"}),
        reply(200, [entry("worker", 1)], {"RateLimit-Remaining": "12"}),
    )
    with pytest.raises(HerokuRateLimitedError):
        h.client.list_formation()
    assert (len(h.requests), h.sleeps) == (1, [])
    assert h.client.rate_limit_remaining == 0


def test_503_then_success(harness: Callable[..., Harness]) -> None:
    h = harness(reply(503), reply(200, [entry("worker", 4)]))
    result = h.client.batch_update([FormationUpdate("worker", 4)])
    assert result.formation.quantity("worker") == 4
    assert [r.method for r in h.requests] == ["PATCH", "PATCH"]
    assert len(h.sleeps) == 1


@pytest.mark.parametrize("max_retries", [0, 1, 2, 4])
def test_503_forever_gives_up_after_max_retries(
    harness: Callable[..., Harness], max_retries: int
) -> None:
    h = harness(error(503, None, "API unavailable"), max_retries=max_retries)
    with pytest.raises(HerokuUnavailableError) as caught:
        h.client.list_formation()
    assert len(h.requests) == max_retries + 1
    assert len(h.sleeps) == max_retries
    assert caught.value.status == 503
    assert str(caught.value) == "GET /apps/my-app/formation: 503: API unavailable"


def test_a_short_retry_after_is_waited_out_before_the_retry(
    harness: Callable[..., Harness],
) -> None:
    h = harness(error(503, None, "busy", {"Retry-After": "7"}), reply(200, [entry("worker", 2)]))
    assert h.client.list_formation().formation.quantity("worker") == 2
    assert len(h.sleeps) == 1 and h.sleeps[0] >= 7


@pytest.mark.parametrize(
    "headers",
    [
        {"Retry-After": "120"},
        {"Retry-After": "Wed, 21 Oct 2026 07:30:00 GMT", "Date": "Wed, 21 Oct 2026 07:28:00 GMT"},
    ],
)
def test_a_long_retry_after_ends_the_call_and_is_reported(
    harness: Callable[..., Harness], headers: dict[str, str]
) -> None:
    h = harness(error(503, None, "maintenance", headers))
    with pytest.raises(HerokuUnavailableError) as caught:
        h.client.batch_update([FormationUpdate("worker", 2)])
    assert (len(h.requests), h.sleeps) == (1, [])
    assert caught.value.retry_after == 120


def test_the_guard_is_asked_before_every_attempt_and_stops_a_retry(
    harness: Callable[..., Harness],
) -> None:
    h = harness(error(503, "unavailable", "down"))
    answers = iter([None, "the leader lock was lost"])
    asked: list[int] = []

    def may_send() -> str | None:
        asked.append(len(h.requests))
        return next(answers)

    with pytest.raises(HerokuHeldBackError) as caught:
        h.client.batch_update([FormationUpdate("worker", 2)], may_send)
    assert asked == [0, 1]  # before the first attempt, and again before the retry
    assert len(h.requests) == 1
    assert str(caught.value).startswith("the leader lock was lost; no retry of: PATCH")


def test_a_refusing_guard_sends_nothing(harness: Callable[..., Harness]) -> None:
    h = harness(reply(200, [entry("worker", 1)]))
    with pytest.raises(HerokuHeldBackError, match="shutting down"):
        h.client.list_formation(lambda: "shutting down")
    assert h.requests == []


def test_the_instance_is_named_in_the_user_agent() -> None:
    seen: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["User-Agent"])
        return httpx.Response(200, json=[])

    with httpx.Client(base_url="https://x.test", transport=httpx.MockTransport(handle)) as http:
        HerokuClient(http, app=APP, api_key=API_KEY, instance="7@dyno").list_formation()
    assert seen == [f"{USER_AGENT} (instance 7@dyno)"]


def test_backoff_grows_exponentially_with_bounded_jitter(harness: Callable[..., Harness]) -> None:
    h = harness(reply(500), max_retries=4, backoff_seconds=1.0)
    with pytest.raises(HerokuUnavailableError):
        h.client.list_formation()
    assert len(h.sleeps) == 4
    for attempt, slept in enumerate(h.sleeps):
        assert 2**attempt <= slept <= 2**attempt + 1.0


@pytest.mark.parametrize(
    "exc_type", [httpx.ConnectTimeout, httpx.ReadTimeout, httpx.ConnectError, httpx.ReadError]
)
def test_transport_errors_are_retried_then_mapped(
    harness: Callable[..., Harness], exc_type: type[httpx.TransportError]
) -> None:
    h = harness(raising(exc_type))
    with pytest.raises(HerokuUnavailableError) as caught:
        h.client.batch_update([FormationUpdate("worker", 1)])
    assert len(h.requests) == 3
    assert len(h.sleeps) == 2
    assert isinstance(caught.value.__cause__, exc_type)
    assert caught.value.status is None
    assert str(caught.value).startswith(f"PATCH /apps/my-app/formation: {exc_type.__name__}")


def test_transport_error_then_success(harness: Callable[..., Harness]) -> None:
    h = harness(raising(httpx.ReadTimeout), reply(200, [entry("worker", 0)]))
    assert h.client.list_formation().formation.quantity("worker") == 0
    assert len(h.requests) == 2


def test_malformed_success_body_is_unavailable(harness: Callable[..., Harness]) -> None:
    def html(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"<html>captive portal</html>")

    h = harness(html)
    with pytest.raises(HerokuUnavailableError, match="unexpected response body"):
        h.client.list_formation()


def test_rate_limit_and_request_id_are_exposed(harness: Callable[..., Harness]) -> None:
    h = harness(
        reply(200, [entry("worker", 1)], {"RateLimit-Remaining": "4499", "Request-Id": "one"}),
        reply(200, [entry("worker", 1)], {"RateLimit-Remaining": "4498", "Request-Id": "two"}),
        reply(200, [entry("worker", 1)]),
    )
    assert (h.client.rate_limit_remaining, h.client.last_request_id) == (None, None)

    assert h.client.list_formation().rate_limit_remaining == 4499
    assert (h.client.rate_limit_remaining, h.client.last_request_id) == (4499, "one")
    h.client.list_formation()
    assert (h.client.rate_limit_remaining, h.client.last_request_id) == (4498, "two")
    result = h.client.list_formation()
    # A response without the header does not erase the last known budget.
    assert result.rate_limit_remaining is None
    assert (h.client.rate_limit_remaining, h.client.last_request_id) == (4498, None)


def test_request_id_and_budget_are_read_from_error_responses(
    harness: Callable[..., Harness],
) -> None:
    headers = {"RateLimit-Remaining": "7", "Request-Id": "bad"}
    h = harness(error(422, "invalid_params", "no", headers))
    with pytest.raises(HerokuInvalidRequestError):
        h.client.batch_update([FormationUpdate("worker", 1)])
    assert (h.client.rate_limit_remaining, h.client.last_request_id) == (7, "bad")


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(error(401, "unauthorized", f"Bad token {API_KEY}"), id="echoed-401"),
        pytest.param(error(500, None, f"oops Bearer {API_KEY}"), id="echoed-500"),
        pytest.param(raising(httpx.ConnectError, f"cannot connect with {API_KEY}"), id="transport"),
        pytest.param(raising(httpx.ReadTimeout, ""), id="empty-transport-message"),
    ],
)
def test_no_message_or_repr_contains_the_api_key(
    harness: Callable[..., Harness], answer: Answer
) -> None:
    h = harness(answer)
    assert API_KEY not in repr(h.client)
    assert APP in repr(h.client)

    with pytest.raises(HerokuError) as caught:
        h.client.list_formation()

    exc = caught.value
    for text in (str(exc), repr(exc), *map(str, exc.args), str(exc.error_id), str(exc.request_id)):
        assert API_KEY not in text


def test_an_echoed_key_is_redacted_not_dropped(harness: Callable[..., Harness]) -> None:
    h = harness(error(401, "unauthorized", f"Bad token {API_KEY}"))
    with pytest.raises(HerokuAuthError) as caught:
        h.client.list_formation()
    assert str(caught.value) == "GET /apps/my-app/formation: 401 unauthorized: Bad token [redacted]"
