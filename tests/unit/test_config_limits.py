"""Values that would pass a naive check and break later: huge numbers, fake loopbacks, bad URLs."""

from __future__ import annotations

import math
import types
import typing
from pathlib import Path
from typing import Any

import annotated_types
import pytest
from pydantic import BaseModel, SecretStr

from dynomatic_daemon import config, process_config
from dynomatic_daemon.adapters import catalog
from dynomatic_daemon.config import DatabaseSettings
from dynomatic_daemon.db import connection_kwargs
from dynomatic_daemon.errors import ConfigError

API_KEY = "hk-secret-0123456789abcdef"
ENV = {"HEROKU_API_KEY": API_KEY, "DATABASE_URL": "postgres://app:pw@db.example.com/app"}
MINIMAL = """
[heroku]
app = "my-app"
[[process]]
type = "worker"
adapter = "delayed_job"
rules = [{ at_least = 0, dynos = 1 }]
"""
BIGINT_MAX = 2**63 - 1


def problems(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> dict[str, str]:
    path = tmp_path / "dynomatic.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        config.load(path, ENV if env is None else env)
    return {p.key: p.message for p in info.value.problems}


# -- numbers -----------------------------------------------------------------------------------


def numeric_fields(model: type[BaseModel], prefix: str = "") -> list[tuple[str, Any, list[Any]]]:
    """(key, int or float, constraints) for every number in ``model`` and the models it holds."""
    found: list[tuple[str, Any, list[Any]]] = []
    for name, field in model.model_fields.items():
        found += _numbers(f"{prefix}{name}", field.annotation, list(field.metadata))
    return found


def _numbers(key: str, annotation: Any, constraints: list[Any]) -> list[tuple[str, Any, list[Any]]]:
    origin = typing.get_origin(annotation)
    if annotation in (int, float):
        return [(key, annotation, constraints)]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return numeric_fields(annotation, f"{key}.")
    if origin is typing.Annotated:
        inner, *extra = typing.get_args(annotation)
        metadata = [m for e in extra for m in getattr(e, "metadata", [e])]
        return _numbers(key, inner, constraints + metadata)
    if origin in (typing.Union, types.UnionType, tuple):
        return [n for arg in typing.get_args(annotation) for n in _numbers(key, arg, constraints)]
    return []


MODELS = [config.Settings, *(catalog.options_model(name) for name in catalog.NAMES)]
NUMBERS = [n for model in MODELS for n in numeric_fields(model, f"{model.__name__}.")]


@pytest.mark.parametrize(("key", "kind", "constraints"), NUMBERS, ids=[n[0] for n in NUMBERS])
def test_every_number_has_bounds_on_both_sides(key: str, kind: Any, constraints: list[Any]) -> None:
    kinds = {type(c) for c in constraints}
    assert kinds & {annotated_types.Ge, annotated_types.Gt}, f"{key} has no lower bound"
    assert kinds & {annotated_types.Le, annotated_types.Lt}, f"{key} has no upper bound"
    for bound in constraints:
        for attr in ("le", "lt", "ge", "gt"):
            value = getattr(bound, attr, None)
            assert value is None or abs(value) < BIGINT_MAX, f"{key}: {attr}={value}"


def test_the_bounds_are_found_at_all() -> None:
    # The test above is only as good as the walk: it must see nested and optional numbers.
    keys = {n[0] for n in NUMBERS}
    assert {
        "Settings.process.rules.at_least",
        "Settings.process.jobs_per_dyno",
        "Settings.process.schedules.max_dynos",
        "Settings.daemon.interval_seconds",
    } <= keys


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ("rules = [{ at_least = 9223372036854775807, dynos = 1 }]", "process[0].rules[0].at_least"),
        ("rules = [{ at_least = 0, dynos = 1 }]\njobs_per_dyno = 1e17", "process[0].jobs_per_dyno"),
        ("latency_rules = [{ at_least_seconds = inf, dynos = 1 }]", "process[0].latency_rules[0]"),
        (
            "rules = [{ at_least = 0, dynos = 1 }]\nmax_step_up = 99999999999",
            "process[0].max_step_up",
        ),
        (
            "rules = [{ at_least = 0, dynos = 1 }]\nscale_down_delay_seconds = nan",
            "process[0].scale_down_delay_seconds",
        ),
    ],
)
def test_a_number_too_large_for_sql_or_the_api_is_refused_at_load(
    tmp_path: Path, line: str, key: str
) -> None:
    text = MINIMAL.replace("rules = [{ at_least = 0, dynos = 1 }]", line)
    found = problems(tmp_path, text)
    assert any(k.startswith(key) for k in found), found


def test_the_largest_accepted_settings_count_within_a_bigint() -> None:
    most = process_config.ProcessSettings(
        type="worker",
        adapter="delayed_job",
        rules=[process_config.Rule(at_least=process_config.MAX_JOBS, dynos=1)],
        jobs_per_dyno=process_config.MAX_JOBS_PER_DYNO,
        max_dynos=process_config.MAX_DYNOS,
    )
    assert most.count_cap < BIGINT_MAX
    assert not math.isinf(most.count_cap)


# -- https unless loopback ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.attacker.example",
        "http://127.0.0.1.nip.io:8080",
        "http://localhost.attacker.example",
        "http://[::2]:80",
        "http://10.0.0.1",
        "ftp://127.0.0.1",
    ],
)
def test_plain_http_is_refused_for_anything_but_a_loopback_address(
    tmp_path: Path, url: str
) -> None:
    found = problems(tmp_path, MINIMAL, {**ENV, "DYNOMATIC_HEROKU_API_URL": url})
    assert any(k.startswith("heroku.api_url") or k == "heroku" for k in found), found


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:5000", "http://127.8.9.10", "http://[::1]:80", "http://localhost:1"]
)
def test_plain_http_is_allowed_on_loopback(tmp_path: Path, url: str) -> None:
    path = tmp_path / "dynomatic.toml"
    path.write_text(MINIMAL)
    assert config.load(path, {**ENV, "DYNOMATIC_HEROKU_API_URL": url}).heroku.api_url == url


@pytest.mark.parametrize(
    ("url", "sslmode"),
    [
        ("postgresql://u:p@127.attacker.example/db", "require"),
        ("postgresql://u:p@localhost.attacker.example/db", "require"),
        ("postgresql://u:p@db.example.com,127.0.0.1/db", "require"),  # one remote host is enough
        ("postgresql://u:p@127.0.0.1/db", None),
        ("postgresql://u:p@[::1]/db", None),
        ("postgresql://u:p@localhost/db", None),
        ("postgresql:///db?host=/var/run/postgresql", None),  # a Unix socket
        ("postgresql:///db", None),
    ],
)
def test_tls_is_required_unless_every_host_is_local(url: str, sslmode: str | None) -> None:
    settings = DatabaseSettings(url=SecretStr(url))
    assert connection_kwargs(settings).get("sslmode") == sslmode


# -- malformed database URLs -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "secret"),
    [
        ("postgresql://u:Pw%zzSeCrEt@127.0.0.1/db", "SeCrEt"),
        ("postgresql://u:My@Secret@127.0.0.1/db", "Secret"),
        ("postgres://u:Pw%4@db.example.com/db", "Pw%4"),
        ("postgresql://u:pw@db.example.com:notaport/db", "notaport"),
        ("host=db.example.com password='unterminated", "unterminated"),
    ],
)
def test_a_malformed_database_url_names_its_variable_never_its_value(
    tmp_path: Path, url: str, secret: str
) -> None:
    found = problems(tmp_path, MINIMAL, {**ENV, "DATABASE_URL": url})
    assert set(found) == {"DATABASE_URL"}, found
    assert secret not in found["DATABASE_URL"]


def test_a_malformed_url_in_another_variable_names_that_variable(tmp_path: Path) -> None:
    text = MINIMAL + '[adapters.delayed_job]\nurl_env = "QUEUE_DB_URL"\n'
    found = problems(tmp_path, text, {**ENV, "QUEUE_DB_URL": "postgresql://u:a@b@h/db"})
    assert set(found) == {"QUEUE_DB_URL"}, found
    assert "a@b" not in found["QUEUE_DB_URL"]
