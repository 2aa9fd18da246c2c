"""The invariants the multi-process chaos soak checks, as pure functions over what it recorded.

Inputs: each PATCH as the Heroku stand-in saw it (who sent it, who held the leader lock when it
arrived, when it arrived and was answered, what it set), each signal the soak sent and each lock
session it terminated (all on the machine's shared monotonic clock), and each daemon's own
``scale_decision`` lines. Every check returns the offending items, so a report can show them.

``grace``: a request a copy verified and sent just before an event can reach the stand-in a
little after it (the bytes are in flight, or the stand-in's thread has not run yet). Within the
grace such a request is reported as a race, not a violation, and never silently dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

ENDING_SIGNALS = frozenset({"SIGTERM", "SIGINT", "SIGHUP", "SIGKILL"})


@dataclass(frozen=True)
class Write:
    """One PATCH: its sender and the lock's holder at arrival (instances, ``pid@host``)."""

    sender: str
    holder: str | None
    at: float
    answered_at: float | None = None
    updates: dict[str, int] = field(default_factory=dict)
    request_id: str | None = None


@dataclass(frozen=True)
class Event:
    """Something the soak did to one copy: a signal (``SIGKILL`` ...) or ``lock_killed``."""

    at: float
    instance: str
    kind: str


def writes_without_the_lock(
    writes: Iterable[Write], events: Sequence[Event], grace: float
) -> tuple[list[Write], list[Write]]:
    """PATCHes whose sender did not hold the lock when they arrived: (violations, races).

    A race is one that arrived within ``grace`` after the soak killed its sender's lock session:
    it was verified just before the kill."""
    violations: list[Write] = []
    races: list[Write] = []
    for w in writes:
        if w.holder == w.sender:
            continue
        killed = [
            e.at
            for e in events
            if e.instance == w.sender and e.kind == "lock_killed" and e.at <= w.at <= e.at + grace
        ]
        (races if killed else violations).append(w)
    return violations, races


def two_writers_at_once(violations: Iterable[Write]) -> list[Write]:
    """Of the PATCHes sent without the lock, those that arrived while another copy held it."""
    return [w for w in violations if w.holder is not None and w.holder != w.sender]


def writes_after_a_signal(
    writes: Iterable[Write], events: Sequence[Event], grace: float
) -> list[Write]:
    """PATCHes that arrived after their sender was told to stop (or killed), beyond ``grace``."""
    ends: dict[str, float] = {}
    for e in events:
        if e.kind in ENDING_SIGNALS:
            ends[e.instance] = min(e.at, ends.get(e.instance, e.at))
    return [w for w in writes if w.sender in ends and w.at > ends[w.sender] + grace]


def in_flight_handovers(writes: Sequence[Write], timeout: float) -> list[tuple[Write, Write]]:
    """Pairs (earlier, later) of PATCHes by different copies where the later one arrived while
    the earlier still awaited its answer (at most ``timeout``, the client's patience). Each was
    sent under its own lock; the later leader lists the formation after its write."""
    pairs = []
    ordered = sorted(writes, key=lambda w: w.at)
    for i, early in enumerate(ordered):
        done = min(early.answered_at or early.at + timeout, early.at + timeout)
        pairs += [
            (early, late)
            for late in ordered[i + 1 :]
            if late.at < done and late.sender != early.sender
        ]
    return pairs


def scale_downs_on_missing_data(decisions: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """``scale_decision`` lines that sent a lower count while the queue data was missing."""
    return [
        d
        for d in decisions
        if d.get("action") == "scaled"
        and d.get("ready") is None
        and isinstance(d.get("current"), int)
        and isinstance(d.get("desired"), int)
        and d["desired"] < d["current"]
    ]


def unexplained_scale_downs(
    writes: Sequence[Write],
    before: Sequence[dict[str, int]],
    lines: dict[tuple[str, str], dict[str, Any]],
    drives: dict[str, str],
) -> list[Write]:
    """Lowering PATCHes whose sender decided them without queue data.

    ``before[i]`` is the formation the stand-in held before ``writes[i]``; ``lines`` maps
    (response Request-Id, process type) to the line its sender logged; ``drives`` maps each
    formation type to the process type that drives it. A PATCH whose answer never reached its
    sender (killed, or timed out) has no line: the log-side check covers what it decided."""
    found = []
    for w, formation in zip(writes, before, strict=True):
        for ftype, quantity in w.updates.items():
            line = lines.get((w.request_id or "", drives.get(ftype, ftype)))
            lowered = quantity < formation.get(ftype, quantity)
            if lowered and line is not None and line.get("ready") is None:
                found.append(w)
                break
    return found
