"""The package layout keeps its promises: what imports what, and lists that must agree."""

from __future__ import annotations

import subprocess
import sys

from dynomatic_daemon.adapters import catalog
from dynomatic_daemon.demo.workloads import WORKLOADS


def test_every_detectable_library_has_a_demo_workload() -> None:
    # `dynomatic demo --adapter` offers catalog.DETECTABLE without importing the workloads.
    assert sorted(WORKLOADS) == sorted(catalog.DETECTABLE)


def test_the_command_line_does_not_import_the_demo_session_or_workloads() -> None:
    code = (
        "import sys, dynomatic_daemon.cli\n"
        "print(sorted(m for m in sys.modules if m.startswith('dynomatic_daemon.demo.')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert "workloads" not in out and "session" not in out, out
