"""When the daemon calls the Platform API, and what it learns from refusals (MockTransport)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable

import httpx
import pytest

from dynomatic_daemon.clock import SteppableClock
from dynomatic_daemon.errors import (
    HerokuAuthError,
    HerokuError,
    HerokuHeldBackError,
    HerokuInvalidRequestError,
    HerokuRateLimitedError,
    HerokuUnavailableError,
)
from dynomatic_daemon.formation_keeper import LIMIT_RETEST_SECONDS, FormationKeeper
from dynomatic_daemon.heroku import HerokuClient
from dynomatic_daemon.models import FormationUpdate

Handler = Callable[[httpx.Request], httpx.Response]


class FakeHeroku:
    """A tiny programmable API: a formation, a queue of canned failures, and a call log."""

    def __init__(self, sizes: dict[str, str] | None = None, **formation: int) -> None:
        self.formation = dict(formation) or {"worker": 1}
        self.sizes = sizes or {}
        self.fail: list[tuple[int, dict[str, str], dict[str, str]]] = []
        self.calls: list[str] = []
        self.remaining = 4000

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(request.method)
        self.remaining -= 1
        headers = {"RateLimit-Remaining": str(self.remaining), "Request-Id": "rid"}
        if self.fail:
            status, body, extra = self.fail.pop(0)
            return httpx.Response(status, json=body, headers={**headers, **extra})
        if request.method == "PATCH":
            for item in json.loads(request.content)["updates"]:
                self.formation[item["type"]] = item["quantity"]
        items = [
            {"type": t, "quantity": q, "dyno_size": {"name": self.sizes.get(t, "Standard-1X")}}
            for t, q in self.formation.items()
        ]
        return httpx.Response(200, json=items, headers=headers)


def keeper(fake: FakeHeroku, clock: SteppableClock, resync: float = 60) -> FormationKeeper:
    http = httpx.Client(base_url="https://api.example.test", transport=httpx.MockTransport(fake))
    client = HerokuClient(http, app="my-app", api_key="k" * 20, max_retries=0, sleep=lambda _: None)
    return FormationKeeper(client, clock, resync, frozenset({"worker"}))


@pytest.fixture
def clock() -> SteppableClock:
    return SteppableClock()


def test_the_formation_is_remembered_until_resync_or_a_write(clock: SteppableClock) -> None:
    fake = FakeHeroku(worker=1)
    k = keeper(fake, clock, resync=60)
    assert k.formation()[0].quantity("worker") == 1
    clock.advance(30)
    k.formation()
    assert fake.calls == ["GET"]
    clock.advance(30)
    k.formation()
    assert fake.calls == ["GET", "GET"]
    k.write([FormationUpdate("worker", 3)])
    assert k.formation()[0].quantity("worker") == 3
    assert fake.calls == ["GET", "GET", "PATCH", "GET"]  # re-listed on the tick after a write


def test_a_manual_change_is_reported_once(clock: SteppableClock) -> None:
    fake = FakeHeroku(worker=2)
    k = keeper(fake, clock)
    assert k.formation()[1] == []
    fake.formation["worker"] = 7  # a person ran heroku ps:scale worker=7
    clock.advance(60)
    formation, changes = k.formation()
    assert formation.quantity("worker") == 7
    assert [(c.type, c.expected, c.actual) for c in changes] == [("worker", 2, 7)]
    clock.advance(60)
    assert k.formation()[1] == []


def test_auth_failure_pauses_calls_with_a_doubling_pause(clock: SteppableClock) -> None:
    fake = FakeHeroku()
    k = keeper(fake, clock)
    fake.fail.append((401, {"id": "unauthorized", "message": "Invalid credentials"}, {}))
    with pytest.raises(HerokuAuthError):
        k.formation()
    with pytest.raises(HerokuHeldBackError, match="paused for 60s after 401 unauthorized"):
        k.formation()
    assert fake.calls == ["GET"]  # held back: no second request
    clock.advance(60)
    fake.fail.append((403, {"id": "forbidden", "message": "no access"}, {}))
    with pytest.raises(HerokuAuthError):
        k.formation()
    clock.advance(119)
    with pytest.raises(HerokuHeldBackError):
        k.formation()
    clock.advance(1)
    assert k.formation()[0].quantity("worker") == 1  # recovered; the next failure starts over


def test_rate_limit_pauses_and_known_formation_stands_in(clock: SteppableClock) -> None:
    fake = FakeHeroku(worker=4)
    k = keeper(fake, clock)
    k.formation()
    fake.fail.append(
        (
            429,
            {"id": "rate_limit", "message": "Your account reached the API rate limit"},
            {"RateLimit-Remaining": "0"},
        )
    )
    with pytest.raises(HerokuRateLimitedError):
        k.write([FormationUpdate("worker", 5)])
    clock.advance(10)
    formation, _ = k.formation()  # paused: the last known formation is used, no call is made
    assert formation.quantity("worker") == 4
    with pytest.raises(HerokuHeldBackError, match="paused"):
        k.write([FormationUpdate("worker", 5)])
    assert fake.calls == ["GET", "PATCH"]


def test_a_low_budget_spaces_writes_out(clock: SteppableClock) -> None:
    fake = FakeHeroku()
    fake.remaining = 300  # below the 450-token reserve
    k = keeper(fake, clock)
    k.formation()
    with pytest.raises(HerokuHeldBackError, match="saving the API budget"):
        k.write([FormationUpdate("worker", 2)])
    clock.advance(60)
    k.write([FormationUpdate("worker", 2)])
    assert fake.calls == ["GET", "PATCH"]


def test_a_stated_dyno_limit_is_learnt_and_clamps_later_requests(clock: SteppableClock) -> None:
    fake = FakeHeroku()
    k = keeper(fake, clock)
    message = "Cannot update to more than 1 Basic size dynos per process type."
    fake.fail.append((422, {"id": "invalid_params", "message": message}, {}))
    with pytest.raises(HerokuInvalidRequestError):
        k.write([FormationUpdate("worker", 4)])
    assert k.clamp([FormationUpdate("worker", 4)]) == (FormationUpdate("worker", 1),)


def test_an_unexplained_refusal_is_not_resent_unchanged(clock: SteppableClock) -> None:
    fake = FakeHeroku()
    k = keeper(fake, clock)
    fake.fail.append((422, {"id": "invalid_params", "message": "Something else is wrong."}, {}))
    with pytest.raises(HerokuInvalidRequestError):
        k.write([FormationUpdate("worker", 4)])
    with pytest.raises(HerokuHeldBackError, match="refused this exact change"):
        k.write([FormationUpdate("worker", 4)])
    k.write([FormationUpdate("worker", 5)])  # a different request goes out
    assert fake.calls == ["PATCH", "PATCH"]
    clock.advance(300)
    k.write([FormationUpdate("worker", 4)])
    assert fake.calls == ["PATCH", "PATCH", "PATCH"]


def test_a_preboot_lock_is_retried_soon(clock: SteppableClock) -> None:
    fake = FakeHeroku()
    k = keeper(fake, clock)
    message = "Cannot change formation for a preboot app while a release is in progress."
    fake.fail.append((422, {"id": "invalid_params", "message": message}, {}))
    with pytest.raises(HerokuInvalidRequestError):
        k.write([FormationUpdate("worker", 4)])
    clock.advance(29)
    with pytest.raises(HerokuHeldBackError):
        k.write([FormationUpdate("worker", 4)])
    clock.advance(1)
    k.write([FormationUpdate("worker", 4)])
    assert fake.formation["worker"] == 4


BASIC_LIMIT = "Cannot update to more than 1 Basic size dynos per process type."


def test_a_limit_naming_a_size_clamps_only_the_types_of_that_size(clock: SteppableClock) -> None:
    fake = FakeHeroku(sizes={"urgent": "Basic"}, worker=1, urgent=0)
    k = keeper(fake, clock)
    formation, _ = k.formation()
    fake.fail.append((422, {"id": "invalid_params", "message": BASIC_LIMIT}, {}))
    wanted = [FormationUpdate("urgent", 2), FormationUpdate("worker", 4)]
    with pytest.raises(HerokuInvalidRequestError):
        k.write(wanted)
    assert k.clamp(wanted, formation) == (
        FormationUpdate("urgent", 1),
        FormationUpdate("worker", 4),
    )
    k.write(k.clamp(wanted, formation))  # not the refused request: it goes out
    assert fake.formation == {"worker": 4, "urgent": 1}


def test_a_learnt_limit_is_tested_again_after_a_while_and_ends_with_a_resize(
    clock: SteppableClock,
) -> None:
    fake = FakeHeroku(sizes={"urgent": "Basic"}, urgent=0)
    k = keeper(fake, clock)
    k.formation()
    fake.fail.append((422, {"id": "invalid_params", "message": BASIC_LIMIT}, {}))
    with pytest.raises(HerokuInvalidRequestError):
        k.write([FormationUpdate("urgent", 3)])
    assert k.clamp([FormationUpdate("urgent", 3)]) == (FormationUpdate("urgent", 1),)
    fake.sizes["urgent"] = "Standard-1X"  # the user resizes the type
    clock.advance(60)
    resized, _ = k.formation()
    assert k.clamp([FormationUpdate("urgent", 3)], resized) == (FormationUpdate("urgent", 3),)
    fake.sizes["urgent"] = "Basic"
    clock.advance(60)
    basic, _ = k.formation()
    assert k.clamp([FormationUpdate("urgent", 3)], basic) == (FormationUpdate("urgent", 1),)
    clock.advance(LIMIT_RETEST_SECONDS)
    assert k.clamp([FormationUpdate("urgent", 3)], basic) == (FormationUpdate("urgent", 3),)


def test_a_persistent_outage_is_not_called_every_tick(clock: SteppableClock) -> None:
    fake = FakeHeroku()
    k = keeper(fake, clock, resync=0)
    fake.fail = [(503, {"id": "unavailable", "message": "down"}, {})] * 6
    called_at = []
    for second in range(160):  # a tick every second for this long
        try:
            k.formation()
        except HerokuUnavailableError:
            called_at.append(second)
        except HerokuHeldBackError:
            pass
        clock.advance(1)
    gaps = [b - a for a, b in itertools.pairwise(called_at)]
    assert gaps == [5, 10, 20, 40, 80]  # each failed call doubles the pause before the next
    fake.fail.clear()
    clock.advance(160)
    k.formation()  # back: a success ends the backoff
    fake.fail = [(503, {"id": "unavailable", "message": "down"}, {})]
    with pytest.raises(HerokuUnavailableError):
        k.formation()
    clock.advance(5)
    assert k.formation()[0].quantity("worker") == 1


def test_a_retry_after_sets_the_pause_when_it_is_longer(clock: SteppableClock) -> None:
    fake = FakeHeroku()
    k = keeper(fake, clock)
    fake.fail.append((429, {"id": "rate_limit", "message": "slow"}, {"Retry-After": "600"}))
    assert not k.calls_paused
    with pytest.raises(HerokuRateLimitedError):
        k.formation()
    clock.advance(599)
    assert k.calls_paused  # optional calls (the release check) wait as long
    with pytest.raises(HerokuHeldBackError, match="paused for 1s after 429 rate_limit"):
        k.formation()
    clock.advance(1)
    assert not k.calls_paused
    assert k.formation()[0].quantity("worker") == 1


def test_forget_lists_again_and_reports_no_manual_change(clock: SteppableClock) -> None:
    fake = FakeHeroku(worker=8)
    k = keeper(fake, clock, resync=3600)
    k.formation()
    fake.formation["worker"] = 1  # another copy wrote while this one stood by
    k.forget()
    formation, changes = k.formation()
    assert (formation.quantity("worker"), changes) == (1, [])
    assert fake.calls == ["GET", "GET"]


def held_for(k: FormationKeeper) -> int:
    """The seconds a held-back call says it must still wait."""
    with pytest.raises(HerokuHeldBackError) as info:
        k.formation()
    return int(str(info.value).split("paused for ")[1].split("s ")[0])


@pytest.mark.parametrize(
    ("status", "error_id", "pauses"),
    [
        (401, "unauthorized", [60, 120, 240, 480, 960, 1800, 1800]),
        (429, "rate_limit", [60, 120, 240, 480, 900, 900]),
        (503, "unavailable", [5, 10, 20, 40, 80, 160, 300, 300]),
    ],
)
def test_each_kind_of_failure_pauses_from_its_first_pause_doubling_to_its_longest(
    clock: SteppableClock, status: int, error_id: str, pauses: list[int]
) -> None:
    fake = FakeHeroku()
    k = keeper(fake, clock)
    seen = []
    for _ in pauses:
        fake.fail.append((status, {"id": error_id, "message": "no"}, {}))
        with pytest.raises(HerokuError):
            k.formation()
        seen.append(held_for(k))
        clock.advance(seen[-1])
    assert seen == pauses


def test_a_retry_after_beyond_an_hour_is_taken_as_an_hour(clock: SteppableClock) -> None:
    fake = FakeHeroku()
    k = keeper(fake, clock)
    fake.fail.append((429, {"id": "rate_limit", "message": "slow"}, {"Retry-After": "99999"}))
    with pytest.raises(HerokuRateLimitedError):
        k.formation()
    assert held_for(k) == 3600


def test_the_known_formation_stands_in_until_the_pause_ends_exactly(
    clock: SteppableClock,
) -> None:
    fake = FakeHeroku(worker=2)
    k = keeper(fake, clock, resync=0)
    k.formation()
    fake.fail.append((429, {"id": "rate_limit", "message": "slow"}, {}))
    with pytest.raises(HerokuRateLimitedError):
        k.formation()
    clock.advance(59)
    assert k.formation()[0].quantity("worker") == 2 and fake.calls == ["GET", "GET"]
    clock.advance(1)
    k.formation()
    assert fake.calls == ["GET", "GET", "GET"]


@pytest.mark.parametrize(("remaining", "gap"), [(450, 0), (449, 60), (45, 60), (44, 300)])
def test_the_budget_reserve_and_its_low_mark_space_writes(
    clock: SteppableClock, remaining: int, gap: int
) -> None:
    fake = FakeHeroku()
    fake.remaining = remaining + 1  # each answer reports one token fewer
    k = keeper(fake, clock)
    k.formation()
    clock.advance(10)
    if gap == 0:
        k.write([FormationUpdate("worker", 2)])
        assert fake.calls == ["GET", "PATCH"]
        return
    with pytest.raises(HerokuHeldBackError, match=f"next call in {gap - 10}s"):
        k.write([FormationUpdate("worker", 2)])
    assert fake.calls == ["GET"]


def test_a_low_budget_never_holds_back_the_listing_after_a_write(clock: SteppableClock) -> None:
    fake = FakeHeroku()
    k = keeper(fake, clock)
    k.formation()
    fake.remaining = 300
    k.write([FormationUpdate("worker", 2)])
    assert k.formation()[0].quantity("worker") == 2  # listed at once, budget or not
    assert fake.calls == ["GET", "PATCH", "GET"]


@pytest.mark.parametrize(("resync", "relisted_after"), [(40, 60), (10, 60), (1, 60), (120, 120)])
def test_a_low_budget_stretches_the_resync_to_the_reserve_gap(
    clock: SteppableClock, resync: float, relisted_after: int
) -> None:
    fake = FakeHeroku()
    fake.remaining = 400  # below the reserve: one call a minute
    k = keeper(fake, clock, resync=resync)
    k.formation()
    clock.advance(relisted_after - 1)
    k.formation()
    assert fake.calls == ["GET"]
    clock.advance(1)
    k.formation()
    assert fake.calls == ["GET", "GET"]


def test_a_write_returns_heroku_s_answer(clock: SteppableClock) -> None:
    k = keeper(FakeHeroku(), clock)
    result = k.write([FormationUpdate("worker", 3)])
    assert result.request_id == "rid" and result.formation.quantity("worker") == 3


def test_the_refusal_cooloff_says_how_long_is_left(clock: SteppableClock) -> None:
    fake = FakeHeroku()
    k = keeper(fake, clock)
    fake.fail.append((422, {"id": "invalid_params", "message": "Something else is wrong."}, {}))
    with pytest.raises(HerokuInvalidRequestError):
        k.write([FormationUpdate("worker", 4)])
    clock.advance(100)
    with pytest.raises(HerokuHeldBackError, match="not resent for 200s"):
        k.write([FormationUpdate("worker", 4)])


def test_a_learnt_limit_is_asked_again_exactly_after_the_retest_time(
    clock: SteppableClock,
) -> None:
    fake = FakeHeroku()
    k = keeper(fake, clock)
    message = "Cannot update to more than 2 dynos per process type."
    fake.fail.append((422, {"id": "invalid_params", "message": message}, {}))
    with pytest.raises(HerokuInvalidRequestError):
        k.write([FormationUpdate("worker", 4)])
    clock.advance(1799)  # the documented half hour, written out: the constant may be wrong
    assert k.clamp([FormationUpdate("worker", 4)]) == (FormationUpdate("worker", 2),)
    clock.advance(1)
    assert k.clamp([FormationUpdate("worker", 4)]) == (FormationUpdate("worker", 4),)


def test_a_stated_limit_binds_only_the_types_over_it_and_is_not_a_refusal(
    clock: SteppableClock,
) -> None:
    fake = FakeHeroku(worker=1, urgent=1)
    k = keeper(fake, clock)
    k.formation()
    message = "Cannot update to more than 2 dynos per process type."
    fake.fail.append((422, {"id": "invalid_params", "message": message}, {}))
    updates = [FormationUpdate("worker", 2), FormationUpdate("urgent", 5)]
    with pytest.raises(HerokuInvalidRequestError):
        k.write(updates)
    assert set(k.limits) == {"urgent"}  # worker asked for 2: not over "more than 2"
    k.write(updates)  # a limit was learnt: the same request is not held as a refusal
    assert fake.calls.count("PATCH") == 2
