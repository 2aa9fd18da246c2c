"""The guides a new user reads first stay true: versions, requirement lines, exit codes, configs."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from dynomatic_daemon import __version__, cli
from dynomatic_daemon.process_config import ProcessSettings

ROOT = Path(__file__).resolve().parents[2]
GUIDES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
VERSION_MENTIONS = re.compile(
    r"dynomatic-daemon==(?P<a>[\w.]+)|dynomatic-daemon @ \S+@v(?P<b>[\w.]+)"
    r"|dynomatic_daemon-(?P<c>[\w.]+)-py3-none-any\.whl"
)


def text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def test_every_pinned_version_in_the_guides_is_the_current_one() -> None:
    found = [(p.name, next(v for v in m.groups() if v)) for p in GUIDES
             for m in VERSION_MENTIONS.finditer(text(p))]  # fmt: skip
    assert len(found) >= 4, found
    assert [f for f in found if f[1] != __version__] == []  # docs/releasing.md: bump them


def test_git_requirement_lines_are_what_pip_accepts() -> None:
    lines = [m.group(0) for p in GUIDES for m in re.finditer(r"dynomatic-daemon @ \S+", text(p))]
    assert lines
    for line in lines:
        requirement = Requirement(line)  # pip parses requirement lines with this grammar
        assert requirement.name == "dynomatic-daemon"
        assert re.fullmatch(
            r"git\+https://github\.com/[\w-]+/dynomatic-daemon@v[\w.]+", str(requirement.url)
        ), requirement.url


def test_the_guides_say_the_package_is_not_on_pypi_yet() -> None:
    for path in (ROOT / "README.md", ROOT / "docs" / "deploy.md"):
        assert "not on PyPI yet" in text(path), path


def readme_exit_codes() -> dict[str, set[str]]:
    section = text(ROOT / "README.md").split("## Commands", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `dynomatic (\w+)[^`]*` \|.*\| (.+) \|$", section, re.M)
    codes: dict[str, set[str]] = {}
    for name, cell in rows:  # a command with sub-commands may have several rows
        codes.setdefault(name, set()).update(re.findall(r"\b([0-2])\b", cell))
    return codes


def test_the_readme_states_each_commands_exit_codes_as_the_command_does() -> None:
    documented = readme_exit_codes()
    assert set(documented) == set(cli.COMMANDS)  # every command has its row
    for name, command in cli.COMMANDS.items():
        # Command.exits is printed by --help; tests of each command prove each code
        assert documented[name] == set(re.findall(r"\b([0-2])\b", command.exits)), name


@pytest.mark.parametrize("guide", ["migrating-from-dynomatic.md", "local-testing.md"])
def test_config_blocks_in_the_new_guides_are_valid(guide: str) -> None:
    blocks = re.findall(r"```toml\n(.*?)```", text(ROOT / "docs" / guide), re.S)
    for block in blocks:
        for process in tomllib.loads(block).get("process", []):
            ProcessSettings.model_validate(process)
    assert len(blocks) >= (2 if guide.startswith("migrating") else 0)
