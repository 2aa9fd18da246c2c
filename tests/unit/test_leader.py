"""Leader election's states, with a connection factory that counts and fails (no database)."""

from __future__ import annotations

from typing import Any

import psycopg
from pydantic import SecretStr

from dynomatic_daemon.config import DatabaseSettings
from dynomatic_daemon.leader import Leadership, Role


def test_a_database_that_is_down_costs_one_connection_attempt_and_reads_unknown() -> None:
    attempts: list[dict[str, Any]] = []

    def refuse(**kwargs: Any) -> psycopg.Connection[Any]:
        attempts.append(kwargs)
        raise psycopg.OperationalError("connection refused")

    settings = DatabaseSettings(url=SecretStr("postgresql://u:p@127.0.0.1:1/db"))
    leader = Leadership(settings, "my-app", lease_seconds=2, instance="42@dyno", connect=refuse)
    assert leader.acquire() == Role.UNKNOWN
    assert len(attempts) == 1
    assert attempts[0]["application_name"] == "dynomatic-leader 42@dyno"
    assert not leader.held
    assert leader.verify() is False  # proof only: it never tries to take the lock
    leader.keepalive()  # nothing held, nothing to touch
    assert len(attempts) == 1
    assert leader.tenure == 0
