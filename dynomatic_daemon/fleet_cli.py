"""``run``, ``once`` and ``check`` for a config file of several apps (``[[app]]`` blocks).

Each app goes through the same wiring as a single-app file: ``wiring.build`` makes its ticker,
``wiring.observe`` its history writer and notifiers (the status page serves one app and is not
started here). Every log line carries ``app=``; ``once --json`` prints one document per app.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

import structlog

from dynomatic_daemon import __version__, apps_config, config, logs, once_json, wiring
from dynomatic_daemon.api_budget import Budgets
from dynomatic_daemon.check import run_checks
from dynomatic_daemon.cli_output import ClosableOutput
from dynomatic_daemon.clock import SystemClock
from dynomatic_daemon.errors import ConfigError, DynomaticError
from dynomatic_daemon.fleet import Fleet
from dynomatic_daemon.leader import Role
from dynomatic_daemon.shared import Shared
from dynomatic_daemon.tick import Ticker

EXIT_OK, EXIT_FAILURE, EXIT_STANDBY = 0, 1, 3


def secrets_of(apps: apps_config.Apps) -> list[str]:
    return [secret for settings in apps.apps for secret in wiring.secrets_of(settings)]


def logger(apps: apps_config.Apps, args: argparse.Namespace, stream: Any = None) -> Any:
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    fmt = args.log_format or apps.apps[0].daemon.log_format
    logs.configure(fmt, stream=stream, secrets=secrets_of(apps))
    return structlog.get_logger("dynomatic")


def cmd_run(apps: apps_config.Apps, args: argparse.Namespace) -> int:
    log = logger(apps, args)
    clock = SystemClock()
    budgets = Budgets.for_apps(apps.apps, clock, log)
    for line in budgets.plan_lines(apps.apps):
        log.info("api_budget_shared", **line)
    settings = budgets.stretched(apps.apps)
    shared = Shared(clock)
    with ExitStack() as stack:
        stack.callback(shared.close)  # last: after every app's own stack
        hubs = {}
        for one in settings:
            app_log = log.bind(app=one.heroku.app)
            watching = wiring.observe(one, app_log, clock, http_port=None)
            stack.enter_context(watching.stack)
            hubs[one.heroku.app] = watching.hub

        def build(one: config.Settings) -> tuple[Ticker, Callable[[], object]]:
            app_log = log.bind(app=one.heroku.app)
            built = wiring.build(
                one, app_log, lock=True, budget=budgets.for_app(one), shared=shared
            )
            built.ticker.observer = hubs[one.heroku.app]
            return built.ticker, built.stack.close

        fleet = Fleet(
            settings,
            log,
            build=build,
            clock=clock,
            concurrency=apps.fleet.concurrency,
            app_log=lambda app: log.bind(app=app),
        )
        stack.callback(fleet.close)
        log.info(
            "daemon_started",
            version=__version__,
            apps=len(settings),
            concurrency=apps.fleet.concurrency,
        )
        clean = True
        if ClosableOutput.watch(sys.stdout, fleet.stop):
            clean = fleet.run()
    if not clean:
        sys.stdout.flush()
        os._exit(EXIT_OK)  # a tick stuck past the grace period must not hold the dyno's exit
    return EXIT_OK


def cmd_once(apps: apps_config.Apps, args: argparse.Namespace) -> int:
    """One tick of every app in turn; exit 1 if any failed, else 3 if any stood by."""
    log = logger(apps, args, stream=sys.stderr if args.json else None)
    documents: list[dict[str, Any]] = []
    failed = standby = False
    for one in apps.apps:
        dry = args.dry_run or one.daemon.dry_run
        try:
            built = wiring.build(one, log.bind(app=one.heroku.app), lock=not dry)
        except ConfigError:
            raise  # auto-detection's verdict on the config: exit 2, as for one app
        except DynomaticError as exc:  # this app's database, say: the others still tick
            log.error("app_failed", app=one.heroku.app, error=str(exc))
            documents.append({"app": one.heroku.app, "role": None, "error": str(exc)})
            failed = True
            continue
        with built.stack:
            outcomes = built.ticker.tick(dry_run=True if args.dry_run else None)
        documents.append(once_json.document(one.heroku.app, outcomes, built.ticker.role))
        failed = failed or any(o.action == "error" for o in outcomes)
        standby = standby or built.ticker.role == Role.STANDBY
    if args.json:
        scrubbed = logs.SecretScrubber(secrets_of(apps)).scrub_value({"apps": documents})
        print(json.dumps(scrubbed, indent=2))
    return EXIT_FAILURE if failed else EXIT_STANDBY if standby else EXIT_OK


def cmd_check(apps: apps_config.Apps, args: argparse.Namespace) -> int:
    log = logger(apps, args, stream=sys.stderr)
    ok = True
    for one in apps.apps:
        try:
            built = wiring.build(one, log.bind(app=one.heroku.app), lock=False)
        except ConfigError:
            raise  # auto-detection's verdict on the config: exit 2, as for one app
        except DynomaticError as exc:
            print(f"dynomatic check: app {one.heroku.app}\nFAIL  start: {exc}", file=sys.stdout)
            ok = False
            continue
        with built.stack:
            ok = run_checks(built.ticker.settings, built.ticker, sys.stdout, built.detected) and ok
    return EXIT_OK if ok else EXIT_FAILURE
