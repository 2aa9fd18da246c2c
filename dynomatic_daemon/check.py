"""``dynomatic check``: prove, before enabling the daemon, that every piece it needs works."""

from __future__ import annotations

from collections.abc import Callable
from difflib import get_close_matches
from functools import partial
from typing import Any, TextIO

from dynomatic_daemon.config import Settings
from dynomatic_daemon.db import Database
from dynomatic_daemon.errors import DynomaticError
from dynomatic_daemon.models import Formation
from dynomatic_daemon.state.store import StateStore
from dynomatic_daemon.tick import Ticker, missing_types, not_in_formation

STORE_WAIT_SECONDS = 5.0  # check is no tick: it may wait for the state store's full answer


class _Report:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.ok = True

    def line(self, passed: bool, subject: str, detail: str) -> None:
        self.ok = self.ok and passed
        print(f"{'ok  ' if passed else 'FAIL'}  {subject}: {detail}", file=self.out)

    def attempt(self, subject: str, fn: Callable[[], str]) -> bool:
        try:
            detail = fn()
        except DynomaticError as exc:
            self.line(False, subject, str(exc))
            return False
        self.line(True, subject, detail)
        return True


def run_checks(
    settings: Settings, ticker: Ticker, out: TextIO, detected: dict[str, str] | None = None
) -> bool:
    report = _Report(out)
    print(f"dynomatic check: app {settings.heroku.app}", file=out)
    report.line(True, "config", f"{len(settings.process)} process type(s)")
    for subject, detail in latency_warnings(settings):
        print(f"warn  {subject}: {detail}", file=out)  # advice: does not fail the check
    for name, evidence in (detected or {}).items():
        report.line(True, "auto-detected adapter", f"{name}: found {evidence}")
    for name, database in ticker.databases.items():
        report.attempt(f"database for {name}", partial(_database, database))
    for name in ticker.adapters:
        read: Callable[[], str] = partial(_queues_of, ticker, name)
        report.attempt(f"adapter {name}", read)
    formation: list[Formation] = []
    report.attempt("heroku", lambda: _formation(ticker, formation))
    if formation:
        for proc in settings.process:
            missing = missing_types(proc, formation[0])
            detail = (
                not_in_formation(missing[0]) + _did_you_mean(missing[0], formation[0])
                if missing
                else "in formation: "
                + ", ".join(f"{t}={formation[0].quantity(t)}" for t in proc.formation_types)
            )
            report.line(not missing, f"process {proc.type}", detail)
        _guardrails(report, ticker, formation[0])
    print("all checks passed" if report.ok else "some checks FAILED", file=out)
    return report.ok


def _guardrails(report: _Report, ticker: Ticker, formation: Formation) -> None:
    """The state store, each guardrail in force, and what each type costs and has spent."""
    guardian = ticker.guardian
    if guardian is None:
        return
    store = guardian.store
    if store is None:
        print(
            "note  state store: none ([state] and [history] are off): no pauses; overrides and "
            "spend are kept in memory only",
            file=report.out,
        )
    elif not report.attempt("state store", partial(_store, store)):
        return
    guardian.begin(lambda: None, wait=STORE_WAIT_SECONDS)  # as the next tick will read it
    for found in guardian.report(formation):
        in_force = found.in_force
        words = {
            "pause": in_force.pause,
            "override": in_force.override,
            "release_hold": in_force.release_hold,
            "budget": f"caps it at {in_force.cap}: {in_force.cap_reason}",
        }
        for name in in_force.names:
            print(f"warn  guardrail {name} on {found.process_type}: {words[name]}", file=report.out)
        cost = (
            "price unknown (give it in [budget] prices)"
            if found.hourly_usd is None
            else f"${found.hourly_usd:.4f}/h, ${found.hourly_usd * 24:.2f}/day"
        )
        report.line(
            True,
            f"cost {found.process_type}",
            f"{found.dynos} dyno(s) now: {cost}; spent {found.spent.day_dyno_hours:.2f} "
            f"dyno-hours today, ${found.spent.month_usd:.2f} this month",
        )


def _store(store: StateStore) -> str:
    try:
        guards = store.active()
    except Exception as exc:  # noqa: BLE001 - reported as a failed check, in one line
        raise DynomaticError(store.describe(exc)) from None
    return f"schema {store.schema!r}, {len(guards)} guardrail(s) in force"


def _did_you_mean(process_type: str, formation: Formation) -> str:
    types = sorted(formation.entries)
    match = get_close_matches(process_type, types, n=1, cutoff=0.6)
    if match:
        return f"; did you mean {match[0]!r}?"
    return f"; the formation has {', '.join(types) or 'no process types'}"


def latency_warnings(settings: Settings) -> list[tuple[str, str]]:
    """Latency rules shorter than interval + boot: a job that wakes a dyno waits about that long
    however the rules are set, so such a rule fires on every wake-up (the policy no longer lets
    the wait during a boot add dynos, but the rule still says less than it seems to)."""
    warnings = []
    interval = settings.daemon.interval_seconds
    for proc in settings.process:
        floor = interval + proc.dyno_boot_seconds
        short = [r.at_least_seconds for r in proc.latency_rules if r.at_least_seconds < floor]
        if short:
            warnings.append(
                (
                    f"process {proc.type}",
                    f"latency_rules at {', '.join(f'{s:g}s' for s in short)} are shorter than "
                    f"interval_seconds + dyno_boot_seconds = {floor:g}s; a job that wakes a dyno "
                    "waits that long anyway (see docs/scaling.md)",
                )
            )
    return warnings


def _database(database: Database) -> str:
    def probe(conn: Any) -> str:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT current_setting('server_version'), current_user, "
                "current_setting('default_transaction_read_only')"
            )
            version, user, read_only = cur.fetchone()
        return f"PostgreSQL {version}, user {user}, read-only {read_only}"

    return database.run(probe)


def _queues_of(ticker: Ticker, adapter: str) -> str:
    reading = ticker.read_adapter(adapter)
    if not reading.queues:
        return "query ran; no queues found yet"
    parts = []
    for q in reading.queues:
        age = "-" if q.oldest_ready_age_seconds is None else f"{q.oldest_ready_age_seconds:.0f}s"
        more = "+" if q.ready_capped else ""
        parts.append(f"{q.queue} (ready {q.ready}{more}, oldest {age}, running {q.running})")
    return "; ".join(parts)


def _formation(ticker: Ticker, into: list[Formation]) -> str:
    result = ticker.keeper.heroku.list_formation()
    into.append(result.formation)
    entries = ", ".join(f"{e.type}={e.quantity}" for e in result.formation.entries.values())
    return f"formation {entries or '(empty)'}; RateLimit-Remaining {result.rate_limit_remaining}"
