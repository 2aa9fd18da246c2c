"""``dynomatic pause``, ``resume`` and ``status``: run from anywhere that has the app's config
(``heroku run dynomatic pause --for 30m``), they talk to the state store only, never to Heroku;
the running daemon sees a change within one tick."""

from __future__ import annotations

import argparse
import getpass
import os
import re
import socket
import sys
from datetime import UTC, datetime

from dynomatic_daemon import budget
from dynomatic_daemon.config import Settings
from dynomatic_daemon.guard_config import store_target
from dynomatic_daemon.state.store import EVERY_TYPE, Guard, Spent, StateStore

DEFAULT_PAUSE = "1h"
MAX_PAUSE_SECONDS = 30 * 86_400.0
EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
NO_STORE = (
    "dynomatic: pauses need the daemon's state store, and none is configured: set "
    "[state] enabled = true (or enable [history]); to stop the scaler right now without it, "
    "run `heroku ps:scale scaler=0` (the process that runs `dynomatic run`)"
)


def duration(text: str) -> float:
    """``90s``, ``30m``, ``2h``, ``1d`` or plain seconds."""
    match = _DURATION.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 30m, 2h or 90s")
    seconds = float(match[1]) * _UNITS[match[2] or "s"]
    if not 0 < seconds <= MAX_PAUSE_SECONDS:
        raise argparse.ArgumentTypeError(f"{text!r}: give more than 0 and at most 30d")
    return seconds


def add_pause_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--type", metavar="T", help="one process type (default: every type)")
    parser.add_argument(
        "--for",
        dest="duration",
        type=duration,
        default=duration(DEFAULT_PAUSE),
        metavar="DURATION",
        help=f"how long, e.g. 30m, 2h (default: {DEFAULT_PAUSE}); it ends by itself",
    )
    parser.add_argument("--reason", default="", metavar="TEXT", help="shown in logs and status")


def add_resume_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--type", metavar="T", help="one process type (default: every pause)")


def _store(settings: Settings, purpose: str) -> StateStore | None:
    target = store_target(settings.state, settings.history)
    return None if target is None else StateStore(target, settings.heroku.app, purpose)


def _bad_type(settings: Settings, ptype: str | None) -> bool:
    types = [p.type for p in settings.process]
    if ptype is not None and ptype not in types:
        message = f"dynomatic: --type {ptype!r} is not a [[process]] type ({', '.join(types)})"
        print(message, file=sys.stderr)
        return True
    return False


def who() -> str:
    """Who gave the command: the user and host (a one-off dyno's name on Heroku)."""
    dyno = os.environ.get("DYNO")
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{dyno or socket.gethostname()[:40]}"


def cmd_pause(settings: Settings, args: argparse.Namespace) -> int:
    if _bad_type(settings, args.type):
        return EXIT_USAGE
    store = _store(settings, "dynomatic-pause")
    if store is None:
        print(NO_STORE, file=sys.stderr)
        return EXIT_FAILURE
    try:
        scope = args.type or EVERY_TYPE
        guard = store.put("pause", scope, args.duration, reason=args.reason, by=who())
    finally:
        store.close()
    scope = f"process type {args.type}" if args.type else "every process type"
    print(
        f"paused {scope} of {settings.heroku.app} until {guard.until.isoformat(timespec='seconds')}"
        f" ({args.duration:.0f}s); the daemon sends no formation change for it meanwhile. "
        "`dynomatic resume` ends it sooner"
    )
    return EXIT_OK


def cmd_resume(settings: Settings, args: argparse.Namespace) -> int:
    if _bad_type(settings, args.type):
        return EXIT_USAGE
    store = _store(settings, "dynomatic-resume")
    if store is None:
        print(NO_STORE, file=sys.stderr)
        return EXIT_FAILURE
    try:
        # a manual override ends too: resuming means "the daemon drives this again"
        ended = store.remove("pause", args.type) + store.remove("override", args.type)
    finally:
        store.close()
    if not ended:
        print("nothing to resume: no pause in force" + (f" for {args.type}" if args.type else ""))
        return EXIT_OK
    names = ", ".join("every type" if t == EVERY_TYPE else t for t in ended)
    print(f"resumed {names}; the daemon decides again from its next tick")
    return EXIT_OK


def cmd_status(settings: Settings, args: argparse.Namespace) -> int:
    store = _store(settings, "dynomatic-status")
    if store is None:
        print(NO_STORE, file=sys.stderr)
        return EXIT_FAILURE
    now = datetime.now(UTC)
    try:
        guards = store.active()
        spent = store.spent(now.date())
    finally:
        store.close()
    print(f"dynomatic status: app {settings.heroku.app}, state in schema {store.schema!r}")
    for line in guard_lines(guards):
        print(line)
    if not guards:
        print("no pause or override in force")
    for line in spend_lines(settings, spent, now):
        print(line)
    return EXIT_OK


def guard_lines(guards: list[Guard]) -> list[str]:
    lines = []
    for g in guards:
        scope = "every type" if g.process_type == EVERY_TYPE else g.process_type
        who_ = f" by {g.created_by}" if g.created_by else ""
        why = f": {g.reason}" if g.reason else ""
        lines.append(
            f"{g.kind:<12} {scope:<12} until {g.until.isoformat(timespec='seconds')} "
            f"({g.seconds_left:.0f}s left){who_}{why}"
        )
    return lines


def spend_lines(settings: Settings, spent: dict[str, Spent], now: datetime) -> list[str]:
    lines = []
    for proc in settings.process:
        s = spent.get(proc.type)
        day, month = (s.day_dyno_hours, s.month_usd) if s else (0.0, 0.0)
        lines.append(
            f"spend        {proc.type:<12} {day:.2f} dyno-hours today, ${month:.2f} this month"
        )
    left_day, left_month = budget.hours_left_in_day(now), budget.hours_left_in_month(now)
    if settings.budget.enabled:
        lines.append(
            f"budget       mode {settings.budget.mode}; {left_day:.1f} h of the day and "
            f"{left_month:.0f} h of the month left"
        )
    return lines
