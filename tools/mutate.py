"""Mutation testing for the decision core and the adapters: do the tests notice a wrong line?

Each mutant is one small change to one module (a comparison flipped, ``and`` for ``or``, ``min``
for ``max``, a number moved by one, a condition negated, a ``return`` value dropped, and inside SQL
strings ``<=`` for ``<``, ``LEAST`` for ``GREATEST``, ``IS NULL`` for ``IS NOT NULL``, ``AND`` for
``OR``, a ``LIMIT`` removed). The module's own tests, listed in ``tools/mutation.toml``, run
against it; a failing or hanging test run kills the mutant, a passing one lets it survive.
Mutants shown to be equivalent (no test could tell, because the behaviour is the same) are listed
in the same file with the reason, and are left out of the score.

    python tools/mutate.py                       # every target in tools/mutation.toml
    python tools/mutate.py dynomatic_daemon/policy.py --min-score 95 --jobs 2
    python tools/mutate.py dynomatic_daemon/tick.py --list      # the mutants, without running

Work happens in copies of the project under a temporary directory (one per job), so the checkout
is never modified and the daemon subprocesses that tests start import the mutated copy too. Each
copy has a warm pytest (tools/warm_pytest.py) that forks a fresh run per mutant after importing
the third-party modules once: about 3 s less per mutant, half of an adapter's run.
Exit status: 0, or 1 when a target scores below ``--min-score``, 2 when the tests fail unmutated.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from queue import Queue
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "tools" / "mutation.toml"
COPY_IGNORE = shutil.ignore_patterns(
    ".git", ".venv", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache", ".hypothesis",
    "build", "dist", "*.egg-info", "node_modules",
)  # fmt: skip

COMPARE_SWAPS: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.Is: ast.IsNot, ast.IsNot: ast.Is,
    ast.In: ast.NotIn, ast.NotIn: ast.In,
}  # fmt: skip
BINOP_SWAPS: dict[type[ast.operator], type[ast.operator]] = {
    ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult,
    ast.FloorDiv: ast.Mult, ast.Mod: ast.FloorDiv,
}  # fmt: skip
CALL_SWAPS = {"min": "max", "max": "min", "any": "all", "all": "any"}
SQL_SWAPS = [
    (r"<=", "<"), (r"(?<![<>!])<(?![=>])", "<="), (r">=", ">"), (r"(?<![<>-])>(?!=)", ">="),
    (r"\bAND\b", "OR"), (r"\bOR\b", "AND"), (r"\bIS NULL\b", "IS NOT NULL"),
    (r"\bIS NOT NULL\b", "IS NULL"), (r"\bLEAST\b", "GREATEST"), (r"\bGREATEST\b", "LEAST"),
    (r"\bmin\(", "max("), (r"\bmax\(", "min("), (r"\bNOT\s+", ""),
    (r"\s*\bLIMIT\s+(?:%\(\w+\)s|\w+)", ""),
    (r"\bDESC\b", "ASC"), (r"\bASC\b", "DESC"), (r"\bcount\(\*\)", "0"),
]  # fmt: skip
SQL_HINT = re.compile(r"\b(SELECT|WHERE|FROM|AND|JOIN)\b")


@dataclass(frozen=True)
class Mutant:
    module: str
    index: int  # position among this module's mutants; stable while the module is unchanged
    line: int
    source_line: str  # the original line, stripped: how the equivalents list names a mutant
    mutation: str  # "<= -> <", "and -> or", ...
    occurrence: int = 1  # the n-th mutant with this line text and mutation in the module

    def key(self) -> tuple[str, str, str]:
        return (self.module, self.source_line, self.mutation)

    def name(self) -> str:
        return f"{self.module}:{self.line}  {self.mutation}  | {self.source_line}"


@dataclass
class Result:
    mutant: Mutant
    outcome: str  # killed | survived | timeout | equivalent
    seconds: float


# -- making mutants ------------------------------------------------------------------------------


class _Sites(ast.NodeVisitor):
    """Walks a module and yields, for each mutable spot, (node, field, replacement, description)."""

    def __init__(self) -> None:
        self.sites: list[tuple[ast.AST, str, object, str, int]] = []
        self._skip: set[int] = set()

    def _add(self, node: ast.AST, field: str, new: object, what: str) -> None:
        self.sites.append((node, field, new, what, getattr(node, "lineno", 0)))

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._skip_docstring(node.body)
        for arg in [*node.args.args, *node.args.kwonlyargs, *node.args.posonlyargs]:
            self._skip_tree(arg.annotation)
        self._skip_tree(node.returns)
        for decorator in node.decorator_list:
            self._skip_tree(decorator)
        self.generic_visit(node)

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._skip_docstring(node.body)
        for decorator in node.decorator_list:
            self._skip_tree(decorator)
        self.generic_visit(node)

    def visit_Module(self, node: ast.Module) -> None:
        self._skip_docstring(node.body)
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._skip_tree(node.annotation)
        self.generic_visit(node)

    def visit_Compare(self, node: ast.Compare) -> None:
        for i, op in enumerate(node.ops):
            swap = COMPARE_SWAPS.get(type(op))
            if swap is not None:
                ops = list(node.ops)
                ops[i] = swap()
                self._add(node, "ops", ops, f"{_op(op)} -> {_op(swap())}")
        self.generic_visit(node)

    def visit_BoolOp(self, node: ast.BoolOp) -> None:
        new: ast.boolop = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        self._add(node, "op", new, f"{_op(node.op)} -> {_op(new)}")
        self.generic_visit(node)

    def visit_BinOp(self, node: ast.BinOp) -> None:
        swap = BINOP_SWAPS.get(type(node.op))
        if swap is not None and not _is_string_format(node):
            self._add(node, "op", swap(), f"{_op(node.op)} -> {_op(swap())}")
        self.generic_visit(node)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> None:
        if isinstance(node.op, ast.Not):
            # not (not x) is bool(x): the negation is gone and the value stays a bool
            self._add(node, "operand", ast.UnaryOp(ast.Not(), node.operand), "not x -> x")
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        if isinstance(node.func, ast.Name) and node.func.id in CALL_SWAPS:
            name = CALL_SWAPS[node.func.id]
            self._add(node.func, "id", name, f"{node.func.id}() -> {name}()")
        self.generic_visit(node)

    def visit_If(self, node: ast.If) -> None:
        self._add(node, "test", ast.UnaryOp(ast.Not(), node.test), "if x -> if not x")
        self.generic_visit(node)

    def visit_Return(self, node: ast.Return) -> None:
        if node.value is not None and not _is_none(node.value):
            self._add(node, "value", ast.Constant(None), "return x -> return None")
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if id(node) in self._skip:
            return
        value = node.value
        if isinstance(value, bool):
            self._add(node, "value", not value, f"{value} -> {not value}")
        elif isinstance(value, int):
            self._add(node, "value", value + 1, f"{value} -> {value + 1}")
        elif isinstance(value, float):
            new = value * 2 if value else 1.0
            self._add(node, "value", new, f"{value} -> {new}")
        elif isinstance(value, str) and SQL_HINT.search(value):
            comments = [m.span() for m in re.finditer(r"--[^\n]*", value)]
            for pattern, replacement in SQL_SWAPS:
                for match in re.finditer(pattern, value):
                    if any(start <= match.start() < end for start, end in comments):
                        continue  # a word in an SQL comment changes nothing that runs
                    mutated = value[: match.start()] + replacement + value[match.end() :]
                    what = f"SQL {match.group(0).strip()!r} -> {replacement.strip()!r}"
                    self._add(node, "value", mutated, what)
                    self.sites[-1] = (*self.sites[-1][:4], _line_in(node, value, match.start()))

    def _skip_docstring(self, body: list[ast.stmt]) -> None:
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            self._skip.add(id(body[0].value))

    def _skip_tree(self, node: ast.AST | None) -> None:
        if node is not None:
            self._skip.update(id(child) for child in ast.walk(node))


def _op(op: ast.AST) -> str:
    symbols = {
        ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!=",
        ast.Is: "is", ast.IsNot: "is not", ast.In: "in", ast.NotIn: "not in", ast.And: "and",
        ast.Or: "or", ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//",
        ast.Mod: "%",
    }  # fmt: skip
    return symbols.get(type(op), type(op).__name__)


def _line_in(node: ast.Constant, value: str, offset: int) -> int:
    """The source line of ``value[offset]``: exact for one triple-quoted literal, whose lines are
    the source's; the literal's first line for strings joined from pieces."""
    first, last = node.lineno, node.end_lineno or node.lineno
    if last - first == value.count("\n"):
        return first + value.count("\n", 0, offset)
    return first


def _is_none(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


def _is_string_format(node: ast.BinOp) -> bool:
    return isinstance(node.op, ast.Mod) and isinstance(node.left, ast.Constant)


def mutants(module: str) -> list[Mutant]:
    return [m for m, _ in _mutated_sources(module)]


def _mutated_sources(module: str) -> Iterator[tuple[Mutant, str]]:
    text = (ROOT / module).read_text()
    lines = text.splitlines()
    count = len(_collect(text))
    seen: dict[tuple[str, str], int] = {}
    for index in range(count):
        tree = ast.parse(text)
        node, field, new, what, line = _collect(tree)[index]
        setattr(node, field, new)
        ast.fix_missing_locations(tree)
        source_line = lines[line - 1].strip() if 0 < line <= len(lines) else ""
        occurrence = seen[source_line, what] = seen.get((source_line, what), 0) + 1
        yield Mutant(module, index, line, source_line, what, occurrence), ast.unparse(tree)


def _collect(source: str | ast.Module) -> list[tuple[ast.AST, str, object, str, int]]:
    tree = ast.parse(source) if isinstance(source, str) else source
    sites = _Sites()
    sites.visit(tree)
    return sites.sites


# -- running them --------------------------------------------------------------------------------


class _Copy:
    """One copy of the project and its warm pytest (tools/warm_pytest.py), which forks a fresh
    run per mutant: the heavy imports are paid once per copy, not once per mutant."""

    def __init__(self, path: Path) -> None:
        self.path = path
        env = {**os.environ, "PYTHONPATH": str(path)}
        env.pop("PYTEST_ADDOPTS", None)
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # cached bytecode saves a second per run
        self._warm = subprocess.Popen(
            [sys.executable, str(path / "tools" / "warm_pytest.py")],
            cwd=path, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        if self._warm.stdin is None or self._warm.stdout is None:
            raise SystemExit("the warm pytest has no pipes")
        self._stdin, self._stdout = self._warm.stdin, self._warm.stdout
        if self._stdout.readline().strip() != "ready":
            raise SystemExit(f"the warm pytest in {path} did not start")

    def pytest(self, module: str, tests: list[str], timeout: float) -> str:
        # Bytecode is written, for speed, except the mutated module's: a cached one could be
        # stale, as its source changes size and time within a second from mutant to mutant.
        for cached in (self.path / module).parent.glob(f"__pycache__/{Path(module).stem}.*"):
            cached.unlink()
        # a fixed Hypothesis seed: a mutant is killed or not, the same way on every run
        args = ["-x", "-q", "-p", "no:cacheprovider", "--hypothesis-seed=0", *tests]
        self._stdin.write(json.dumps({"args": args, "timeout": timeout}) + "\n")
        self._stdin.flush()
        answer = self._stdout.readline().strip()
        if not answer:
            raise SystemExit(f"the warm pytest in {self.path} stopped")
        return {"passed": "survived", "failed": "killed"}.get(answer, answer)

    def close(self) -> None:
        self._stdin.close()  # the warm pytest's end of input: it exits
        self._warm.wait(timeout=30)
        self._stdout.close()


def _check_copy_is_imported(copy: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(copy)}
    found = subprocess.run(
        [sys.executable, "-c", "import dynomatic_daemon; print(dynomatic_daemon.__file__)"],
        cwd=copy, env=env, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    if not Path(found).is_relative_to(copy):
        raise SystemExit(f"the copy is not what Python imports ({found}); is PYTHONPATH ignored?")


def run_target(
    module: str, tests: list[str], equivalent: Equivalents, jobs: int, match: str = ""
) -> list[Result]:
    work = Path(tempfile.mkdtemp(prefix="dynomatic-mutate-"))
    copies: Queue[_Copy] = Queue()
    try:
        for job in range(jobs):
            path = work / f"copy{job}"
            shutil.copytree(ROOT, path, ignore=COPY_IGNORE)
            _check_copy_is_imported(path)
            copies.put(_Copy(path))
        started = time.monotonic()
        first = copies.get()
        baseline = first.pytest(module, tests, timeout=600)
        copies.put(first)
        base_seconds = time.monotonic() - started
        if baseline != "survived":
            raise SystemExit(f"{module}: its tests fail without any mutation: {' '.join(tests)}")
        timeout = max(30.0, 3 * base_seconds)
        print(f"{module}: tests pass unmutated in {base_seconds:.1f} s", flush=True)

        def one(item: tuple[Mutant, str]) -> Result:
            mutant, source = item
            if mutant in equivalent:
                return Result(mutant, "equivalent", 0.0)
            copy = copies.get()
            target = copy.path / module
            original = target.read_text()
            try:
                target.write_text(source)
                began = time.monotonic()
                outcome = copy.pytest(module, tests, timeout)
                return Result(mutant, outcome, time.monotonic() - began)
            finally:
                target.write_text(original)
                copies.put(copy)

        with ThreadPoolExecutor(max_workers=jobs) as pool:
            results = []
            chosen = (item for item in _mutated_sources(module) if match in item[0].name())
            for result in pool.map(one, chosen):
                if result.outcome == "survived":
                    print(f"  survived  {result.mutant.name()}")
                results.append(result)
        return results
    finally:
        while not copies.empty():
            copies.get().close()
        shutil.rmtree(work, ignore_errors=True)


def score(results: list[Result]) -> tuple[int, int, int, float]:
    counted = [r for r in results if r.outcome != "equivalent"]
    killed = sum(r.outcome in ("killed", "timeout") for r in counted)
    equivalent = len(results) - len(counted)
    return killed, len(counted), equivalent, 100.0 * killed / len(counted) if counted else 100.0


class Equivalents:
    """The mutants listed as equivalent: by module, line text and mutation, and where the same
    line text and mutation occur more than once in the module, by ``occurrence`` (1-based, in
    the order of ``--list``); an entry without ``occurrence`` names every one of them."""

    def __init__(self, entries: list[dict[str, Any]]) -> None:
        self._every: set[tuple[str, str, str]] = set()
        self._some: dict[tuple[str, str, str], set[int]] = {}
        for entry in entries:
            key = (entry["module"], entry["line"].strip(), entry["mutation"])
            if "occurrence" in entry:
                self._some.setdefault(key, set()).add(int(entry["occurrence"]))
            else:
                self._every.add(key)

    def __contains__(self, mutant: Mutant) -> bool:
        key = mutant.key()
        return key in self._every or mutant.occurrence in self._some.get(key, ())


def load_config() -> tuple[dict[str, list[str]], Equivalents]:
    data = tomllib.loads(CONFIG.read_text())
    targets = {module: list(spec["tests"]) for module, spec in data.get("targets", {}).items()}
    return targets, Equivalents(data.get("equivalent", []))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help="modules to mutate (default: every target)")
    parser.add_argument("--jobs", type=int, default=max(1, (os.cpu_count() or 1)))
    parser.add_argument("--min-score", type=float, default=0.0, help="exit 1 below this percent")
    parser.add_argument("--list", action="store_true", help="print the mutants and stop")
    parser.add_argument("--json", type=Path, help="also write every result to this file")
    parser.add_argument(
        "--match", default="", help="only the mutants whose --list line contains this text"
    )
    args = parser.parse_args(argv)

    targets, equivalent = load_config()
    modules = args.modules or list(targets)
    unknown = [m for m in modules if m not in targets]
    if unknown:
        parser.error(f"no tests listed in {CONFIG.relative_to(ROOT)} for: {', '.join(unknown)}")
    if args.list:
        for module in modules:
            found = mutants(module)
            repeated = {m.key() for m in found if m.occurrence > 1}
            for m in found:
                if args.match not in m.name():
                    continue
                which = f"  (occurrence {m.occurrence})" if m.key() in repeated else ""
                mark = "  (equivalent)" if m in equivalent else ""
                print(f"{m.name()}{which}{mark}")
        return 0

    status, everything = 0, []
    summary = []
    for module in modules:
        results = run_target(module, targets[module], equivalent, args.jobs, args.match)
        everything += results
        killed, counted, equal, percent = score(results)
        summary.append(f"{module}: {killed}/{counted} killed ({percent:.1f} %), {equal} equivalent")
        if percent < args.min_score:
            status = 1
    print("\n".join(["", *summary]))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in everything], indent=2))
    return status


if __name__ == "__main__":
    sys.exit(main())
