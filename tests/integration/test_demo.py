"""``dynomatic demo`` as a user runs it: no TTY, no DATABASE_URL, so the embedded server is used.

Each run gets a TMPDIR of its own, so what the demo leaves behind (a ``dynomatic-pg-*`` data
directory, a server whose working directory is inside it) can be told apart from what other
test runs on the machine are doing at the same time.
"""

from __future__ import annotations

import os
import random
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import psycopg
import pytest
from psycopg import sql

from dynomatic_daemon import adapters
from dynomatic_daemon.adapters import catalog
from dynomatic_daemon.demo import infra
from dynomatic_daemon.demo.simulation import LoadPlan, Tally, poisson
from dynomatic_daemon.demo.summary import Summary, percentile
from dynomatic_daemon.demo.workloads import WORKLOADS
from dynomatic_daemon.models import QueueSelector

REPO = Path(__file__).resolve().parents[2]
DURATION = 15  # the burst, and the fall after it while work still arrives, fit with room to spare


@pytest.fixture
def tmpdir_for_demo() -> Iterator[Path]:
    # Not under pytest's tmp_path: that is mode 0700, and as root the embedded server runs as
    # an unprivileged user who must be able to enter its data directory.
    path = Path(tempfile.mkdtemp(prefix="dynomatic-demo-test-"))
    path.chmod(0o755)
    yield path
    for proc in server_processes(path):  # only if a test failed; never another run's server
        proc.kill()
    subprocess.run(["rm", "-rf", str(path)], check=False)


def demo_env(tmpdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DYNOMATIC_", "PG"))}
    env.pop("DATABASE_URL", None)
    return {**env, "TMPDIR": str(tmpdir), "PYTHONUNBUFFERED": "1"}


def start_demo(tmpdir: Path, log: Path, *args: str) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "dynomatic_daemon", "demo", *args],
            env=demo_env(tmpdir),
            cwd=tmpdir,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def events(text: str, name: str) -> list[dict[str, str]]:
    """The logfmt lines of one event, as dicts of strings."""
    found = []
    for line in text.splitlines():
        if line.startswith("at=") and f" event={name}" in line:
            found.append(dict(p.partition("=")[::2] for p in shlex.split(line)))
    return found


def server_processes(tmpdir: Path) -> list[psutil.Process]:
    """PostgreSQL processes working inside ``tmpdir``: the embedded server and its children."""
    found = []
    for proc in psutil.process_iter(["name"]):
        try:
            if proc.info["name"] == "postgres" and proc.cwd().startswith(str(tmpdir)):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def leftovers(tmpdir: Path, output: str) -> list[str]:
    """Everything the demo should have removed and did not."""
    left = [str(p) for p in tmpdir.iterdir() if p.name.startswith(("dynomatic-", "tmp"))]
    left += [f"process {p.pid}" for p in server_processes(tmpdir)]
    for db in events(output, "demo_database"):
        if "pid" in db:
            try:
                if psutil.Process(int(db["pid"])).name() == "postgres":
                    left.append(f"server pid {db['pid']}")
            except psutil.NoSuchProcess:
                pass
    return left


def wait_for_line(log: Path, proc: subprocess.Popen[bytes], pattern: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if re.search(pattern, log.read_text(errors="replace")):
            return
        time.sleep(0.1)
    pytest.fail(f"no line matching {pattern!r}:\n{log.read_text(errors='replace')}")


@pytest.mark.postgres
@pytest.mark.e2e
def test_demo_scales_up_for_the_burst_drains_and_scales_down(tmpdir_for_demo: Path) -> None:
    assert list(tmpdir_for_demo.iterdir()) == [] and server_processes(tmpdir_for_demo) == []
    log = tmpdir_for_demo.parent / f"{tmpdir_for_demo.name}.log"
    try:
        proc = start_demo(tmpdir_for_demo, log, "--duration", str(DURATION))
        code = proc.wait(timeout=DURATION + 60)
        output = log.read_text(errors="replace")
    finally:
        log.unlink(missing_ok=True)
    assert code == 0, output
    assert events(output, "demo_database")[-1]["embedded"] == "true", output

    scaled = [
        (int(e["current"]), int(e["desired"]))
        for e in events(output, "scale_decision")
        if e["action"] == "scaled"
    ]
    peak_at = max(range(len(scaled)), key=lambda i: scaled[i][1], default=None)
    assert peak_at is not None, output
    assert scaled[peak_at][1] > scaled[peak_at][0] >= 1, scaled  # rose during the burst
    assert any(d < c for c, d in scaled[peak_at + 1 :]), scaled  # and fell after it

    (summary,) = events(output, "demo_summary")
    enqueued, done = int(summary["enqueued"]), int(summary["done"])
    assert enqueued > 0 and 0 <= enqueued - done <= 10, summary  # only the last moment's work
    assert int(summary["peak_dynos"]) >= 2 and summary["interrupted"] == "false", summary
    peak = int(summary["peak_dynos"])
    peak_all_along = peak * float(summary["seconds"])  # seconds is rounded to 0.1 s
    assert float(summary["fixed_dyno_seconds"]) == pytest.approx(peak_all_along, abs=0.06 * peak)
    assert 0 < float(summary["saving_percent"]) < 100, summary
    assert "dynomatic demo finished" in output and "against running the peak" in output
    # work arrives until the end: no idle second half
    late = [e for e in events(output, "demo_status") if float(e["elapsed"]) > DURATION * 0.75]
    assert late and all(float(e["arrivals_per_second"]) > 0 for e in late), late
    assert leftovers(tmpdir_for_demo, output) == []


@pytest.mark.postgres
@pytest.mark.e2e
@pytest.mark.parametrize(
    ("signum", "after"),
    [
        pytest.param(signal.SIGINT, r"event=scale_decision", id="ctrl-c-while-running"),
        pytest.param(signal.SIGTERM, r"event=demo_database status=starting", id="term-in-setup"),
    ],
)
def test_a_signal_exits_0_and_leaves_nothing_behind(
    tmpdir_for_demo: Path, signum: signal.Signals, after: str
) -> None:
    log = tmpdir_for_demo.parent / f"{tmpdir_for_demo.name}.log"
    try:
        proc = start_demo(tmpdir_for_demo, log, "--duration", "120")
        wait_for_line(log, proc, after, timeout=60)
        if signum == signal.SIGINT:  # the check has teeth: the server is there to be removed
            assert server_processes(tmpdir_for_demo), log.read_text()
        proc.send_signal(signum)
        code = proc.wait(timeout=60)
        output = log.read_text(errors="replace")
    finally:
        log.unlink(missing_ok=True)
    assert code == 0, output
    assert "Traceback" not in output, output
    (summary,) = events(output, "demo_summary")
    assert summary["interrupted"] == "true", summary
    assert leftovers(tmpdir_for_demo, output) == []


@pytest.mark.postgres
@pytest.mark.parametrize("name", list(WORKLOADS))
def test_each_simulated_library_writes_rows_its_adapter_reads_as_such(
    name: str, pg_conn: psycopg.Connection[Any], db_url: str
) -> None:
    """The demo is only honest if the daemon's own reader sees the simulated jobs right."""
    workload = WORKLOADS[name]
    assert name in catalog.NAMES
    pg_conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier("demo_wl")))
    options = catalog.options_model(name).model_validate(workload.options("demo_wl"))
    reader = adapters.build(name, options)
    connect = infra.connector(db_url, "demo_wl")
    with connect() as app, connect() as worker:
        workload.create(app)
        workload.enqueue(app, 5)
        claimed = workload.claim(worker, 2, "worker.1")
        assert len(claimed) == 2 and all(0 <= wait < 60 for _id, wait in claimed)
        (queue,) = reader.read(app, [QueueSelector()], cap=100).queues
        assert (queue.queue, queue.ready, queue.running) == ("default", 3, 2)
        workload.finish(worker, [job_id for job_id, _wait in claimed])
        (queue,) = reader.read(app, [QueueSelector()], cap=100).queues
        assert (queue.ready, queue.running) == (3, 0)


@pytest.mark.parametrize("duration", [15, 60, 600])
def test_the_load_spans_the_whole_run_and_its_bursts_leave_time_to_scale_down(
    duration: float,
) -> None:
    plan = LoadPlan.for_duration(duration, random.Random(1))
    assert plan.end == duration
    assert all(plan.rate_at(duration * i / 100) > 0 for i in range(100))
    assert max(b.end for b in plan.bursts) <= 0.65 * duration  # the last third shows the fall
    assert all(b.rate > 2 * 5 for b in plan.bursts)  # above two dynos' worth
    assert plan.rate_at(plan.bursts[0].start) == plan.bursts[0].rate
    rng = random.Random(2)
    assert 900 < sum(poisson(rng, 1.0) for _ in range(1000)) < 1100


def test_the_saving_is_measured_against_the_peak_and_the_summary_says_so() -> None:
    tally = Tally(enqueued=4, done=4, waits=[0.1, 0.2, 0.3, 4.0], dyno_seconds=30.0, peak_dynos=5)
    summary = Summary.of(tally, adapter="river", seconds=10, scale_events=2, interrupted=False)
    assert summary.fixed_dyno_seconds == 50 and summary.saving_percent == 40
    assert (summary.wait_p50, summary.wait_p95) == (0.2, 4.0)
    text = summary.text()
    assert "40% against running the peak of 5" in text and "the most running at once" in text
    assert all(len(line) <= 80 for line in text.splitlines()), text
    assert percentile([], 0.5) is None


def quick_start_commands() -> list[str]:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert block is not None, section
    return [line.split("#", 1)[0].strip() for line in block[1].splitlines() if line.strip()]


def dry_run(target: str, venv: Path) -> list[str]:
    """What ``make <target>`` would run in a fresh clone: no virtualenv there yet."""
    result = subprocess.run(
        ["make", "-n", "-C", str(REPO), f"VENV={venv}", target],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return result.stdout.splitlines()


def assert_in_order(lines: list[str], patterns: list[str]) -> None:
    position = 0
    for pattern in patterns:
        hits = [i for i, line in enumerate(lines) if i >= position and re.search(pattern, line)]
        assert hits, f"{pattern!r} missing (in order) from:\n" + "\n".join(lines)
        position = hits[0] + 1


def test_readme_quick_start_is_make_demo_then_make_test(tmp_path: Path) -> None:
    assert quick_start_commands() == ["make demo", "make test"]
    venv = tmp_path / "fresh-venv"
    demo = dry_run("demo", venv)
    assert_in_order(demo, [r"-m venv .*fresh-venv$", r"pip install .*-e '\.\[demo\]'",
                           r"fresh-venv/bin/dynomatic demo\s*$"])  # fmt: skip
    test = dry_run("test", venv)
    assert_in_order(test, [r"-m venv .*fresh-venv$", r"pip install .*-e '\.\[dev\]'",
                           r"bin/ruff check", r"bin/mypy", r"bin/pytest"])  # fmt: skip
    assert not venv.exists()  # -n ran nothing
