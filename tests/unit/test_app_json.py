"""app.json deploys this repository as a scaler app that has everything the daemon needs."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from dynomatic_daemon import cli, config

ROOT = Path(__file__).resolve().parents[2]
APP = json.loads((ROOT / "app.json").read_text(encoding="utf-8"))


def procfile() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in lines if line)}


def test_one_basic_scaler_dyno_running_the_daemon() -> None:
    assert APP["formation"] == {"scaler": {"quantity": 1, "size": "basic"}}
    assert procfile()["scaler"] == "dynomatic run"
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["dynomatic"] == "dynomatic_daemon.cli:main" and "run" in cli.COMMANDS


def test_the_buildpack_installs_this_package() -> None:
    assert APP["buildpacks"] == [{"url": "heroku/python"}]
    requirements = (ROOT / "requirements.txt").read_text().splitlines()
    assert [r for r in requirements if r and not r.startswith("#")] == ["."]


def test_set_up_asks_for_what_the_daemon_needs_and_checks_it() -> None:
    env = APP["env"]
    required = {name for name, var in env.items() if var.get("required")}
    assert required == {"HEROKU_API_KEY", "HEROKU_APP_NAME", "DATABASE_URL"}
    assert all(len(var["description"]) > 40 for var in env.values())
    assert APP["scripts"]["postdeploy"] == "dynomatic check" and "check" in cli.COMMANDS


def test_the_config_vars_as_set_up_give_a_config_that_loads() -> None:
    answers = {"HEROKU_API_KEY": "hk-0000", "HEROKU_APP_NAME": "target-app",
               "DATABASE_URL": "postgres://u:p@db.example.com/app"}  # fmt: skip
    env = {name: var.get("value", answers.get(name)) for name, var in APP["env"].items()}
    path = config.resolve_path(None, env)
    assert path == Path(APP["env"]["DYNOMATIC_CONFIG"]["value"])
    settings = config.load(ROOT / path, env)  # run from the repository root, as on a dyno
    assert settings.heroku.app == "target-app"
    assert settings.heroku.api_key.get_secret_value() == "hk-0000"
    assert [p.type for p in settings.process] == ["worker"]
