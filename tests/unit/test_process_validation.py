"""Every validator of a [[process]] entry, through the loader: the key is named, the value shown."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from dynomatic_daemon import config
from dynomatic_daemon.errors import ConfigError
from dynomatic_daemon.process_config import Window

ENV = {"HEROKU_API_KEY": "hk-0123456789", "DATABASE_URL": "postgres://u@db.example.com/app"}
BASE = """
[heroku]
app = "my-app"
[[process]]
type = "worker"
adapter = "delayed_job"
rules = [{ at_least = 0, dynos = 1 }]
"""


def problems(tmp_path: Path, extra: str, env: dict[str, str] | None = None) -> dict[str, str]:
    path = tmp_path / "dynomatic.toml"
    path.write_text(BASE + extra)
    with pytest.raises(ConfigError) as info:
        config.load(path, ENV if env is None else env)
    return {p.key: p.message for p in info.value.problems}


def window(**fields: str) -> str:
    body = {"start": '"08:00"', "end": '"18:00"', "min_dynos": "1", **fields}
    return "schedules = [{ " + ", ".join(f"{k} = {v}" for k, v in body.items()) + " }]\n"


@pytest.mark.parametrize(
    ("extra", "key", "fragment"),
    [
        (window(days='["mon", "funday"]'), "process[0].schedules[0].days", "funday"),
        (window(days="[]"), "process[0].schedules[0].days", "unknown day"),
        (window(start='"8 am"'), "process[0].schedules[0].start", "'8 am' is not a time of day"),
        (window(end='"25:00"'), "process[0].schedules[0].end", "'25:00'"),
        (window(timezone='"Mars/Olympus"'), "process[0].schedules[0].timezone", "Mars/Olympus"),
        (window(end='"08:00"'), "process[0].schedules[0].end", "must differ from start"),
        (
            window(min_dynos="4", max_dynos="2"),
            "process[0].schedules[0].min_dynos",
            "4 is above max_dynos 2",
        ),
        (
            'schedules = [{ start = "08:00", end = "18:00" }]\n',
            "process[0].schedules[0].min_dynos",
            "must set min_dynos, max_dynos or both",
        ),
        ("min_dynos = 5\nmax_dynos = 2\n", "process[0].min_dynos", "5 is above max_dynos 2"),
        ('worker_names = ["w1", "w1"]\n', "process[0].worker_names", "duplicate names"),
        ("worker_names = []\n", "process[0].worker_names", "at least one"),
        ('worker_names = ["w1"]\nmin_dynos = 2\n', "process[0].min_dynos", "above len"),
        (
            "latency_rules = [{ at_least_seconds = 60, dynos = 4 },"
            " { at_least_seconds = 120, dynos = 2 }]\n",
            "process[0].latency_rules[1].dynos",
            "more work must not mean fewer dynos",
        ),
    ],
)
def test_each_validator_names_its_key(tmp_path: Path, extra: str, key: str, fragment: str) -> None:
    found = problems(tmp_path, extra)
    assert key in found, found
    assert fragment in found[key]


def test_fewer_dynos_for_more_jobs_is_refused_in_any_written_order(tmp_path: Path) -> None:
    text = BASE.replace(
        "rules = [{ at_least = 0, dynos = 1 }]",
        "rules = [{ at_least = 50, dynos = 2 }, { at_least = 10, dynos = 5 }]",
    )
    path = tmp_path / "dynomatic.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        config.load(path, ENV)
    found = {p.key: p.message for p in info.value.problems}
    assert "fewer than 5 at 10" in found["process[0].rules[0].dynos"]


def test_day_aliases_expand_and_a_valid_window_loads(tmp_path: Path) -> None:
    path = tmp_path / "dynomatic.toml"
    path.write_text(BASE + window(days='["weekends", "mon"]', timezone='"Europe/Berlin"'))
    (proc,) = config.load(path, ENV).process
    assert proc.schedules[0].days == ("mon", "sat", "sun")


def test_an_adapter_url_env_must_be_set_and_is_used_for_that_adapter_only(tmp_path: Path) -> None:
    extra = '[adapters.delayed_job]\nurl_env = "QUEUE_DB_URL"\n'
    assert (
        "not set; adapters.delayed_job.url_env names it"
        in problems(tmp_path, extra)["QUEUE_DB_URL"]
    )
    path = tmp_path / "ok.toml"
    path.write_text(BASE + extra)
    settings = config.load(path, {**ENV, "QUEUE_DB_URL": "postgres://q@queue.example.com/jobs"})
    env_name, url = settings.url_for("delayed_job")
    assert env_name == "QUEUE_DB_URL"
    assert url.get_secret_value() == "postgres://q@queue.example.com/jobs"
    assert settings.url_for("good_job")[0] == "DATABASE_URL"


@pytest.mark.parametrize(
    ("when", "open_"),
    [
        (datetime(2026, 1, 5, 21, 59, tzinfo=UTC), False),  # Monday 22:59 in Berlin
        (datetime(2026, 1, 5, 22, 0, tzinfo=UTC), True),  # Monday 23:00 in Berlin
        (datetime(2026, 1, 6, 4, 59, tzinfo=UTC), True),  # Tuesday 05:59: Monday's night
        (datetime(2026, 1, 6, 5, 0, tzinfo=UTC), False),  # Tuesday 06:00: closed
        (datetime(2026, 1, 9, 4, 0, tzinfo=UTC), True),  # Friday 05:00: Thursday's night
        (datetime(2026, 1, 10, 0, 30, tzinfo=UTC), False),  # Saturday 01:30: Friday not listed
    ],
)
def test_a_window_past_midnight_belongs_to_the_day_it_starts(when: datetime, open_: bool) -> None:
    night = Window(
        days=("mon", "tue", "wed", "thu"),
        start="23:00",
        end="06:00",
        timezone="Europe/Berlin",
        max_dynos=1,
    )
    assert night.is_open(when) is open_
