"""Leader election's states, with a connection factory that counts and fails (no database)."""

from __future__ import annotations

from typing import Any

import psycopg
from pydantic import SecretStr

from dynomatic_daemon.clock import SteppableClock
from dynomatic_daemon.config import DatabaseSettings
from dynomatic_daemon.leader import UNKNOWN, Leadership


def test_a_database_that_is_down_costs_one_connection_attempt_and_reads_unknown() -> None:
    attempts: list[dict[str, Any]] = []

    def refuse(**kwargs: Any) -> psycopg.Connection[Any]:
        attempts.append(kwargs)
        raise psycopg.OperationalError("connection refused")

    settings = DatabaseSettings(url=SecretStr("postgresql://u:p@127.0.0.1:1/db"))
    leader = Leadership(settings, "my-app", SteppableClock(), 60, connect=refuse)
    assert leader.acquire() == UNKNOWN
    assert len(attempts) == 1
    assert attempts[0]["application_name"] == "dynomatic-leader"
    assert not leader.held
    assert leader.verify() is False  # before a write: one more attempt, still no lock
    assert len(attempts) == 2
