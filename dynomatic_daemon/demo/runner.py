"""``dynomatic demo``: the real daemon on an embedded Postgres, a simulated app and a local Heroku.

Nothing needs to be running: an embedded PostgreSQL is started in a temporary directory (or the
database in ``DATABASE_URL`` is used, in a schema of its own that is dropped afterwards), and
the Heroku Platform API is a loopback stand-in. Exit code 0 when the duration is up or a signal
(Ctrl-C, SIGTERM) ends the run; 1 when something could not be started.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Any

from dynomatic_daemon.adapters import catalog
from dynomatic_daemon.cli_output import ClosableOutput

if TYPE_CHECKING:
    from dynomatic_daemon.demo.session import Demo

EXIT_OK, EXIT_FAILURE = 0, 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--duration",
        type=_bounded(1, 86400),
        default=60.0,
        metavar="SECONDS",
        help="how long to run (default 60)",
    )
    parser.add_argument(
        "--interval",
        type=_bounded(0.1, 60),
        default=1.0,
        metavar="SECONDS",
        help="seconds between the daemon's ticks (default 1; 0.1 to 60)",
    )
    parser.add_argument(
        "--adapter",
        choices=catalog.DETECTABLE,  # every library has a workload; a test keeps them equal
        default="delayed_job",
        metavar="NAME",
        help="the queue library to simulate: "
        + ", ".join(catalog.DETECTABLE)
        + " (default delayed_job)",
    )
    parser.add_argument(
        "--seed", type=int, default=1, help="seed of the simulated load: same seed, same load"
    )


def main(args: argparse.Namespace) -> int:
    # Imported here, not at the top: the command line loads this module for its options only,
    # and a plain `dynomatic run` should not pay for importing the demo and its workloads.
    from dynomatic_daemon.demo.session import Demo, DemoOptions  # noqa: PLC0415

    # A signal during setup only takes note: raising in the middle of starting the embedded
    # server could leave its files half-written; each setup step is bounded, and then we stop.
    interrupt = threading.Event()
    previous = _handle_signals(lambda _signum, _frame: interrupt.set())
    ClosableOutput.watch(sys.stdout, interrupt.set)  # `dynomatic demo | head` ends it as Ctrl-C
    demo = Demo(
        DemoOptions(args.duration, args.interval, args.adapter, args.seed, args.log_format),
        sys.stdout, os.environ, interrupt,
    )  # fmt: skip
    failure = None
    try:
        demo.start()
        if not interrupt.is_set():
            demo.run()  # the daemon loop handles SIGINT and SIGTERM itself while it runs
    except Exception as exc:  # noqa: BLE001 - one scrubbed line, then everything is cleaned up
        failure = demo.scrub(f"{type(exc).__name__}: {exc}")
    finally:
        _handle_signals(_ignore)  # a second Ctrl-C must not cut the cleanup short
        try:
            demo.stack.close()
        finally:
            _restore(previous)
    if failure is not None:
        sys.stderr.write(f"dynomatic demo: {failure}\n")
        return EXIT_FAILURE
    _report(demo)
    return EXIT_OK


def _report(demo: Demo) -> None:
    summary = demo.summary(interrupted=not demo.completed)
    demo.log.info("demo_summary", **summary.fields())
    sys.stdout.write(("" if demo.output.tty else "\n") + summary.text())
    for error in demo.tally.errors:
        sys.stdout.write(f"  note: {demo.scrub(error)}\n")
    sys.stdout.flush()


Handler = Callable[[int, FrameType | None], Any]


def _ignore(signum: int, _frame: FrameType | None) -> None:
    pass


def _handle_signals(handler: Handler) -> dict[int, Any]:
    return {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}


def _restore(previous: dict[int, Any]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)


def _bounded(low: float, high: float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low:g} and {high:g}, got {text}")
        return value

    return parse
