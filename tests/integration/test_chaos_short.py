"""The chaos soak in its short mode: random faults must never crash, mis-scale or leak."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.postgres
ROOT = Path(__file__).resolve().parents[2]


def test_short_chaos_soak(pg_server_url: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.chaos", "--ticks", "120", "--seed", "3"],
        cwd=ROOT,
        env={"BENCH_PG_URL": pg_server_url, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    rows = dict(line.rsplit(None, 1) for line in out.splitlines() if line.strip())
    assert rows["ticks"] == "120"
    assert int(rows["faults: total"]) > 10
    assert rows["crashes (must be 0)"] == "0"
    assert rows["wrong-direction actions on missing data (must be 0)"] == "0"
    assert rows["secrets seen (must be 0)"] == "0"
