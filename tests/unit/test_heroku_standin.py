"""The loopback Heroku stand-in over real HTTP, alone and with HerokuClient talking to it."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from dynomatic_daemon.errors import (
    HerokuAuthError,
    HerokuInvalidRequestError,
    HerokuNotFoundError,
    HerokuRateLimitedError,
    HerokuUnavailableError,
)
from dynomatic_daemon.heroku import HerokuClient
from dynomatic_daemon.models import FormationEntry, FormationUpdate
from dynomatic_daemon.sandbox.heroku_standin import HerokuStandIn

API_KEY = "HRKU-FAKE-standin-key-0123456789"
APP = "my-app"
PATH = f"/apps/{APP}/formation"
V3 = {"Accept": "application/vnd.heroku+json; version=3", "Authorization": f"Bearer {API_KEY}"}
START = {"web": 1, "worker": 1, "urgent": 0}
# The repo root is parents[2]; a checkout made for this project may have shared/ beside it.
SCHEMA_PATH = Path(__file__).resolve().parents[3] / "shared" / "heroku" / "formation-schema.json"


@pytest.fixture
def standin() -> Iterator[HerokuStandIn]:
    with HerokuStandIn(APP, API_KEY, START, sizes={"urgent": "basic"}) as server:
        yield server


@pytest.fixture
def http(standin: HerokuStandIn) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=standin.url, timeout=5.0) as client:
        yield client


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def client(http: httpx.Client, sleeps: list[float]) -> HerokuClient:
    return HerokuClient(http, app=APP, api_key=API_KEY, sleep=sleeps.append)


def patch(http: httpx.Client, body: Any) -> httpx.Response:
    return http.patch(PATH, content=json.dumps(body).encode(), headers=V3)


# -- reading -----------------------------------------------------------------------------------


def test_binds_loopback_and_reports_its_url(standin: HerokuStandIn) -> None:
    assert standin.url.startswith("http://127.0.0.1:")
    assert int(standin.url.rsplit(":", 1)[1]) > 0


def test_list_returns_heroku_shaped_entries(standin: HerokuStandIn, http: httpx.Client) -> None:
    response = http.get(PATH, headers=V3)

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert uuid.UUID(response.headers["Request-Id"]).version == 4
    assert response.headers["RateLimit-Remaining"] == "4499"
    items = response.json()
    assert [(i["type"], i["quantity"], i["size"]) for i in items] == [
        ("web", 1, "Standard-1X"), ("worker", 1, "Standard-1X"), ("urgent", 0, "Basic"),
    ]  # fmt: skip
    assert set(items[0]) == {
        "app", "command", "created_at", "dyno_size", "id", "quantity", "size", "type", "updated_at",
    }  # fmt: skip
    assert items[0]["app"] == {"id": standin.app_id, "name": APP}
    assert items[2]["dyno_size"]["name"] == "Basic"


def test_client_lists_the_formation(client: HerokuClient) -> None:
    result = client.list_formation()
    assert result.formation.entries == {
        "web": FormationEntry("web", 1, "Standard-1X"),
        "worker": FormationEntry("worker", 1, "Standard-1X"),
        "urgent": FormationEntry("urgent", 0, "Basic"),
    }
    assert result.request_id is not None
    assert result.rate_limit_remaining == client.rate_limit_remaining == 4499


def test_app_id_works_like_the_app_name(standin: HerokuStandIn, http: httpx.Client) -> None:
    assert http.get(f"/apps/{standin.app_id}/formation", headers=V3).status_code == 200


# -- batch update ------------------------------------------------------------------------------


def test_batch_update_applies_and_returns_changed_entries(
    standin: HerokuStandIn, client: HerokuClient
) -> None:
    result = client.batch_update([FormationUpdate("worker", 3), FormationUpdate("urgent", 1)])

    assert standin.formation() == {"web": 1, "worker": 3, "urgent": 1}
    assert set(result.formation.entries) == {"worker", "urgent"}
    assert result.formation.quantity("worker") == 3
    [recorded] = standin.patches()
    assert recorded.path == PATH
    assert recorded.body == {
        "updates": [{"type": "worker", "quantity": 3}, {"type": "urgent", "quantity": 1}]
    }
    assert recorded.headers["authorization"] == f"Bearer {API_KEY}"


def test_dyno_size_by_name_is_canonicalised_and_lifts_the_single_dyno_limit(
    standin: HerokuStandIn, http: httpx.Client
) -> None:
    body = {"updates": [{"type": "urgent", "quantity": 2, "dyno_size": {"name": "standard-2x"}}]}
    response = patch(http, body)
    assert response.status_code == 200
    assert response.json()[0]["size"] == "Standard-2X"
    assert standin.formation()["urgent"] == 2


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"updates": [{"type": "worker", "size": "Standard-1X"}]}, id="size"),
        pytest.param({"updates": [{"process": "worker", "quantity": 2}]}, id="process"),
        pytest.param({"updates": [{"type": "worker", "quantity": "2"}]}, id="string-quantity"),
        pytest.param({"updates": [{"type": "worker", "quantity": "+1"}]}, id="relative-quantity"),
        pytest.param({"updates": [{"type": "worker", "quantity": True}]}, id="bool-quantity"),
        pytest.param({"updates": [{"type": "worker", "quantity": 2.0}]}, id="float-quantity"),
        pytest.param({"updates": [{"type": "worker", "quantity": None}]}, id="null-quantity"),
        pytest.param({"updates": [{"quantity": 2}]}, id="missing-type"),
        pytest.param({"updates": [{"type": "worker", "quantity": 2}], "app": APP}, id="extra-key"),
        pytest.param({"updates": {"type": "worker", "quantity": 2}}, id="updates-not-array"),
        pytest.param({}, id="missing-updates"),
        pytest.param([{"type": "worker", "quantity": 2}], id="not-an-object"),
    ],
)
def test_body_contract_rejects_with_422_and_applies_nothing(
    standin: HerokuStandIn, http: httpx.Client, body: Any
) -> None:
    response = patch(http, body)
    assert response.status_code == 422
    assert response.json()["id"] == "invalid_params"
    assert standin.formation() == START


def test_malformed_json_is_a_bad_request(standin: HerokuStandIn, http: httpx.Client) -> None:
    response = http.patch(PATH, content=b'{"updates": [', headers=V3)
    assert response.status_code == 400
    assert response.json()["id"] == "bad_request"
    assert standin.requests[-1].body is None


def test_unknown_type_is_404_and_nothing_is_applied(
    standin: HerokuStandIn, client: HerokuClient
) -> None:
    with pytest.raises(HerokuNotFoundError) as caught:
        client.batch_update([FormationUpdate("worker", 5), FormationUpdate("ghost", 1)])

    assert "Couldn't find that process type (ghost)." in str(caught.value)
    assert caught.value.request_id is not None
    assert standin.formation() == START
    assert len(standin.patches()) == 1


def test_basic_size_limit_is_422_and_nothing_is_applied(
    standin: HerokuStandIn, client: HerokuClient
) -> None:
    with pytest.raises(HerokuInvalidRequestError) as caught:
        client.batch_update([FormationUpdate("worker", 4), FormationUpdate("urgent", 2)])

    assert caught.value.error_id == "invalid_params"
    assert str(caught.value).endswith(
        "Cannot update to more than 1 Basic size dynos per process type."
    )
    assert standin.formation() == START
    assert len(standin.patches()) == 1  # 4xx is never retried


# -- protocol errors ---------------------------------------------------------------------------


def test_wrong_key_is_401_for_the_client(standin: HerokuStandIn, http: httpx.Client) -> None:
    wrong = HerokuClient(http, app=APP, api_key="HRKU-not-the-key")
    with pytest.raises(HerokuAuthError) as caught:
        wrong.list_formation()
    assert (caught.value.status, caught.value.error_id) == (401, "unauthorized")
    assert len(standin.requests) == 1


@pytest.mark.parametrize(
    ("headers", "status", "error_id"),
    [
        ({"Accept": V3["Accept"]}, 401, "unauthorized"),
        ({**V3, "Authorization": f"Basic {API_KEY}"}, 401, "unauthorized"),
        ({"Authorization": V3["Authorization"]}, 406, "not_acceptable"),
        ({**V3, "Accept": "application/json"}, 406, "not_acceptable"),
        ({**V3, "Accept": "application/vnd.heroku+json; version=2"}, 406, "not_acceptable"),
    ],
)
def test_auth_and_accept_are_checked(
    http: httpx.Client, headers: dict[str, str], status: int, error_id: str
) -> None:
    response = http.get(PATH, headers=headers)
    assert response.status_code == status
    assert response.json()["id"] == error_id


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/apps/other-app/formation", "Couldn't find that app."),
        ("/apps/my-app/dynos", "The requested API endpoint was not found."),
        ("/account", "The requested API endpoint was not found."),
    ],
)
def test_unknown_paths_are_404(http: httpx.Client, path: str, message: str) -> None:
    response = http.get(path, headers=V3)
    assert response.status_code == 404
    assert response.json() == {"id": "not_found", "message": message}


def test_rate_limit_remaining_decrements_then_429() -> None:
    with (
        HerokuStandIn(APP, API_KEY, START, rate_limit=2) as small,
        httpx.Client(base_url=small.url, timeout=5.0) as http,
    ):
        remaining = [http.get(PATH, headers=V3).headers["RateLimit-Remaining"] for _ in range(2)]
        exhausted = http.get(PATH, headers=V3)
        assert small.rate_limit_remaining == 0

    assert remaining == ["1", "0"]
    assert exhausted.status_code == 429
    assert exhausted.json()["id"] == "rate_limit"
    assert exhausted.headers["RateLimit-Remaining"] == "0"


def test_client_gives_up_on_an_exhausted_budget(sleeps: list[float]) -> None:
    with (
        HerokuStandIn(APP, API_KEY, START, rate_limit=0) as empty,
        httpx.Client(base_url=empty.url, timeout=5.0) as http,
    ):
        client = HerokuClient(http, app=APP, api_key=API_KEY, sleep=sleeps.append)
        with pytest.raises(HerokuRateLimitedError):
            client.list_formation()
        assert len(empty.requests) == 1  # an empty bucket is not retried within the call
    assert client.rate_limit_remaining == 0


# -- scripted faults ---------------------------------------------------------------------------


def test_scripted_503s_then_normal_handling(
    standin: HerokuStandIn, client: HerokuClient, sleeps: list[float]
) -> None:
    standin.script(503, {"id": "unavailable", "message": "down"}, times=2)

    result = client.batch_update([FormationUpdate("worker", 2)])

    assert result.formation.quantity("worker") == 2
    assert len(standin.patches()) == 3
    assert len(sleeps) == 2
    assert standin.formation()["worker"] == 2


def test_scripted_response_can_be_limited_to_one_method(
    standin: HerokuStandIn, client: HerokuClient
) -> None:
    standin.script(422, {"id": "invalid_params", "message": "preboot"}, method="patch")

    assert client.list_formation().formation.quantity("worker") == 1
    with pytest.raises(HerokuInvalidRequestError, match="preboot"):
        client.batch_update([FormationUpdate("worker", 2)])
    assert client.batch_update([FormationUpdate("worker", 2)]).formation.quantity("worker") == 2


def test_scripted_headers_and_raw_body(standin: HerokuStandIn, http: httpx.Client) -> None:
    standin.script(500, "<html>oops</html>", headers={"Request-Id": "fixed"})
    response = http.get(PATH, headers=V3)
    assert (response.status_code, response.text) == (500, "<html>oops</html>")
    assert response.headers["Request-Id"] == "fixed"


def test_scripted_delay_trips_the_client_timeout(standin: HerokuStandIn) -> None:
    standin.script(200, [], delay=2.0)
    with httpx.Client(base_url=standin.url, timeout=0.2) as impatient:
        client = HerokuClient(impatient, app=APP, api_key=API_KEY, max_retries=0)
        with pytest.raises(HerokuUnavailableError) as caught:
            client.list_formation()
    assert isinstance(caught.value.__cause__, httpx.ReadTimeout)


def test_script_rejects_unbounded_delays(standin: HerokuStandIn) -> None:
    with pytest.raises(ValueError, match="delay"):
        standin.script(200, delay=3600)
    with pytest.raises(ValueError, match="times"):
        standin.script(200, times=0)


# -- inspection helpers ------------------------------------------------------------------------


def test_requests_are_recorded_and_can_be_cleared(
    standin: HerokuStandIn, http: httpx.Client
) -> None:
    http.get(f"{PATH}?x=1", headers=V3)
    patch(http, {"updates": [{"type": "web", "quantity": 0}]})

    first, second = standin.requests
    assert (first.method, first.path, first.body) == ("GET", PATH, None)
    assert (second.method, second.body) == ("PATCH", {"updates": [{"type": "web", "quantity": 0}]})
    assert second.headers["accept"] == V3["Accept"]
    assert first.at <= second.at
    assert standin.patches() == [second]

    standin.clear_requests()
    assert standin.requests == []


def test_set_quantity_simulates_a_manual_scale(
    standin: HerokuStandIn, client: HerokuClient
) -> None:
    standin.set_quantity("worker", 7)
    assert client.list_formation().formation.quantity("worker") == 7
    with pytest.raises(KeyError):
        standin.set_quantity("ghost", 1)
    with pytest.raises(ValueError, match="non-negative"):
        standin.set_quantity("worker", -1)


def test_wait_for_sees_changes_from_other_threads(standin: HerokuStandIn) -> None:
    assert not standin.wait_for(lambda: standin.formation()["worker"] == 9, timeout=0.05)

    threading.Thread(target=standin.set_quantity, args=("worker", 9)).start()

    assert standin.wait_for(lambda: standin.formation()["worker"] == 9, timeout=5.0)


def test_constructor_validates_its_inputs() -> None:
    with pytest.raises(ValueError, match="No such size"):
        HerokuStandIn(formation={"worker": 1}, sizes={"worker": "1X"})
    with pytest.raises(ValueError, match="process type names"):
        HerokuStandIn(formation={"bad type": 1})
    with pytest.raises(ValueError, match="not in the formation"):
        HerokuStandIn(formation={"worker": 1}, sizes={"ghost": "Basic"})
    with pytest.raises(RuntimeError, match="not running"):
        _ = HerokuStandIn().url


def test_runs_as_a_process_until_sigterm() -> None:
    command = [
        sys.executable, "-W", "error", "-m", "dynomatic_daemon.sandbox.heroku_standin",
        "--app", APP, "--api-key", API_KEY, "--formation", "worker=1,urgent1=0",
        "--size", "urgent1=Basic",
    ]  # fmt: skip
    pipe = subprocess.PIPE
    with subprocess.Popen(command, stdout=pipe, stderr=pipe, text=True) as proc:
        try:
            assert proc.stdout is not None
            url = proc.stdout.readline().strip()
            assert url.startswith("http://127.0.0.1:")
            items = httpx.get(f"{url}{PATH}", headers=V3, timeout=5).json()
            assert {i["type"]: (i["quantity"], i["size"]) for i in items} == {
                "worker": (1, "Standard-1X"),
                "urgent1": (0, "Basic"),
            }
        finally:
            proc.send_signal(signal.SIGTERM)
            _, stderr = proc.communicate(timeout=10)
    assert proc.returncode == 0, stderr


# -- the official schema -------------------------------------------------------------------------

# (body, valid under Heroku's published Batch Update schema, accepted by the stand-in).
# The stand-in is stricter than the schema in the three rows where the flags differ, on purpose:
# a daemon should never send an extra top-level key, a negative quantity, or an empty dyno_size.
CONTRACT_SAMPLES: list[tuple[Any, bool, bool]] = [
    ({"updates": [{"type": "worker", "quantity": 2}]}, True, True),
    ({"updates": [{"type": "worker", "quantity": 0}, {"type": "web", "quantity": 1}]}, True, True),
    ({"updates": [{"type": "worker"}]}, True, True),
    ({"updates": []}, True, True),
    ({"updates": [{"type": "worker", "dyno_size": {"name": "standard-2X"}}]}, True, True),
    ({"updates": [{"type": "worker", "quantity": 1, "size": "standard-1X"}]}, False, False),
    ({"updates": [{"process": "worker", "quantity": 1}]}, False, False),
    ({"updates": [{"type": "worker", "quantity": "2"}]}, False, False),
    ({"updates": [{"type": "worker", "quantity": True}]}, False, False),
    ({"updates": [{"type": "worker", "quantity": 2.0}]}, False, False),
    ({"updates": [{"quantity": 2}]}, False, False),
    ({"updates": [{"type": "bad type!", "quantity": 1}]}, False, False),
    ({"updates": [{"type": "worker", "dyno_size": "standard-2X"}]}, False, False),
    ({"updates": {"type": "worker"}}, False, False),
    ({}, False, False),
    ({"updates": [{"type": "worker", "quantity": 1}], "app": APP}, True, False),
    ({"updates": [{"type": "worker", "quantity": -1}]}, True, False),
    ({"updates": [{"type": "worker", "dyno_size": {}}]}, True, False),
]


def _is_plain_update_body(body: Any) -> bool:
    items = body.get("updates") if isinstance(body, dict) and set(body) == {"updates"} else None
    return isinstance(items, list) and all(
        isinstance(i, dict) and set(i) == {"type", "quantity"} and type(i["quantity"]) is int
        for i in items
    )


def test_request_bodies_match_the_published_batch_update_schema(
    standin: HerokuStandIn, http: httpx.Client, client: HerokuClient
) -> None:
    """Always checks the stand-in and the client; with shared/ present, also against the schema."""
    client.batch_update([FormationUpdate("worker", 2)])
    client.batch_update([FormationUpdate("worker", 0), FormationUpdate("web", 3)])
    client.batch_update([FormationUpdate("urgent", 1)])
    sent = [r.body for r in standin.patches()]
    assert len(sent) == 3
    assert all(_is_plain_update_body(body) for body in sent)

    for body, _, accepted in CONTRACT_SAMPLES:
        response = patch(http, body)
        assert (response.status_code == 200) is accepted, (body, response.text)
        if not accepted:
            assert response.json()["id"] == "invalid_params", body

    if not SCHEMA_PATH.exists():
        return  # the checks above stand on their own; the schema only adds a cross-check
    doc = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    link = next(x for x in doc["definitions"]["formation"]["links"] if x["title"] == "Batch Update")
    validator = jsonschema.Draft4Validator({**link["schema"], "definitions": doc["definitions"]})
    for body in sent:
        validator.validate(body)
    for body, schema_valid, _ in CONTRACT_SAMPLES:
        assert validator.is_valid(body) is schema_valid, body

    entry_schema = {"$ref": "#/definitions/formation", "definitions": doc["definitions"]}
    entry_validator = jsonschema.Draft4Validator(entry_schema)
    for item in http.get(PATH, headers=V3).json():
        entry_validator.validate(item)


def test_a_delayed_request_applies_at_once_and_is_answered_late(
    standin: HerokuStandIn, client: HerokuClient
) -> None:
    standin.delay(0.5, method="PATCH")
    done = threading.Event()

    def slow_patch() -> None:
        client.batch_update([FormationUpdate("worker", 3)])
        done.set()

    thread = threading.Thread(target=slow_patch)
    thread.start()
    assert standin.wait_for(lambda: standin.formation()["worker"] == 3, timeout=5)
    assert not done.is_set()  # applied, but the answer is still held back
    thread.join(timeout=5)
    (patch_,) = standin.patches()
    assert patch_.status == 200
    assert patch_.answered_at is not None and patch_.answered_at - patch_.at >= 0.5


def test_observe_sees_each_request_on_arrival_and_its_answer_is_kept() -> None:
    seen: list[dict[str, int]] = []

    def observe(request: Any) -> str:
        seen.append(holder.formation())  # the formation before this request changed it
        return f"note for {request.method}"

    with HerokuStandIn(APP, API_KEY, START, observe=observe) as holder:
        with httpx.Client(base_url=holder.url, timeout=5.0) as direct:
            response = patch(direct, {"updates": [{"type": "worker", "quantity": 5}]})
        (recorded,) = holder.requests
    assert seen == [START]
    assert (recorded.note, recorded.status) == ("note for PATCH", 200)
    assert recorded.request_id == response.headers["Request-Id"]
    assert recorded.answered_at is not None and recorded.answered_at >= recorded.at
