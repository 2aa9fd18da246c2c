"""Command line: ``dynomatic run | once | check | demo``; collaborators come from ``wiring``.

Exit codes: 0 success; 1 a runtime failure (``check`` found a problem, ``once`` could not decide);
2 bad configuration or usage; 3 ``once`` found another copy holding the leader lock (it decided
nothing); 130 interrupted (SIGINT). Once the configuration is read, everything the process
writes to stdout and stderr passes through one scrubber of the secrets it holds.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

import structlog

from dynomatic_daemon import __version__, config, logs, wiring
from dynomatic_daemon.check import run_checks
from dynomatic_daemon.demo import runner as demo_runner
from dynomatic_daemon.errors import ConfigError
from dynomatic_daemon.leader import Role
from dynomatic_daemon.logs import Logger
from dynomatic_daemon.tick import Outcome

EXIT_OK, EXIT_FAILURE, EXIT_CONFIG, EXIT_STANDBY, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "demo":  # builds its own database, stand-in and config
        return demo_runner.main(args)
    try:
        settings = config.load(config.resolve_path(args.config, os.environ), os.environ)
    except ConfigError as exc:
        _print_problems(exc)
        return EXIT_CONFIG
    handler = {"run": cmd_run, "once": cmd_once, "check": cmd_check}[args.command]
    with logs.scrubbed_output(logs.SecretScrubber(wiring.secrets_of(settings))):
        try:
            return handler(settings, args)
        except ConfigError as exc:  # auto-detection can only judge once the database answers
            _print_problems(exc)
            return EXIT_CONFIG
        except KeyboardInterrupt:
            print("dynomatic: interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
        except Exception as exc:  # noqa: BLE001 - one line, never a traceback with secrets
            print(f"dynomatic: {type(exc).__name__}: {exc}", file=sys.stderr)
            return EXIT_FAILURE


def _print_problems(exc: ConfigError) -> None:
    print(f"dynomatic: invalid configuration ({len(exc.problems)} problem(s)):", file=sys.stderr)
    for problem in exc.problems:
        print(f"  {problem}", file=sys.stderr)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dynomatic", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"dynomatic-daemon {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("run", "run the daemon until SIGTERM"),
        ("once", "run one tick and exit"),
        ("check", "validate config, database, adapters and formation, then exit"),
    ):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument(
            "--config", help="TOML file (default: $DYNOMATIC_CONFIG or ./dynomatic.toml)"
        )
        cmd.add_argument("--log-format", choices=["auto", "logfmt", "console", "json"])
    demo = sub.add_parser("demo", help="the real daemon on an embedded Postgres and local Heroku")
    demo_runner.add_arguments(demo)
    once = sub.choices["once"]
    once.add_argument("--dry-run", action="store_true", help="decide but send no formation change")
    once.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    return parser


def _logger(settings: config.Settings, args: argparse.Namespace, stream: Any = None) -> Logger:
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    fmt = args.log_format or settings.daemon.log_format
    logs.configure(fmt, stream=stream, secrets=wiring.secrets_of(settings))
    logger: Logger = structlog.get_logger("dynomatic")
    return logger


def cmd_run(settings: config.Settings, args: argparse.Namespace) -> int:
    log = _logger(settings, args)
    built = wiring.build_when_ready(settings, log)
    if built is None:
        log.info("daemon_stopped")
        return EXIT_OK
    with built.stack:
        log.info(
            "daemon_started",
            version=__version__,
            app=settings.heroku.app,
            processes=",".join(p.type for p in settings.process),
            interval_seconds=settings.daemon.interval_seconds,
            dry_run=settings.daemon.dry_run,
        )
        clean = wiring.daemon_loop(built.ticker, log).run()
    if not clean:
        sys.stdout.flush()
        os._exit(EXIT_OK)  # a tick stuck past the grace period must not hold the dyno's exit
    return EXIT_OK


def cmd_once(settings: config.Settings, args: argparse.Namespace) -> int:
    log = _logger(settings, args, stream=sys.stderr if args.json else None)
    built = wiring.build(settings, log, lock=not (args.dry_run or settings.daemon.dry_run))
    with built.stack:
        outcomes = built.ticker.tick(dry_run=True if args.dry_run else None)
    role = built.ticker.role
    if args.json:
        document = report(settings, outcomes, role)
        scrubbed = logs.SecretScrubber(wiring.secrets_of(settings)).scrub_value(document)
        print(json.dumps(scrubbed, indent=2))
    if role == Role.STANDBY:
        return EXIT_STANDBY
    return EXIT_FAILURE if any(o.action == "error" for o in outcomes) else EXIT_OK


def report(
    settings: config.Settings, outcomes: Sequence[Outcome], role: Role | None = None
) -> dict[str, Any]:
    """The ``once --json`` document; ``role`` is null when no lock was taken (a dry run)."""
    return {
        "app": settings.heroku.app,
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
    }


def cmd_check(settings: config.Settings, args: argparse.Namespace) -> int:
    log = _logger(settings, args, stream=sys.stderr)
    built = wiring.build(settings, log, lock=False)
    with built.stack:
        ok = run_checks(built.ticker.settings, built.ticker, sys.stdout, built.detected)
    return EXIT_OK if ok else EXIT_FAILURE
