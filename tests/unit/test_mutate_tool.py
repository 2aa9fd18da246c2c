"""The mutation tool makes the mutants it promises, and leaves docstrings and annotations alone."""

from __future__ import annotations

import ast
import importlib.util
import os
import sys
import time
from pathlib import Path
from types import ModuleType

TOOL = Path(__file__).resolve().parents[2] / "tools" / "mutate.py"

SAMPLE = '''
"""Docstring with SELECT and AND: not SQL that runs."""

LIMIT: int = 500


def pick(a: int, b: int | None, names: list[str]) -> int:
    """Another docstring: WHERE x <= 1."""
    if a <= 3 and b is not None:
        return min(a, b)
    sql = "SELECT LEAST(x, y) FROM t WHERE z IS NULL AND w < now() LIMIT 500"
    return not names
'''


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mutate_tool", TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["mutate_tool"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def _mutations() -> list[tuple[int, str]]:
    return [(line, what) for _, _, _, what, line in _tool()._collect(SAMPLE)]


def test_python_operators_are_mutated_on_their_lines() -> None:
    found = _mutations()
    for expected in [
        (4, "500 -> 501"),
        (9, "<= -> <"),
        (9, "and -> or"),
        (9, "is not -> is"),
        (9, "if x -> if not x"),
        (10, "min() -> max()"),
        (10, "return x -> return None"),
        (12, "not x -> x"),
    ]:
        assert expected in found


def test_sql_strings_get_sql_mutants_but_docstrings_and_annotations_none() -> None:
    found = _mutations()
    sql = {what for line, what in found if line == 11}
    assert {
        "SQL 'LEAST' -> 'GREATEST'",
        "SQL 'IS NULL' -> 'IS NOT NULL'",
        "SQL 'AND' -> 'OR'",
        "SQL '<' -> '<='",
        "SQL 'LIMIT 500' -> ''",
    } <= sql
    assert not [what for line, what in found if line in (2, 8)]  # the docstrings
    assert not [what for line, what in found if line == 7]  # the signature's annotations


def test_each_mutant_changes_the_source_once() -> None:
    tool = _tool()
    sites = tool._collect(SAMPLE)
    sources = set()
    for index in range(len(sites)):
        tree = ast.parse(SAMPLE)
        node, field, new, _, _ = tool._collect(tree)[index]
        setattr(node, field, new)
        sources.add(ast.unparse(ast.fix_missing_locations(tree)))
    assert ast.unparse(ast.parse(SAMPLE)) not in sources
    assert len(sources) == len(sites)


MULTILINE_SQL = '''
QUERY = """
SELECT a
FROM t -- NOT IN a comment AND more
WHERE b <= now()
"""
'''


def test_sql_mutants_are_named_by_their_own_line_and_comments_are_left_alone() -> None:
    found = [(line, what) for _, _, _, what, line in _tool()._collect(MULTILINE_SQL)]
    assert (5, "SQL '<=' -> '<'") in found
    assert not [what for _, what in found if "AND" in what or "NOT" in what]


def test_a_dropped_limit_leaves_valid_sql() -> None:
    # "LIMIT %(cap)s)" once lost its ")" with the limit: a syntax error, which any test kills
    sample = 'Q = "SELECT (SELECT count(*) FROM (SELECT 1 FROM t WHERE a LIMIT %(cap)s) s)"'
    mutated = [new for _, _, new, what, _ in _tool()._collect(sample) if "LIMIT" in what]
    assert mutated == ["SELECT (SELECT count(*) FROM (SELECT 1 FROM t WHERE a) s)"]


def test_an_equivalent_with_an_occurrence_names_only_that_one() -> None:
    tool = _tool()
    same = [
        tool.Mutant("m.py", i, 10 + i, "return []", "return x -> return None", i + 1)
        for i in range(3)
    ]
    entry = {"module": "m.py", "line": "return []", "mutation": "return x -> return None"}
    pinned = tool.Equivalents([{**entry, "occurrence": 2}])
    assert [m in pinned for m in same] == [False, True, False]
    every = tool.Equivalents([entry])
    assert all(m in every for m in same)


def _project(tmp_path: Path, value: int) -> Path:
    (tmp_path / "tools").mkdir()
    (tmp_path / "tools" / "warm_pytest.py").write_text((TOOL.parent / "warm_pytest.py").read_text())
    (tmp_path / "sample.py").write_text(f"VALUE = {value}\n")
    (tmp_path / "test_sample.py").write_text(
        "import time\n\nimport sample\n\n\n"
        "def test_value() -> None:\n    assert sample.VALUE == 1\n\n\n"
        "def test_slow() -> None:\n    time.sleep(60)\n"
    )
    return tmp_path


def test_the_warm_pytest_sees_each_mutant_even_when_its_cached_bytecode_looks_fresh(
    tmp_path: Path,
) -> None:
    tool = _tool()
    project = _project(tmp_path, 1)
    copy = tool._Copy(project)
    try:
        assert copy.pytest("sample.py", ["test_sample.py::test_value"], 60) == "survived"
        assert list((project / "__pycache__").glob("sample.*.pyc"))  # bytecode was written
        # Same size and same modification time: only a dropped cache tells them apart.
        stamp = (project / "sample.py").stat()
        (project / "sample.py").write_text("VALUE = 2\n")
        os.utime(project / "sample.py", ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
        assert copy.pytest("sample.py", ["test_sample.py::test_value"], 60) == "killed"
        started = time.monotonic()
        assert copy.pytest("sample.py", ["test_sample.py::test_slow"], 1.0) == "timeout"
        assert time.monotonic() - started < 30
    finally:
        copy.close()
