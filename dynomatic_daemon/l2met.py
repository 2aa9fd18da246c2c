"""Metrics in Heroku's log convention (l2met): fields of the ``scale_decision`` line.

A Librato-style log drain (or any l2met reader) charts ``sample#<name>=<value>`` as a gauge and
sums ``count#<name>=<n>``, with no setup beyond the drain. Names are
``dynomatic.<process type>.<measure>``; latency is in seconds. A value that is not known this
tick (no queue data, no running count) is left out rather than sent as zero.
"""

from __future__ import annotations

from typing import Any

from dynomatic_daemon.models import Decision, ProcessStats


def fields(
    process_type: str, stats: ProcessStats | None, decision: Decision | None, action: str
) -> dict[str, Any]:
    prefix = f"dynomatic.{process_type}"
    out: dict[str, Any] = {}
    if stats is not None:
        out[f"sample#{prefix}.ready"] = stats.ready
        if stats.oldest_ready_age_seconds is not None:
            out[f"sample#{prefix}.latency"] = round(stats.oldest_ready_age_seconds, 1)
        if stats.running is not None:
            out[f"sample#{prefix}.running"] = stats.running
    if decision is not None:
        out[f"sample#{prefix}.dynos"] = decision.desired if action == "scaled" else decision.current
    if action == "scaled":
        out[f"count#{prefix}.writes"] = 1
    elif action == "error":
        out[f"count#{prefix}.errors"] = 1
    return out
