"""``dynomatic simulate``: what would these configs cost on this day, and how long would jobs wait?

This module only declares the arguments; ``runner`` does the work and is imported only when the
command runs, so the other commands do not pay for it.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

SCENARIO_NAMES = ("steady", "bursty", "day-night", "hourly-cron", "heavy-tailed")
REFERENCE_NAMES = ("always-max", "hirefire", "keda-hpa", "judoscale")
_SPAN = re.compile(r"^(\d+(?:\.\d+)?)([smhd]?)$")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        action="append",
        dest="configs",
        metavar="TOML",
        help="a config to replay (repeat to compare; default: $DYNOMATIC_CONFIG or "
        "./dynomatic.toml); no secrets are needed",
    )
    parser.add_argument(
        "--app",
        metavar="NAME",
        help="in a config of several apps ([[app]] blocks), the app to replay",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--scenario",
        choices=SCENARIO_NAMES,
        metavar="NAME",
        help=f"a built-in, seeded day: {', '.join(SCENARIO_NAMES)}",
    )
    source.add_argument("--trace", type=Path, metavar="CSV", help="arrival_s,service_s[,queue]")
    source.add_argument(
        "--from-database",
        action="store_true",
        help="rebuild the trace from the finished jobs in $DATABASE_URL (read-only)",
    )
    parser.add_argument(
        "--since", type=span, default=span("1d"), help="with --from-database: 7d, 12h"
    )
    parser.add_argument("--seed", type=int, default=1, help="scenario and worker race (default 1)")
    parser.add_argument(
        "--references",
        type=references,
        default=REFERENCE_NAMES,
        help=f"comma-separated, or none (default: {','.join(REFERENCE_NAMES)})",
    )
    parser.add_argument("--boot-seconds", type=bounded(0, 3600), help="model boot time")
    parser.add_argument("--worker-slots", type=bounded(1, 10_000, int), help="model slots per dyno")
    parser.add_argument("--interval", type=bounded(0.01, 3600), help="the daemon's polling")
    parser.add_argument("--size", default="standard-1x", help="dyno size for the cost column")
    parser.add_argument("--price", type=bounded(0, 10_000), help="USD per dyno-hour (overrides)")
    parser.add_argument("--start", type=datetime.fromisoformat, help="trace start, for schedules")
    parser.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    parser.add_argument("--html", type=Path, metavar="FILE", help="write a page with charts")


def span(text: str) -> float:
    match = _SPAN.match(text.strip())
    if not match or float(match.group(1)) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 90s, 30m, 12h or 7d")
    return float(match.group(1)) * _UNIT[match.group(2)]


def references(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if names == ("none",):
        return ()
    unknown = [n for n in names if n not in REFERENCE_NAMES]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown reference {', '.join(unknown)}; choose from {', '.join(REFERENCE_NAMES)}"
        )
    return names


def bounded(low: float, high: float, kind: type = float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text} is outside {low:g}..{high:g}")
        return value  # type: ignore[no-any-return]

    return parse


def run(args: argparse.Namespace) -> int:
    from dynomatic_daemon.simulate import runner  # noqa: PLC0415 - only this command pays for it

    if not args.configs and getattr(args, "config", None):  # `dynomatic --config A simulate`
        args.configs = [args.config]

    return runner.main(args)
