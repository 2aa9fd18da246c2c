"""The leader lock on a real server: its lease, its tenure, and proof that never retakes it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from daemon_support import kill_lock_backend, lock_holder, wait_until
from pydantic import SecretStr

from dynomatic_daemon.config import DatabaseSettings
from dynomatic_daemon.leader import Leadership, Role

pytestmark = pytest.mark.postgres


@pytest.fixture
def leaders(db_url: str) -> Iterator[list[Leadership]]:
    made: list[Leadership] = []
    yield made
    for leader in made:
        leader.close()


def leadership(made: list[Leadership], url: str, lease: float = 30.0) -> Leadership:
    settings = DatabaseSettings(url=SecretStr(url))
    leader = Leadership(settings, "my-app", lease_seconds=lease, instance=f"{len(made)}@test")
    made.append(leader)
    return leader


def test_one_holder_and_a_standby(
    leaders: list[Leadership], db_url: str, pg_conn: psycopg.Connection[Any]
) -> None:
    a, b = leadership(leaders, db_url), leadership(leaders, db_url)
    assert (a.acquire(), b.acquire()) == (Role.LEADER, Role.STANDBY)
    assert (a.tenure, b.tenure) == (1, 0)
    assert a.acquire() == Role.LEADER and a.tenure == 1  # still the same tenure
    row = pg_conn.execute(
        "SELECT application_name FROM pg_stat_activity WHERE pid = %s", (lock_holder(pg_conn),)
    ).fetchone()
    assert row is not None and row[0] == "dynomatic-leader 0@test"


def test_a_lost_lock_is_not_retaken_by_verify_and_a_retake_is_a_new_tenure(
    leaders: list[Leadership], db_url: str, pg_conn: psycopg.Connection[Any]
) -> None:
    a = leadership(leaders, db_url)
    assert a.acquire() == Role.LEADER
    kill_lock_backend(pg_conn)
    assert a.verify() is False
    assert lock_holder(pg_conn) is None  # proving is not taking
    assert a.acquire() == Role.LEADER  # the next tick takes it again ...
    assert a.tenure == 2  # ... as a new tenure, which the tick treats as a role change


def test_a_quiet_leader_loses_the_lock_when_its_lease_runs_out(
    leaders: list[Leadership], db_url: str, pg_conn: psycopg.Connection[Any]
) -> None:
    a, b = leadership(leaders, db_url, lease=0.5), leadership(leaders, db_url, lease=0.5)
    assert a.acquire() == Role.LEADER
    holder = lock_holder(pg_conn)
    kept_until = time.monotonic() + 3 * 0.5
    while time.monotonic() < kept_until:  # touched more often than the lease asks: kept
        a.keepalive()
        time.sleep(0.1)
    assert lock_holder(pg_conn) == holder
    # nobody touches it now (a frozen process): the server ends the session, freeing the lock
    assert wait_until(lambda: lock_holder(pg_conn) is None, timeout=5)
    assert b.acquire() == Role.LEADER
    assert a.verify() is False
    assert a.acquire() == Role.STANDBY
