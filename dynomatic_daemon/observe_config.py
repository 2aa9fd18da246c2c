"""The settings for seeing what the scaler did: ``[history]``, ``[http]`` and ``[[notify]]``.

Every number is bounded. Secrets (the history database URL, the status page password, the webhook
URLs, which carry their own tokens) come from the environment only: the config names the variable
(``url_env``, ``password_env``), and ``apply_secrets`` copies the values in for ``config.load``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator

from dynomatic_daemon.errors import Problem
from dynomatic_daemon.events import KINDS
from dynomatic_daemon.frozen import Frozen

ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
IDENTIFIER = r"^[a-z_][a-z0-9_]{0,62}$"
DEFAULT_PASSWORD_ENV = "DYNOMATIC_STATUS_PASSWORD"  # noqa: S105 - a variable's name
# What a person wants to be woken for; "scaled" (every change) is opt-in.
DEFAULT_NOTIFY_EVENTS = (
    "at_max",
    "stalled",
    "fallback",
    "refused",
    "external_change",
    "leader_change",
    "budget",
)
MAX_NOTIFY_TARGETS = 10


class HistorySettings(Frozen):
    enabled: bool = False
    url_env: Annotated[str, Field(pattern=ENV_NAME)] = "DATABASE_URL"
    url: SecretStr | None = Field(default=None, exclude=True)
    # "schema" in the file; DYNOMATIC_HISTORY_SCHEMA_NAME in the environment
    schema_name: Annotated[
        str, Field(pattern=IDENTIFIER, validation_alias=AliasChoices("schema", "schema_name"))
    ] = "dynomatic"
    retention_days: Annotated[int, Field(ge=1, le=400)] = 14
    create: bool = True  # create or upgrade the schema on start; false: `history init` did it
    statement_timeout_ms: Annotated[int, Field(ge=100, le=60_000)] = 2000
    connect_timeout_seconds: Annotated[int, Field(ge=1, le=30)] = 5
    queue_size: Annotated[int, Field(ge=10, le=100_000)] = 1000  # writes waiting, then dropped


class HttpSettings(Frozen):
    port: Annotated[int, Field(ge=1, le=65535)] | None = None  # or `run --http-port`
    host: str = "0.0.0.0"  # noqa: S104 - Heroku routes to $PORT on every interface
    username: Annotated[str, Field(min_length=1, max_length=64)] = "dynomatic"
    password_env: Annotated[str, Field(pattern=ENV_NAME)] = DEFAULT_PASSWORD_ENV
    password: SecretStr | None = Field(default=None, exclude=True)
    page_hours: Annotated[float, Field(gt=0, le=24 * 31)] = 24.0
    refresh_seconds: Annotated[int, Field(ge=5, le=3600)] = 30


class NotifySettings(Frozen):
    kind: Literal["webhook", "slack"]
    url_env: Annotated[str, Field(pattern=ENV_NAME)]
    url: SecretStr | None = Field(default=None, exclude=True)
    events: tuple[str, ...] = DEFAULT_NOTIFY_EVENTS
    at_max_minutes: Annotated[float, Field(ge=1, le=1440)] = 10.0
    min_interval_seconds: Annotated[float, Field(ge=0, le=86_400)] = 600.0
    timeout_seconds: Annotated[float, Field(gt=0, le=30)] = 5.0
    queue_size: Annotated[int, Field(ge=1, le=10_000)] = 100

    @field_validator("events")
    @classmethod
    def _known(cls, events: tuple[str, ...]) -> tuple[str, ...]:
        bad = [e for e in events if e not in KINDS]
        if bad:
            raise ValueError(f"unknown event(s) {bad}; choose from {', '.join(KINDS)}")
        return events


NotifyList = Annotated[tuple[NotifySettings, ...], Field(max_length=MAX_NOTIFY_TARGETS)]


def apply_secrets(raw: dict[str, Any], env: Mapping[str, str], problems: list[Problem]) -> None:
    """Copy each secret named by ``[history]``, ``[http]`` and ``[[notify]]`` in from ``env``."""
    history, http = raw.setdefault("history", {}), raw.setdefault("http", {})
    if isinstance(history, dict):
        var = history.get("url_env", "DATABASE_URL")
        _take(history, "url", var, env, problems=problems, where="history")
    if isinstance(http, dict):
        var = http.get("password_env", DEFAULT_PASSWORD_ENV)
        _take(http, "password", var, env, problems=problems, where="http")
    targets = raw.get("notify", [])
    for i, target in enumerate(targets if isinstance(targets, list) else []):
        if not isinstance(target, dict):
            continue
        var = target.get("url_env")
        _take(target, "url", var, env, problems=problems, where=f"notify[{i}]")
        if isinstance(var, str) and "url" not in target:
            problems.append(Problem(var, f"not set; notify[{i}].url_env names it"))


def _take(
    table: dict[str, Any],
    key: str,
    var: Any,
    env: Mapping[str, str],
    *,
    problems: list[Problem],
    where: str,
) -> None:
    if key in table:
        problems.append(
            Problem(f"{where}.{key}", f"secrets come from the environment only (set {var})")
        )
        del table[key]
    if isinstance(var, str) and env.get(var, "").strip():
        table[key] = env[var].strip()


def missing_secrets(history: HistorySettings) -> list[Problem]:
    if history.enabled and history.url is None:
        return [Problem(history.url_env, "not set; [history] is enabled and url_env names it")]
    return []
