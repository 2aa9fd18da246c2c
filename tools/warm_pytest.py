"""A warm pytest for the mutation tool: import the heavy third-party modules once, then fork a
fresh pytest for each request, so a mutant costs its tests and not ~3 s of imports.

    PYTHONPATH=COPY python tools/warm_pytest.py      # run in a copy of the project

Requests come on stdin, one JSON object per line: ``{"args": [...], "timeout": seconds}``. Each
answer is one line on stdout: ``passed``, ``failed`` or ``timeout``. The project itself is never
imported here, only in the forked child, so every run imports the module as it is on disk now.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import signal
import sys
import time

import pytest

# Imported before forking: what every test run of this project loads and nothing of the project.
PRELOAD = [
    "pytest", "_pytest.python", "_pytest.assertion.rewrite", "hypothesis", "hypothesis.strategies",
    "psycopg", "psycopg_pool", "httpx", "pydantic", "structlog", "tenacity",
    "apscheduler.schedulers.background", "anyio",
]  # fmt: skip
# The preloaded plugins cannot have their asserts rewritten; pytest says so with a warning that
# the project's filterwarnings = error would turn into a failure of every run.
QUIET = ["-W", "ignore::pytest.PytestAssertRewriteWarning"]


def _preload() -> None:
    for name in PRELOAD:
        with contextlib.suppress(ImportError):  # not installed: the child imports what it needs
            importlib.import_module(name)
    if any(name.split(".")[0] == "dynomatic_daemon" for name in sys.modules):
        raise SystemExit("the preload imported the project; a mutant would not be seen")


def _child(args: list[str], timeout: float) -> None:
    os.setpgid(0, 0)  # its own group: a timeout kills the daemons its tests started too
    # A mutant can make a query endless (a recursive CTE that never stops). Killing the tests
    # leaves its server backend running it, at full CPU, through every later mutant: so every
    # statement of this run ends by the deadline on the server too (libpq reads PGOPTIONS).
    limit = f"-c statement_timeout={int(timeout * 1000)}"
    os.environ["PGOPTIONS"] = f"{os.environ.get('PGOPTIONS', '')} {limit}".strip()
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    code = 1
    try:
        code = int(pytest.main([*QUIET, *args]))
    finally:
        os._exit(code)


def _run(args: list[str], timeout: float) -> str:
    pid = os.fork()
    if pid == 0:
        _child(args, timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return "passed" if os.waitstatus_to_exitcode(status) == 0 else "failed"
        time.sleep(0.02)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return "timeout"


def main() -> None:
    _preload()
    print("ready", flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        print(_run(list(request["args"]), float(request["timeout"])), flush=True)


if __name__ == "__main__":
    main()
