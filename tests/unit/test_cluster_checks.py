"""The chaos soak's invariant checks catch what they claim to (sandbox/cluster_checks.py).

The soak passing proves little unless its checks can fail: each test feeds a recorded history
with one planted violation and expects exactly that one back.
"""

from __future__ import annotations

from dynomatic_daemon.sandbox.cluster_checks import (
    Event,
    Write,
    in_flight_handovers,
    scale_downs_on_missing_data,
    two_writers_at_once,
    unexplained_scale_downs,
    writes_after_a_signal,
    writes_without_the_lock,
)

A, B = "100@host", "200@host"


def test_a_write_without_the_lock_is_caught_and_a_kill_race_is_told_apart() -> None:
    fine = Write(A, A, at=1.0)
    frozen_then_thawed = Write(A, B, at=9.0)  # B took over while A slept; A wrote anyway
    orphan = Write(B, None, at=12.0)
    raced = Write(A, None, at=20.1)  # verified, then its session was killed at 20.0
    events = [Event(20.0, A, "lock_killed")]
    violations, races = writes_without_the_lock(
        [fine, frozen_then_thawed, orphan, raced], events, grace=0.5
    )
    assert violations == [frozen_then_thawed, orphan]
    assert races == [raced]
    assert two_writers_at_once(violations) == [frozen_then_thawed]


def test_a_race_needs_its_own_lock_killed_and_only_just() -> None:
    late = Write(A, None, at=21.0)  # a second after the kill: not a race
    other = Write(B, None, at=20.1)  # A's session was killed, not B's
    violations, races = writes_without_the_lock(
        [late, other], [Event(20.0, A, "lock_killed")], grace=0.5
    )
    assert (violations, races) == ([late, other], [])


def test_a_write_after_the_senders_signal_is_caught() -> None:
    events = [Event(10.0, A, "SIGSTOP"), Event(10.0, B, "SIGTERM"), Event(30.0, A, "SIGKILL")]
    before = Write(B, B, at=10.2)  # sent before the signal, seen just after: within the grace
    after = Write(B, B, at=11.0)
    thawed = Write(A, A, at=15.0)  # a SIGSTOP does not end a copy
    dead = Write(A, A, at=31.0)
    assert writes_after_a_signal([before, after, thawed, dead], events, grace=0.5) == [
        after,
        dead,
    ]


def test_overlapping_requests_of_two_copies_are_paired() -> None:
    slow = Write(A, A, at=1.0, answered_at=2.5)
    next_leader = Write(B, B, at=2.0, answered_at=2.1)
    own_retry = Write(A, A, at=1.5, answered_at=1.6)
    later = Write(B, B, at=5.0, answered_at=5.1)
    pairs = in_flight_handovers([slow, next_leader, own_retry, later], timeout=2.0)
    assert pairs == [(slow, next_leader)]  # own_retry was answered before B wrote


def test_scale_downs_on_missing_data_are_caught_in_the_logs_and_at_the_stand_in() -> None:
    lines = [
        {"action": "scaled", "ready": None, "current": 4, "desired": 1, "process_type": "w"},
        {"action": "scaled", "ready": None, "current": 1, "desired": 3, "process_type": "w"},
        {"action": "scaled", "ready": 0, "current": 4, "desired": 1, "process_type": "w"},
        {"action": "held", "ready": None, "current": 4, "desired": 1, "process_type": "w"},
    ]
    assert scale_downs_on_missing_data(lines) == [lines[0]]
    down_blind = Write(A, A, at=1.0, updates={"worker": 1}, request_id="r1")
    down_seen = Write(A, A, at=2.0, updates={"worker": 1}, request_id="r2")
    up_blind = Write(A, A, at=3.0, updates={"worker": 5}, request_id="r3")
    by_request = {
        ("r1", "w"): {"ready": None},
        ("r2", "w"): {"ready": 0},
        ("r3", "w"): {"ready": None},
    }
    before = [{"worker": 4}, {"worker": 4}, {"worker": 1}]
    found = unexplained_scale_downs(
        [down_blind, down_seen, up_blind], before, by_request, {"worker": "w"}
    )
    assert found == [down_blind]
