"""The command line as a user meets it: help, global options, and a reader that goes away."""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dynomatic_daemon import cli
from dynomatic_daemon.cli_output import ClosableOutput


def subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = cli._parser()
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def help_text(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "dynomatic_daemon", *args, "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "80"},
        check=True,
        timeout=30,
    )
    return result.stdout


def test_top_level_help_is_written_for_users_and_lists_every_command() -> None:
    text = help_text()
    assert text.startswith("usage: dynomatic")
    assert "Scale the worker dynos of a Heroku app" in text
    for name in cli.COMMANDS:
        assert f"\n    {name} " in text, name
    assert {"demo", "standin", "run", "once", "check"} <= set(cli.COMMANDS)
    for variable in ("HEROKU_API_KEY", "HEROKU_TOKEN", "HEROKU_APP_NAME", "DATABASE_URL",
                     "DYNOMATIC_CONFIG", "DYNOMATIC_<SECTION>_<KEY>"):  # fmt: skip
        assert variable in text, variable
    assert "exit codes:" in text and "\n  2  bad configuration or usage" in text


@pytest.mark.parametrize("command", ["", *cli.COMMANDS])
def test_help_fits_80_columns_and_every_option_says_what_it_does(command: str) -> None:
    text = help_text(*filter(None, [command]))
    assert [line for line in text.splitlines() if len(line) > 80] == []
    parser = subparsers()[command] if command else cli._parser()
    undocumented = [a.option_strings for a in parser._actions if a.option_strings and not a.help]
    assert undocumented == []
    if command:  # the command's own exit codes close its help
        said = " ".join(text.split("exit codes:")[-1].split())
        assert said == cli.COMMANDS[command].exits


@pytest.mark.parametrize(
    "argv",
    [
        ["--config", "{path}", "check"],
        ["check", "--config", "{path}"],
        ["--config", "elsewhere.toml", "check", "--config", "{path}"],  # the later one wins
        ["--log-format", "json", "--config", "{path}", "once", "--dry-run"],
    ],
)
def test_global_options_go_before_or_after_the_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    path = tmp_path / "mine.toml"  # missing on purpose: the message names the path it read
    assert cli.main([a.format(path=path) for a in argv]) == 2
    err = capsys.readouterr().err
    assert f"{path}: config file not found" in err, err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--config", "x.toml", "demo"], "--config does not apply to `dynomatic demo`"),
        (["--log-format", "json", "standin"], "--log-format does not apply to `dynomatic standin`"),
        (["demo", "--config", "x.toml"], "unrecognized arguments: --config"),
    ],
)
def test_an_option_a_command_does_not_take_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_demo_takes_log_format_after_or_before_the_command() -> None:
    assert cli._parser().parse_args(["demo", "--log-format", "json"]).log_format == "json"
    assert cli._parser().parse_args(["--log-format", "json", "demo"]).log_format == "json"
    assert cli._parser().parse_args(["demo"]).log_format is None


def test_help_into_a_pipe_nobody_reads_ends_quietly() -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first byte, as after `| head -0`
    try:
        result = subprocess.run(
            [sys.executable, "-m", "dynomatic_daemon", "--help"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=30,
            check=False,
        )
    finally:
        os.close(write_end)
    assert result.stderr == ""  # no BrokenPipeError, no "Exception ignored"
    assert result.returncode == 0


class _Pipe(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.reader_gone = False

    def write(self, text: str) -> int:
        if self.reader_gone:
            raise BrokenPipeError(32, "Broken pipe")
        return super().write(text)


def test_closable_output_swallows_a_broken_pipe_once_and_tells_its_listeners() -> None:
    pipe = _Pipe()
    out = ClosableOutput(pipe)
    calls: list[str] = []
    assert ClosableOutput.watch(out, lambda: calls.append("stop"))
    out.write("first\n")
    pipe.reader_gone = True
    out.write("second\n")
    out.write("third\n")
    assert out.closed and calls == ["stop"] and pipe.getvalue() == "first\n"
    assert not ClosableOutput.watch(out, lambda: calls.append("late"))  # gone already: no call
    assert ClosableOutput.watch(io.StringIO(), lambda: calls.append("never"))
    assert calls == ["stop"]


@pytest.mark.parametrize(
    ("args", "env", "code", "says"),
    [
        (["demo", "--duration", "1"], {"DATABASE_URL": "postgresql://127.0.0.1:1/none"}, 1,
         "dynomatic demo: OperationalError"),
        (["standin", "--formation", "worker=many"], {}, 2, "quantities are integers"),
        (["run", "--config", "missing.toml"], {}, 2, "missing.toml: config file not found"),
    ],
)  # fmt: skip
def test_exit_codes_the_readme_states(
    tmp_path: Path, args: list[str], env: dict[str, str], code: int, says: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "dynomatic_daemon", *args],
        env={**os.environ, **env}, cwd=tmp_path, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert done.returncode == code, done.stdout + done.stderr
    assert says in done.stderr, done.stderr
