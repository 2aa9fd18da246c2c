"""The command line: one table of commands, each with its own arguments and handler.

A command that reads the config (``run``, ``once``, ``check``) gets validated settings; the others
(``demo``, ``standin``) build what they need themselves. Adding a command is one ``Command`` entry
in ``COMMANDS``. Collaborators come from ``wiring``; the demo is imported lazily.
Exit codes: 0 success; 1 a runtime failure; 2 bad configuration or usage; 3 ``once`` found
another copy holding the leader lock (it decided nothing); 130 interrupted (SIGINT). Once the
configuration is read, everything the process writes to stdout and stderr passes through one
scrubber of the secrets it holds.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TextIO, cast

import structlog

from dynomatic_daemon import __version__, apps_config, config, fleet_cli, logs, once_json, wiring
from dynomatic_daemon.check import run_checks
from dynomatic_daemon.cli_output import ClosableOutput
from dynomatic_daemon.clock import SystemClock
from dynomatic_daemon.demo import runner as demo_runner
from dynomatic_daemon.errors import ConfigError, Problem
from dynomatic_daemon.history import commands as history_commands
from dynomatic_daemon.leader import Role
from dynomatic_daemon.logs import Logger
from dynomatic_daemon.sandbox import heroku_standin
from dynomatic_daemon.simulate import command as simulate_command
from dynomatic_daemon.state import commands as state_commands

EXIT_OK, EXIT_FAILURE, EXIT_CONFIG, EXIT_STANDBY, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
CONFIG, LOG_FORMAT = "--config", "--log-format"

DESCRIPTION = """\
Scale the worker dynos of a Heroku app from the backlog of its Postgres job
queue. Run it as one more process in the app's Procfile (scaler: dynomatic run);
try it first with `dynomatic check` and `dynomatic once --dry-run`, or watch it
work locally with `dynomatic demo`. --config and --log-format go before or
after the command."""

EPILOG = """\
environment:
  HEROKU_API_KEY    the Heroku API token (HEROKU_TOKEN, the Ruby gem's name,
                    is read when HEROKU_API_KEY is not set)
  HEROKU_APP_NAME   the app to scale (DYNOMATIC_HEROKU_APP wins over it)
  DATABASE_URL      the database with the job tables ([database] url_env
                    names another variable)
  DYNOMATIC_CONFIG  the config file when --config is not given
  DYNOMATIC_<SECTION>_<KEY>
                    any key of [heroku], [database] or [daemon], e.g.
                    DYNOMATIC_DAEMON_DRY_RUN=true

exit codes:
  0  success; for run, stopped by SIGTERM or SIGINT
  1  a failure at run time: check found a problem, once could not read or
     scale, demo could not start, or the output was closed early
     (dynomatic check | head -1)
  2  bad configuration or usage
  3  once: another copy holds the leader lock, so it decided nothing
  130  interrupted (Ctrl-C)

`dynomatic COMMAND --help` describes each command. Guides: README.md and
docs/ (deploy.md, local-testing.md, migrating-from-dynomatic.md)."""


@dataclass(frozen=True)
class Command:
    """One subcommand. ``handler`` gets the parsed arguments and returns the exit code."""

    help: str
    exits: str  # its exit codes, shown by `dynomatic COMMAND --help`
    handler: Callable[[argparse.Namespace], int]
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None
    options: tuple[str, ...] = (CONFIG, LOG_FORMAT)  # the global options it takes
    log_format_help: str = (
        "log lines as logfmt, console or JSON; auto: console on a terminal, logfmt elsewhere "
        "(default: [daemon] log_format, which defaults to auto)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    with _closable_stdout() as out:
        try:
            code = _dispatch(argv)
        finally:
            out.flush()  # now, while a closed pipe is still caught: not at interpreter exit
    return EXIT_FAILURE if out.closed else code


def _dispatch(argv: Sequence[str] | None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    command = COMMANDS[args.command]
    for option in (CONFIG, LOG_FORMAT):
        if _given(args, option) and option not in command.options:
            parser.error(f"{option} does not apply to `dynomatic {args.command}`")
    return command.handler(args)


@contextlib.contextmanager
def _closable_stdout() -> Iterator[ClosableOutput]:
    """Standard output for the length of one command, quiet once its reader has gone."""
    previous = sys.stdout
    out = ClosableOutput(previous)
    sys.stdout = cast(TextIO, out)
    try:
        yield out
    finally:
        sys.stdout = previous


def _given(args: argparse.Namespace, option: str) -> bool:
    return getattr(args, option.lstrip("-").replace("-", "_"), None) is not None


def _print_problems(exc: ConfigError) -> None:
    print(f"dynomatic: invalid configuration ({len(exc.problems)} problem(s)):", file=sys.stderr)
    for problem in exc.problems:
        print(f"  {problem}", file=sys.stderr)


def with_settings(
    handler: Callable[[config.Settings, argparse.Namespace], int],
    several: Callable[[apps_config.Apps, argparse.Namespace], int] | None = None,
) -> Callable[[argparse.Namespace], int]:
    """A handler that gets the validated config; bad config exits 2, other errors 1.
    ``several`` handles a file of several apps ([[app]] blocks); without it such a file is
    refused (exit 2)."""

    def run(args: argparse.Namespace) -> int:
        try:
            apps = apps_config.load(config.resolve_path(args.config, os.environ), os.environ)
            if apps.multi and several is None and getattr(args, "app", None):
                apps = _picked(apps, args.app)
            if apps.multi and (several is None or getattr(args, "http_port", None)):
                raise ConfigError([_one_app_only(args, several is None, len(apps.apps))])
        except ConfigError as exc:
            _print_problems(exc)
            return EXIT_CONFIG
        with logs.scrubbed_output(logs.SecretScrubber(fleet_cli.secrets_of(apps))):
            try:
                if apps.multi and several is not None:
                    return several(apps, args)
                return handler(apps.apps[0], args)
            except ConfigError as exc:  # auto-detection can only judge once the database answers
                _print_problems(exc)
                return EXIT_CONFIG
            except KeyboardInterrupt:
                print("dynomatic: interrupted", file=sys.stderr)
                return EXIT_INTERRUPTED
            except Exception as exc:  # noqa: BLE001 - one line, never a traceback with secrets
                print(f"dynomatic: {type(exc).__name__}: {exc}", file=sys.stderr)
                return EXIT_FAILURE

    return run


def _one_app_only(args: argparse.Namespace, command: bool, apps: int) -> Problem:
    what = f"dynomatic {args.command}" if command else "--http-port"
    hint = "name one with --app NAME" if hasattr(args, "app") else "use a single-app config"
    return Problem(what, f"works on one app; this config has {apps} [[app]] blocks ({hint})")


def _picked(apps: apps_config.Apps, name: str) -> apps_config.Apps:
    """The one app a command such as ``history --app NAME`` reads, of a config of several."""
    for one in apps.apps:
        if one.heroku.app == name:
            return apps_config.Apps(apps=(one,))
    names = ", ".join(a.heroku.app for a in apps.apps)
    raise ConfigError([Problem("--app", f"no app {name!r} in this config ({names})")])


def _with_app(
    add_arguments: Callable[[argparse.ArgumentParser], None],
) -> Callable[[argparse.ArgumentParser], None]:
    def add(parser: argparse.ArgumentParser) -> None:
        add_arguments(parser)
        parser.add_argument(
            "--app", metavar="NAME", help="in a config of several apps, the app to act on"
        )

    return add


def _global_options(parser: argparse.ArgumentParser, command: Command, default: Any) -> None:
    """Where ``default`` is SUPPRESS (after the command), an option left out keeps the value
    given before the command."""
    options = command.options
    if CONFIG in options:
        parser.add_argument(
            CONFIG,
            metavar="PATH",
            default=default,
            help="the TOML config file (default: $DYNOMATIC_CONFIG, else ./dynomatic.toml)",
        )
    if LOG_FORMAT in options:
        parser.add_argument(
            LOG_FORMAT,
            choices=["auto", "logfmt", "console", "json"],
            default=default,
            help=command.log_format_help,
        )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dynomatic",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"dynomatic-daemon {__version__}")
    _global_options(parser, COMMANDS["run"], None)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", title="commands")
    for name, command in COMMANDS.items():
        cmd = sub.add_parser(
            name,
            help=command.help,
            description=command.help,
            epilog=f"exit codes: {command.exits}",
            conflict_handler="resolve",  # a command may give a global option its own meaning
        )
        _global_options(cmd, command, argparse.SUPPRESS)
        if command.add_arguments is not None:
            command.add_arguments(cmd)
    return parser


def _logger(settings: config.Settings, args: argparse.Namespace, stream: Any = None) -> Logger:
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    fmt = args.log_format or settings.daemon.log_format
    logs.configure(fmt, stream=stream, secrets=wiring.secrets_of(settings))
    log: Logger = structlog.get_logger("dynomatic")
    for notice in config.notices(os.environ):
        log.info("config_notice", notice=notice)
    return log


def cmd_run(settings: config.Settings, args: argparse.Namespace) -> int:
    log = _logger(settings, args)
    # First, so a web dyno binds $PORT (and /healthz answers) while the database is awaited.
    watching = wiring.observe(settings, log, SystemClock(), http_port=args.http_port)
    with watching.stack:
        return _run(settings, log, watching)


def _run(settings: config.Settings, log: Logger, watching: wiring.Observing) -> int:
    built = wiring.build_when_ready(settings, log)
    if built is None:
        log.info("daemon_stopped")
        return EXIT_OK
    built.ticker.observer = watching.hub
    with built.stack:
        log.info(
            "daemon_started",
            version=__version__,
            app=settings.heroku.app,
            processes=",".join(p.type for p in settings.process),
            interval_seconds=settings.daemon.interval_seconds,
            dry_run=settings.daemon.dry_run,
        )
        loop = wiring.daemon_loop(built.ticker, log, observer=watching.hub)
        clean = True
        if ClosableOutput.watch(sys.stdout, loop.stop):  # `dynomatic run | head` ends the run
            clean = loop.run()
    if not clean:
        sys.stdout.flush()
        os._exit(EXIT_OK)  # a tick stuck past the grace period must not hold the dyno's exit
    return EXIT_OK


def _run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--http-port",
        type=int,
        metavar="PORT",
        help="serve the status page, /healthz and /metrics on this port (e.g. $PORT)",
    )


def cmd_once(settings: config.Settings, args: argparse.Namespace) -> int:
    log = _logger(settings, args, stream=sys.stderr if args.json else None)
    built = wiring.build(settings, log, lock=not (args.dry_run or settings.daemon.dry_run))
    with built.stack:
        outcomes = built.ticker.tick(dry_run=True if args.dry_run else None)
    role = built.ticker.role
    if args.json:
        document = once_json.document(settings.heroku.app, outcomes, role)
        scrubbed = logs.SecretScrubber(wiring.secrets_of(settings)).scrub_value(document)
        print(json.dumps(scrubbed, indent=2))
    if role == Role.STANDBY:
        return EXIT_STANDBY
    return EXIT_FAILURE if any(o.action == "error" for o in outcomes) else EXIT_OK


def _once_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dry-run", action="store_true", help="decide but send no formation change"
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON document on stdout (the log lines go to stderr)",
    )


def cmd_check(settings: config.Settings, args: argparse.Namespace) -> int:
    log = _logger(settings, args, stream=sys.stderr)
    built = wiring.build(settings, log, lock=False)
    with built.stack:
        ok = run_checks(built.ticker.settings, built.ticker, sys.stdout, built.detected)
    return EXIT_OK if ok else EXIT_FAILURE


def cmd_standin(args: argparse.Namespace) -> int:
    try:
        standin = heroku_standin.from_arguments(args)
    except (ValueError, argparse.ArgumentTypeError) as exc:
        print(f"dynomatic standin: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    print(
        f"dynomatic standin: a local Heroku API for app {args.app!r}; point the daemon at it "
        "with DYNOMATIC_HEROKU_API_URL=<the URL below> and HEROKU_API_KEY=<--api-key>; "
        "Ctrl-C stops it",
        file=sys.stderr,
    )
    return heroku_standin.serve(standin, sys.stdout)


COMMANDS: dict[str, Command] = {
    "run": Command(
        "run the daemon: one tick every interval until SIGTERM",
        "0 when stopped by SIGTERM or SIGINT, 2 on bad configuration",
        with_settings(cmd_run, fleet_cli.cmd_run),
        _run_arguments,
    ),
    "once": Command(
        "run one tick, print what it decided, and exit",
        "0, 1 when a process type could not be read or scaled, 2 on bad configuration, "
        "3 when another copy holds the leader lock, 130 on Ctrl-C",
        with_settings(cmd_once, fleet_cli.cmd_once),
        _once_arguments,
    ),
    "check": Command(
        "check the config, database, queue reads and formation, then exit",
        "0 when every check passes, 1 when one fails, 2 on bad configuration",
        with_settings(cmd_check, fleet_cli.cmd_check),
    ),
    "history": Command(
        "what the scaler saw and did: events and charts (history init: create its schema)",
        "0, 1 when there is no history schema, 2 on bad configuration",
        with_settings(history_commands.cmd_history),
        _with_app(history_commands.add_history_arguments),
    ),
    "report": Command(
        "write one self-contained HTML report of the history",
        "0, 1 when there is no history schema, 2 on bad configuration",
        with_settings(history_commands.cmd_report),
        _with_app(history_commands.add_report_arguments),
    ),
    "pause": Command(
        "pause scaling of one type or all, for a while (the running daemon sees it next tick)",
        "0, 1 when no state store is configured or it cannot be reached, 2 on bad configuration "
        "or an unknown --type",
        with_settings(state_commands.cmd_pause),
        _with_app(state_commands.add_pause_arguments),
        options=(CONFIG,),  # it prints a line; it logs nothing
    ),
    "resume": Command(
        "end a pause (and a manual override) before it expires",
        "0, 1 when no state store is configured or it cannot be reached, 2 on bad configuration "
        "or an unknown --type",
        with_settings(state_commands.cmd_resume),
        _with_app(state_commands.add_resume_arguments),
        options=(CONFIG,),
    ),
    "status": Command(
        "the pauses and overrides in force, and the spend budgets count",
        "0, 1 when no state store is configured or it cannot be reached, 2 on bad configuration",
        with_settings(state_commands.cmd_status),
        _with_app(lambda parser: None),
        options=(CONFIG,),
    ),
    "simulate": Command(
        "replay a day of jobs through configs and reference policies: cost, waits, writes",
        "0, 1 when the database cannot be read, 2 on bad configuration, trace or arguments",
        simulate_command.run,
        simulate_command.add_arguments,  # its --config may be repeated, to compare configs
        options=(CONFIG,),
    ),
    "demo": Command(
        "watch the real daemon scale a simulated app (embedded Postgres, local Heroku)",
        "0 when the run ends or a signal stops it, 1 when it could not start",
        demo_runner.main,
        demo_runner.add_arguments,
        options=(LOG_FORMAT,),
        log_format_help="auto (default): a live view on a terminal, logfmt lines elsewhere; "
        "logfmt, console or json: log lines in that format, no live view",
    ),
    "standin": Command(
        "serve a local stand-in for the Heroku formation API, to test against",
        "0 when stopped by SIGTERM or SIGINT, 2 on a bad option",
        cmd_standin,
        heroku_standin.add_arguments,
        options=(),
    ),
}
