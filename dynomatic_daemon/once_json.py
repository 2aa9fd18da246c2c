"""The one JSON document ``dynomatic once --json`` prints: the app, and per process type what
was read, what was decided and what happened."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dynomatic_daemon.leader import Role
from dynomatic_daemon.tick import Outcome


def document(app: str, outcomes: Sequence[Outcome], role: Role | None = None) -> dict[str, Any]:
    """``role`` is null when no lock was taken (a dry run)."""
    return {
        "app": app,
        "role": role.value if role else None,
        "processes": [_outcome_json(o) for o in outcomes],
    }


def _outcome_json(out: Outcome) -> dict[str, Any]:
    stats, decision = out.stats, out.decision
    return {
        "type": out.process.type,
        "adapter": out.process.adapter,
        "queues": {
            q.queue: {
                "ready": q.ready,
                "ready_capped": q.ready_capped,
                "oldest_ready_age_seconds": q.oldest_ready_age_seconds,
                "running": q.running,
            }
            for q in (stats.queues if stats else ())
        },
        "totals": None
        if stats is None
        else {
            "ready": stats.ready,
            "ready_capped": stats.ready_capped,
            "oldest_ready_age_seconds": stats.oldest_ready_age_seconds,
            "running": stats.running,
        },
        "current": decision.current if decision else None,
        "desired": decision.desired if decision else None,
        "updates": {u.type: u.quantity for u in decision.updates} if decision else {},
        "action": out.action,
        "rule": decision.rule if decision else None,
        "reason": out.reason,
        "request_id": out.request_id,
        "guardrails": list(out.guardrails),
        "cost_per_hour_usd": _money(out.hourly_usd),
        "cost_per_day_usd": _money(None if out.hourly_usd is None else out.hourly_usd * 24),
    }


def _money(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
