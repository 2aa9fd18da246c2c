"""The store's connection: writable, bounded by timeouts, TLS off the local machine, in UTC."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import conninfo
from pydantic import SecretStr

from dynomatic_daemon.addresses import is_local_database

APPLICATION_NAME = "dynomatic-history"


def connection_kwargs(
    url: SecretStr,
    *,
    statement_timeout_ms: int,
    connect_timeout_seconds: int,
    application_name: str = APPLICATION_NAME,
) -> dict[str, Any]:
    value = url.get_secret_value()
    params = conninfo.conninfo_to_dict(value)
    options = " ".join(
        [
            str(params.get("options", "")),
            f"-c statement_timeout={statement_timeout_ms}",
            # a write that waits on a lock gives up as quickly as one that runs long
            f"-c lock_timeout={statement_timeout_ms}",
            "-c TimeZone=UTC",
            "-c jit=off",
        ]
    ).strip()
    extra: dict[str, Any] = {
        "application_name": application_name,
        "connect_timeout": connect_timeout_seconds,
        "options": options,
        "autocommit": True,
    }
    # loopback is decided from the parsed address: "127.attacker.example" is a remote name
    if "sslmode" not in params and not is_local_database(params):
        extra["sslmode"] = "require"
    return {"conninfo": value, **extra}


def connect(url: SecretStr, **kwargs: Any) -> psycopg.Connection[Any]:
    return psycopg.Connection.connect(**connection_kwargs(url, **kwargs))


def describe(exc: BaseException, url: SecretStr) -> str:
    """One line about a failure, without the URL or its password."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    value = url.get_secret_value()
    password = conninfo.conninfo_to_dict(value).get("password")
    for secret in (value, str(password) if password else None):
        if secret:
            text = text.replace(secret, "***")
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
