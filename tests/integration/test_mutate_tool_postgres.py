"""The mutation tool against a real server: a mutant's endless query does not outlive it."""

from __future__ import annotations

import importlib.util
import secrets
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import psycopg
import pytest

pytestmark = pytest.mark.postgres
TOOL = Path(__file__).resolve().parents[2] / "tools" / "mutate.py"


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mutate_tool_pg", TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def _running(conn: psycopg.Connection[Any], tag: str) -> int:
    row = conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND state = 'active'",
        [tag],
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_a_timed_out_mutant_leaves_no_query_running_on_the_server(
    tmp_path: Path, pg_url: str, pg_conn: psycopg.Connection[Any]
) -> None:
    tag = f"mutant-{secrets.token_hex(4)}"
    (tmp_path / "tools").mkdir()
    (tmp_path / "tools" / "warm_pytest.py").write_text((TOOL.parent / "warm_pytest.py").read_text())
    (tmp_path / "sample.py").write_text("VALUE = 1\n")
    (tmp_path / "test_endless.py").write_text(
        "import psycopg\n\n\n"
        "def test_endless() -> None:\n"
        f"    with psycopg.connect({pg_url!r}, application_name={tag!r}) as conn:\n"
        "        conn.execute('SELECT pg_sleep(120)')\n"
    )
    copy = _tool()._Copy(tmp_path)
    try:
        assert copy.pytest("sample.py", ["test_endless.py"], 2.0) == "timeout"
    finally:
        copy.close()
    # The killed client cannot cancel its query; only the server's own deadline ends it.
    deadline = time.monotonic() + 10
    while _running(pg_conn, tag) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _running(pg_conn, tag) == 0
