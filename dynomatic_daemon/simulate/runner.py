"""``dynomatic simulate``, once its arguments are parsed: load, replay, report.

Exit codes: 0 done; 1 the database could not be read (``--from-database``); 2 bad configuration,
trace or arguments.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from datetime import UTC
from pathlib import Path
from typing import TextIO

from dynomatic_daemon import config, prices
from dynomatic_daemon.errors import ConfigError, QueueReadError
from dynomatic_daemon.simulate import chart, config_source, from_database, report, scenarios
from dynomatic_daemon.simulate.compare import Options, compare
from dynomatic_daemon.simulate.config_source import SimulationConfig
from dynomatic_daemon.simulate.trace import DEFAULT_START, Trace, TraceError, read_csv

EXIT_OK, EXIT_FAILURE, EXIT_CONFIG = 0, 1, 2


def main(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    try:
        return _simulate(args, out)
    except ConfigError as exc:
        err.write(f"dynomatic: invalid configuration ({len(exc.problems)} problem(s)):\n")
        err.writelines(f"  {problem}\n" for problem in exc.problems)
        return EXIT_CONFIG
    except TraceError as exc:
        err.write(f"dynomatic: {exc}\n")
        return EXIT_CONFIG
    except QueueReadError as exc:
        err.write(f"dynomatic: cannot rebuild the trace from the database: {exc}\n")
        return EXIT_FAILURE


def _simulate(args: argparse.Namespace, out: TextIO) -> int:
    paths = [Path(p) for p in args.configs or [config.resolve_path(None, os.environ)]]
    configs = [config_source.labelled(p, args.app) for p in paths]
    trace = load_trace(args, configs[0][1])
    overrides = {args.size: args.price} if args.price is not None else None
    options = Options(
        seed=args.seed,
        boot_seconds=args.boot_seconds,
        worker_slots=args.worker_slots,
        interval=args.interval,
        hourly_usd=prices.hourly_usd(args.size, overrides),
    )
    entries = compare(trace, configs, args.references, options)
    summary = report.text(trace, entries, options, args.size)
    if args.html:
        args.html.write_text(chart.page(trace, entries, summary.splitlines()[0]), encoding="utf-8")
    if args.json:
        out.write(json.dumps(report.document(trace, entries, options, args.size), indent=2) + "\n")
    else:
        out.write(summary + "\n")
        if args.html:
            out.write(f"\nchart: {args.html}\n")
    return EXIT_OK


def load_trace(args: argparse.Namespace, first: SimulationConfig) -> Trace:
    start = args.start
    if start is not None and start.tzinfo is None:
        start = start.replace(tzinfo=UTC)  # a time without a zone is UTC, as everywhere here
    if args.scenario:
        day = scenarios.scenario(args.scenario, args.seed)
        return dataclasses.replace(day, start=start) if start else day
    if args.trace:
        return read_csv(args.trace, start=start or DEFAULT_START)
    return from_database.trace_from(first, args.since, os.environ)
