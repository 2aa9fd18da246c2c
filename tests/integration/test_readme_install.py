"""The README's "Install on Heroku" steps, run as written in a fresh app repository.

Every shell command of that section runs in order. ``heroku`` is a small stand-in on PATH that
keeps config vars in a file, runs ``heroku run`` commands with them, and starts the Procfile's
process on ``heroku ps:scale``; the Heroku API behind them is the loopback stand-in and the
database is the test database, both given as the app's first config vars, the way Heroku
Postgres sets DATABASE_URL. The only edits to the commands are the guide's placeholders.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import psutil
import psycopg
import pytest
from daemon_support import enqueue

from dynomatic_daemon import __version__
from dynomatic_daemon.sandbox.heroku_standin import HerokuStandIn

pytestmark = [pytest.mark.postgres, pytest.mark.e2e]

REPO = Path(__file__).resolve().parents[2]
TOKEN = "hk-from-authorizations-create-7c1e"
FAKE_HEROKU = textwrap.dedent(
    '''\
    """heroku, as far as the README's install steps use it."""
    import json, os, shlex, signal, subprocess, sys
    from pathlib import Path

    state = Path(os.environ["FAKE_HEROKU_STATE"])
    config = json.loads((state / "config.json").read_text())
    args = [a for a in sys.argv[1:] if not a.startswith("--app")]
    command, rest = args[0], args[1:]
    env = {**os.environ, **config}
    if command == "authorizations:create":
        print("Token:       " + (state / "token").read_text())
    elif command == "config:set":
        config.update(dict(a.split("=", 1) for a in rest))
        (state / "config.json").write_text(json.dumps(config))
    elif command == "run":
        sys.exit(subprocess.run(rest, env=env).returncode)
    elif command == "ps:scale":
        kind, quantity = rest[0].split("=")
        procfile = dict(line.split(":", 1) for line in Path("Procfile").read_text().splitlines())
        if int(quantity) > 0:
            log = (state / f"{kind}.log").open("wb")
            proc = subprocess.Popen(shlex.split(procfile[kind]), env=env, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
            (state / f"{kind}.pid").write_text(str(proc.pid))
        else:
            os.kill(int((state / f"{kind}.pid").read_text()), signal.SIGTERM)
    else:
        sys.exit(f"fake heroku: {command} is not one of the README's steps")
    '''
)


def install_commands() -> list[str]:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Install on Heroku", 1)[1].split("\n## ", 1)[0]
    section = section.split("\n### ", 1)[0]  # the steps, not the one-click app after them
    blocks = re.findall(r"```sh\n(.*?)```", section, re.DOTALL)
    lines = [re.sub(r"\s+#.*$", "", line).strip() for b in blocks for line in b.splitlines()]
    return [line for line in lines if line]


def fill_in(command: str, sources: Path) -> str:
    return (
        command.replace("path/to/dynomatic-daemon", str(sources))
        .replace("<token>", TOKEN)
        .replace("<your-app>", "my-app")
    )


@pytest.fixture
def app_repo(tmp_path: Path) -> Path:
    app = tmp_path / "app"
    app.mkdir()
    (app / "Procfile").write_text("web: bundle exec puma\nworker: bundle exec rake jobs:work\n")
    return app


def test_the_readme_install_steps_deploy_a_scaler_that_scales(
    tmp_path: Path,
    app_repo: Path,
    delayed_jobs: psycopg.Connection[Any],
    secret_db_url: str,
) -> None:
    commands = install_commands()
    assert any(c.startswith("heroku ps:scale scaler=1") for c in commands), commands
    # the project's sources as a user's clone holds them (a build writes into its tree)
    ignore = shutil.ignore_patterns(".venv*", ".git", "build", "dist", "*.egg-info", ".*cache")
    sources = Path(shutil.copytree(REPO, tmp_path / "dynomatic-daemon", ignore=ignore))
    state = tmp_path / "heroku-state"
    state.mkdir()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "heroku").write_text(f"#!{sys.executable}\n{FAKE_HEROKU}")
    (bin_dir / "heroku").chmod(0o755)
    (state / "token").write_text(TOKEN)
    enqueue(delayed_jobs, 60)  # work waiting: 60 ready jobs at 25 per dyno want 3 dynos
    formation = {"web": 1, "worker": 0, "scaler": 0}
    with HerokuStandIn("my-app", TOKEN, formation) as standin:
        config_vars = {"DATABASE_URL": secret_db_url, "DYNOMATIC_HEROKU_API_URL": standin.url}
        (state / "config.json").write_text(json.dumps(config_vars))
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("DYNOMATIC_", "HEROKU"))},
            "PATH": f"{bin_dir}:{Path(sys.executable).parent}:{os.environ['PATH']}",
            "FAKE_HEROKU_STATE": str(state),
        }
        outputs: dict[str, str] = {}
        try:
            for command in commands:
                done = subprocess.run(
                    ["bash", "-c", fill_in(command, sources)], cwd=app_repo, env=env,
                    capture_output=True, text=True, timeout=180, check=False,
                )  # fmt: skip
                assert done.returncode == 0, f"$ {command}\n{done.stdout}\n{done.stderr}"
                outputs[command] = done.stdout
            assert standin.wait_for(lambda: standin.formation()["worker"] == 3, timeout=30), (
                state / "scaler.log"
            ).read_text()
        finally:
            stop_scaler(state)
    assert "all checks passed" in outputs["heroku run dynomatic check"]
    config_vars = json.loads((state / "config.json").read_text())
    assert config_vars["HEROKU_API_KEY"] == TOKEN and config_vars["HEROKU_APP_NAME"] == "my-app"
    assert_requirements_install(app_repo, tmp_path)


def stop_scaler(state: Path) -> None:
    """SIGTERM the scaler dyno, and wait for it to be gone."""
    pid_file = state / "scaler.pid"
    if pid_file.exists():
        scaler = psutil.Process(int(pid_file.read_text()))
        scaler.send_signal(signal.SIGTERM)
        scaler.wait(timeout=15)


def assert_requirements_install(app: Path, tmp_path: Path) -> None:
    """pip, run where Heroku's Python buildpack runs it (the app's root), installs the wheel."""
    target = tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index"]
    done = subprocess.run(
        [*pip, "--target", str(target), "-r", "requirements.txt"],
        cwd=app, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (target / "dynomatic_daemon" / "__init__.py").exists()
    licence = target / f"dynomatic_daemon-{__version__}.dist-info" / "licenses" / "LICENSE"
    assert licence.read_text().startswith("MIT License")
