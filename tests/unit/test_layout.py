"""The package layout keeps its promises: what imports what, and lists that must agree.

The arrows (docs/architecture.md): the core never imports the demo or the stand-ins; the
stand-ins import nothing from the daemon; adapters import only their own package and the models;
the pure modules import no I/O library; adapters and the Heroku client never import each other.
Imports are read from the source (every ``import`` statement, function-local ones included).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dynomatic_daemon.adapters import catalog
from dynomatic_daemon.demo.workloads import WORKLOADS

PACKAGE = Path(__file__).resolve().parents[2] / "dynomatic_daemon"
IO_LIBRARIES = ("psycopg", "httpx", "apscheduler", "structlog", "tenacity")
PURE = ("policy", "models", "errors", "clock", "charts", "prices", "guardrails", "budget")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports_of(path: Path) -> Iterator[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = (
        module_name(path) if path.name == "__init__.py" else module_name(path).rsplit(".", 1)[0]
    )
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def within(name: str, *prefixes: str) -> bool:
    return any(name == p or name.startswith(f"{p}.") for p in prefixes)


def offenders(select: str, forbidden: tuple[str, ...], allowed: tuple[str, ...] = ()) -> list[str]:
    found = []
    for name, path in modules().items():
        if not within(name, select) or within(name, *allowed):
            continue
        found += [f"{name} imports {imp}" for imp in imports_of(path) if within(imp, *forbidden)]
    return sorted(set(found))


def test_the_core_imports_neither_the_demo_nor_the_stand_ins() -> None:
    # Only the command line may reach the demo and the stand-ins (its `demo` and `standin`
    # commands), and the demo may use the stand-ins like any user would.
    forbidden = ("dynomatic_daemon.demo", "dynomatic_daemon.sandbox")
    allowed = ("dynomatic_daemon.cli", "dynomatic_daemon.demo", "dynomatic_daemon.sandbox")
    assert offenders("dynomatic_daemon", forbidden, allowed) == []


def test_the_stand_ins_import_nothing_from_the_daemon() -> None:
    found = offenders("dynomatic_daemon.sandbox", ("dynomatic_daemon",))
    assert [f for f in found if " imports dynomatic_daemon.sandbox" not in f] == []


def test_adapters_import_only_their_own_package_the_models_and_the_errors() -> None:
    found = offenders("dynomatic_daemon.adapters", ("dynomatic_daemon",))
    # errors: a leaf, so an adapter can say "this library version is not supported"
    own = tuple(f" imports dynomatic_daemon.{m}" for m in ("adapters", "models", "errors"))
    assert [f for f in found if not any(o in f for o in own)] == []


@pytest.mark.parametrize("pure", PURE)
def test_pure_modules_import_no_io_library(pure: str) -> None:
    assert offenders(f"dynomatic_daemon.{pure}", IO_LIBRARIES) == []


def test_adapters_and_the_heroku_client_never_import_each_other() -> None:
    assert offenders("dynomatic_daemon.adapters", ("dynomatic_daemon.heroku",)) == []
    assert offenders("dynomatic_daemon.heroku", ("dynomatic_daemon.adapters",)) == []


def test_the_import_reader_sees_function_local_imports() -> None:
    # The contracts above are only as good as this reader: prove it misses nothing.
    source = PACKAGE / "demo" / "runner.py"
    assert "dynomatic_daemon.demo.session" in set(imports_of(source))  # imported inside main()
    assert "dynomatic_daemon.demo.workloads.base" in set(
        imports_of(PACKAGE / "demo" / "workloads" / "__init__.py")
    )


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
