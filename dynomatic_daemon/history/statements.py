"""History's SQL: one statement writes a batch (samples and events), one prunes (bounded)."""

from __future__ import annotations

from typing import Any, LiteralString

from dynomatic_daemon.history.rows import Batch, Sample, event_json, merge

WRITE: LiteralString = """
WITH s AS (
    INSERT INTO {schema}.samples AS old (app, minute, process_type, ticks, ready_max,
        ready_capped, latency_max, running_max, dynos_max, desired_max, dyno_seconds, errors, size)
    SELECT * FROM unnest(%(s_app)s::text[], %(s_minute)s::timestamptz[], %(s_type)s::text[],
        %(s_ticks)s::smallint[], %(s_ready)s::integer[], %(s_capped)s::boolean[],
        %(s_latency)s::real[], %(s_running)s::integer[], %(s_dynos)s::smallint[],
        %(s_desired)s::smallint[], %(s_dyno_seconds)s::real[], %(s_errors)s::smallint[],
        %(s_size)s::text[])
    ON CONFLICT (app, minute, process_type) DO UPDATE SET
        ticks = old.ticks + excluded.ticks,
        ready_max = greatest(old.ready_max, excluded.ready_max),
        ready_capped = old.ready_capped OR excluded.ready_capped,
        latency_max = greatest(old.latency_max, excluded.latency_max),
        running_max = greatest(old.running_max, excluded.running_max),
        dynos_max = greatest(old.dynos_max, excluded.dynos_max),
        desired_max = greatest(old.desired_max, excluded.desired_max),
        dyno_seconds = old.dyno_seconds + excluded.dyno_seconds,
        errors = old.errors + excluded.errors,
        size = coalesce(excluded.size, old.size)
    RETURNING 1
), e AS (
    INSERT INTO {schema}.events (app, at, process_type, kind, current_dynos, desired_dynos,
        reason, fields)
    SELECT * FROM unnest(%(e_app)s::text[], %(e_at)s::timestamptz[], %(e_type)s::text[],
        %(e_kind)s::text[], %(e_current)s::integer[], %(e_desired)s::integer[],
        %(e_reason)s::text[], %(e_fields)s::jsonb[])
    RETURNING 1
)
SELECT (SELECT count(*) FROM s), (SELECT count(*) FROM e)
"""
# ctid batches keep one prune bounded however much is due (a shortened retention, say)
PRUNE: LiteralString = """
WITH s AS (
    DELETE FROM {schema}.samples WHERE ctid = ANY(ARRAY(SELECT ctid FROM {schema}.samples
        WHERE app = %(app)s AND minute < %(before)s LIMIT %(limit)s)) RETURNING 1
), e AS (
    DELETE FROM {schema}.events WHERE ctid = ANY(ARRAY(SELECT ctid FROM {schema}.events
        WHERE app = %(app)s AND at < %(before)s LIMIT %(limit)s)) RETURNING 1
)
SELECT (SELECT count(*) FROM s), (SELECT count(*) FROM e)
"""


def write_params(batch: Batch) -> dict[str, Any]:
    merged: dict[tuple[Any, ...], Sample] = {}
    for s in batch.samples:
        merged[s.key()] = merge(merged[s.key()], s) if s.key() in merged else s
    rows, events = list(merged.values()), batch.events
    return {
        "s_app": [r.app for r in rows],
        "s_minute": [r.minute for r in rows],
        "s_type": [r.process_type for r in rows],
        "s_ticks": [min(r.ticks, 32767) for r in rows],
        "s_ready": [r.ready_max for r in rows],
        "s_capped": [r.ready_capped for r in rows],
        "s_latency": [r.latency_max for r in rows],
        "s_running": [r.running_max for r in rows],
        "s_dynos": [r.dynos_max for r in rows],
        "s_desired": [r.desired_max for r in rows],
        "s_dyno_seconds": [r.dyno_seconds for r in rows],
        "s_errors": [min(r.errors, 32767) for r in rows],
        "s_size": [r.size for r in rows],
        "e_app": [e.app for e in events],
        "e_at": [e.at for e in events],
        "e_type": [e.process_type for e in events],
        "e_kind": [e.kind for e in events],
        "e_current": [e.current for e in events],
        "e_desired": [e.desired for e in events],
        "e_reason": [e.reason[:2000] for e in events],
        "e_fields": [event_json(e.fields) for e in events],
    }
