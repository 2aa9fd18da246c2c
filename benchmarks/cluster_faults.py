"""The faults of the multi-process chaos soak, and the queue it keeps changing.

Each fault takes the running ``Cluster`` (benchmarks/cluster_soak.py) and returns False when it
could not apply (no leader to hit at that moment), so the count shows what really happened.
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import psycopg

from dynomatic_daemon.sandbox.cluster_checks import Event

if TYPE_CHECKING:
    from benchmarks.cluster_soak import Cluster

INSERT = (
    "INSERT INTO delayed_jobs (handler, queue, run_at, created_at, updated_at)"
    " SELECT 'h', %s, now() AT TIME ZONE 'UTC', now(), now() FROM generate_series(1, %s)"
)
DELETE = (
    "DELETE FROM delayed_jobs WHERE id IN"
    " (SELECT id FROM delayed_jobs WHERE queue = %s ORDER BY random() LIMIT %s)"
)


def change_queue(c: Cluster) -> None:
    """Jobs come and go in bursts, so the daemons have scaling (up and down) to do."""
    roll = c.rng.random()
    queue = c.rng.choice(["default", "default", "critical"])
    try:
        if roll < 0.35:
            c.admin.execute(INSERT, (queue, c.rng.randint(1, 60)))
        elif roll < 0.6:
            c.admin.execute(DELETE, (queue, c.rng.randint(1, 80)))
        elif roll < 0.7:
            c.admin.execute("DELETE FROM delayed_jobs WHERE queue = %s", (queue,))
    except psycopg.errors.LockNotAvailable:
        pass  # the table is locked by a fault: the queue stays as it is for now


def provoke_a_write(c: Cluster) -> None:
    """Change the queue so that the leader must scale ``worker``, one way or the other."""
    with contextlib.suppress(psycopg.errors.LockNotAvailable):
        if c.standin.formation()["worker"] >= 4:
            c.admin.execute("DELETE FROM delayed_jobs WHERE queue = 'default'")
        else:
            c.admin.execute(INSERT, ("default", 60))


def inject(c: Cluster) -> None:
    names = list(FAULTS)
    kind = c.rng.choices(names, weights=[FAULTS[n][1] for n in names])[0]
    if FAULTS[kind][0](c):
        c.faults[kind] += 1
    else:
        c.faults[f"skipped (could not apply now): {kind}"] += 1


def end_leader(sig: signal.Signals) -> Callable[[Cluster], bool]:
    def fault(c: Cluster) -> bool:
        found = c.leader()
        if found is None:
            return False
        copy, backend = found
        c.send(copy, sig)
        c.expect_takeover(sig.name, copy, backend)
        return True

    return fault


def freeze_leader(c: Cluster) -> bool:
    found = c.leader()
    if found is None:
        return False
    copy, backend = found
    c.send(copy, signal.SIGSTOP)
    copy.stopped = True
    c.expect_takeover("SIGSTOP", copy, backend)

    def thaw() -> None:
        if copy.proc.poll() is None:
            c.send(copy, signal.SIGCONT)
        copy.stopped = False
        c.thawed(copy)

    c.later(c.rng.uniform(0.5, 4.0) * c.interval, thaw)
    return True


def kill_lock_session(c: Cluster) -> bool:
    found = c.leader()
    if found is None:
        return False
    copy, backend = found
    c.admin.execute("SELECT pg_terminate_backend(%s)", (backend,))
    c.events.append(Event(time.monotonic(), copy.instance, "lock_killed"))
    c.expect_takeover("lock_killed", copy, backend)
    return True


def kill_lock_mid_patch(c: Cluster) -> bool:
    """Issue 10's first case: the lock's session dies while the leader's PATCH is in flight
    (answered 503 after a second, twice), so a retry would come from a copy without the lock."""
    if c.leader() is None:
        return False
    seen, deadline = len(c.standin.patches()), time.monotonic() + 5
    c.standin.script(503, {"id": "unavailable", "message": "chaos"}, delay=1.0, times=2,
                     method="PATCH")  # fmt: skip
    provoke_a_write(c)

    def watch() -> None:
        found = c.leader()
        if len(c.standin.patches()) > seen and found is not None:
            copy, backend = found
            c.admin.execute("SELECT pg_terminate_backend(%s)", (backend,))
            c.events.append(Event(time.monotonic(), copy.instance, "lock_killed"))
            c.expect_takeover("lock_killed", copy, backend)
        elif time.monotonic() < deadline:
            c.later(0.02, watch)

    c.later(0.02, watch)
    return True


def kill_read_sessions(c: Cluster) -> bool:
    c.admin.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE application_name = 'dynomatic' AND datname = current_database()"
    )
    return True


def lock_table(c: Cluster) -> bool:
    blocker = psycopg.connect(c.url, application_name="soak-blocker")
    try:
        blocker.execute("SET lock_timeout = '200ms'")  # never wait behind a lock still held
        blocker.execute("LOCK TABLE delayed_jobs IN ACCESS EXCLUSIVE MODE")  # reads time out
    except psycopg.errors.LockNotAvailable:
        blocker.close()
        return False

    def release() -> None:
        blocker.rollback()
        blocker.close()

    c.later(c.rng.uniform(0.5, 2.5), release)
    return True


def slow_patch(c: Cluster) -> bool:
    c.standin.delay(c.rng.uniform(0.2, 1.5), times=c.rng.randint(1, 2), method="PATCH")
    return True


def timed_out_patch(c: Cluster) -> bool:
    # applied by the stand-in, but answered after the client has given up
    c.standin.delay(c.rng.uniform(2.2, 3.0), method="PATCH")
    return True


def failing_patch(c: Cluster) -> bool:
    status = c.rng.choice([500, 503])
    body = {"id": "unavailable" if status == 503 else "server_error", "message": "chaos"}
    delay = c.rng.uniform(0.0, 1.5)
    c.standin.script(status, body, delay=delay, times=c.rng.randint(1, 3), method="PATCH")
    return True


def rate_limited_patch(c: Cluster) -> bool:
    c.standin.script(429, {"id": "rate_limit", "message": "chaos"}, method="PATCH")
    return True


def manual_scale(c: Cluster) -> bool:
    c.standin.set_quantity("worker", c.rng.randint(0, 9))
    return True


# name -> (fault, weight)
FAULTS: dict[str, tuple[Callable[[Cluster], bool], float]] = {
    "leader SIGKILL": (end_leader(signal.SIGKILL), 1.0),
    "leader SIGTERM": (end_leader(signal.SIGTERM), 0.6),
    "leader SIGINT": (end_leader(signal.SIGINT), 0.2),
    "leader SIGHUP": (end_leader(signal.SIGHUP), 0.2),
    "leader SIGSTOP, later SIGCONT": (freeze_leader, 1.5),
    "lock session terminated": (kill_lock_session, 1.5),
    "lock session terminated while a PATCH is in flight": (kill_lock_mid_patch, 1.0),
    "queue read sessions terminated": (kill_read_sessions, 1.0),
    "job table locked past statement_timeout": (lock_table, 1.0),
    "PATCH slow (applied, answered late)": (slow_patch, 1.5),
    "PATCH timed out (applied, no answer in time)": (timed_out_patch, 0.5),
    "PATCH failing (500/503, maybe late)": (failing_patch, 1.5),
    "PATCH 429": (rate_limited_patch, 0.2),
    "manual scale": (manual_scale, 0.5),
}
