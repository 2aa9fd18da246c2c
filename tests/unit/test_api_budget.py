"""One API budget per token: apps sharing a token share 4,500 requests an hour, fairly."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from dynomatic_daemon import apps_config
from dynomatic_daemon.api_budget import (
    HEROKU_BUCKET,
    RESERVE_SHARE,
    AppBudget,
    Budgets,
    TokenBudget,
)
from dynomatic_daemon.clock import SteppableClock
from dynomatic_daemon.errors import HerokuHeldBackError
from dynomatic_daemon.heroku import HerokuClient

APPS = [f"app-{i:03d}" for i in range(100)]


class Capture:
    def __init__(self) -> None:
        self.lines: list[tuple[str, dict[str, object]]] = []

    def warning(self, event: str, **fields: object) -> None:
        self.lines.append((event, fields))

    info = error = warning


def test_a_hundred_apps_stay_within_the_tokens_hour_even_when_all_want_more() -> None:
    clock = SteppableClock()
    token = TokenBudget("token 1", APPS, clock)
    sent = 0
    for _ in range(360):  # an hour, each app asking twice at every 10 s tick
        clock.advance(10.0)
        sent += sum(token.spend(app) is None for app in APPS)
        sent += sum(token.spend(app) is None for app in APPS)
    usable = HEROKU_BUCKET * (1 - RESERVE_SHARE)
    assert sent <= usable * 2 + 1  # the full bucket at start plus one hour of refill
    assert min(token.spent.values()) >= 0.8 * max(token.spent.values())  # fair shares


def test_a_busy_app_cannot_starve_the_others_once_it_is_tight() -> None:
    clock, log = SteppableClock(), Capture()
    token = TokenBudget("token 1", ["busy", "quiet"], clock, log)
    while token.spend("busy") is None:  # the busy app drains what the bucket holds
        pass
    assert [e for e, _ in log.lines] == ["api_budget_tight"]
    assert log.lines[0][1]["requests_per_hour_per_app"] == 2025.0
    assert token.spent["busy"] <= 2025 + 1  # its own share of the usable 4,050
    assert token.spend("quiet") is None  # the quiet app's share is still there for it


def test_heroku_saying_less_is_left_is_believed() -> None:
    clock = SteppableClock()
    token = TokenBudget("token 1", ["a"], clock)
    token.seen(int(HEROKU_BUCKET * RESERVE_SHARE))  # other tools spent the rest
    assert token.spend("a") is not None


def test_the_client_asks_the_budget_before_each_request() -> None:
    clock = SteppableClock()
    token = TokenBudget("token 1", ["a"], clock)
    token.seen(int(HEROKU_BUCKET * RESERVE_SHARE))
    calls: list[httpx.Request] = []
    transport = httpx.MockTransport(lambda r: calls.append(r) or httpx.Response(200, json=[]))
    with httpx.Client(base_url="https://api.heroku.com", transport=transport) as http:
        client = HerokuClient(http, app="a", api_key="k" * 10, budget=AppBudget(token, "a"))
        with pytest.raises(HerokuHeldBackError, match="saving the API budget"):
            client.list_formation()
    assert calls == []


def test_resyncs_are_stretched_to_the_tokens_read_share(tmp_path: Path) -> None:
    blocks = "".join(
        f'[[app]]\nname = "{name}"\n[[app.process]]\ntype = "worker"\nadapter = "delayed_job"\n'
        "rules = [{ at_least = 0, dynos = 1 }]\n"
        for name in APPS
    )
    path = tmp_path / "apps.toml"
    path.write_text(blocks)
    env = {"HEROKU_API_KEY": "hk-0123456789", "DATABASE_URL": "postgres://u@db.example.com/d"}
    apps = apps_config.load(path, env).apps
    budgets = Budgets.for_apps(apps, SteppableClock())
    stretched = budgets.stretched(apps)
    # 100 apps, half of 4,050 an hour for re-lists: each re-lists at most every 177.8 s.
    assert {a.heroku.resync_seconds for a in stretched} == {177.8}
    reads_per_hour = sum(3600 / a.heroku.resync_seconds for a in stretched)
    assert reads_per_hour <= HEROKU_BUCKET * (1 - RESERVE_SHARE) / 2
    (line,) = budgets.plan_lines(apps)
    assert line == {
        "token": "token 1",
        "apps": 100,
        "requests_per_hour_per_app": 40.5,
        "resync_seconds": 177.8,
    }
