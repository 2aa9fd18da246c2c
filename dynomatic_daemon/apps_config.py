"""A config file of several apps: ``[[app]]`` blocks over shared ``[defaults]``.

A file without ``[[app]]`` is one app, read exactly as before (``config.load``). A file with
``[[app]]`` blocks becomes one ``Settings`` per app, each validated as if it were a single-app
file of its own, so everything that takes one app's settings (the tick, ``check``, ``once``,
history, notifications) works per app unchanged. Each app's table is laid over ``[defaults]``
(tables merge key by key; ``[defaults.process]`` under every ``[[app.process]]``), and its
problems are named from the file's root: ``app[1].process[0].max_dynos``.

Per app: ``name`` (the Heroku app), ``api_key_env`` (the variable holding its API key, default
HEROKU_API_KEY), ``url_env`` (the variable holding its database URL, default DATABASE_URL),
optional ``heroku``/``database``/``daemon``/``adapters``/``history`` tables and ``notify``
list, and its ``[[app.process]]`` entries. ``[fleet]`` says how many ticks may run at once.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dynomatic_daemon import config
from dynomatic_daemon.config_problems import problems_from_validation
from dynomatic_daemon.errors import ConfigError, Problem

DEFAULT_API_KEY_ENV = "HEROKU_API_KEY"
APP_TABLES = ("heroku", "database", "daemon", "adapters", "history")  # mergeable per app
DEFAULT_KEYS = (*APP_TABLES, "notify", "process")
APP_KEYS = ("name", "api_key_env", "url_env", *APP_TABLES, "notify", "process")
MAX_APPS = 500


class FleetSettings(BaseModel):
    """How the apps of one file are run together."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    # Ticks in flight at once: a slow app holds one slot, not the others' turns.
    concurrency: Annotated[int, Field(ge=1, le=64)] = 8


class Apps(BaseModel):
    """Every app of one file, in file order, and how to run them together."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)
    apps: tuple[config.Settings, ...]
    fleet: FleetSettings = FleetSettings()
    multi: bool = False  # the file has [[app]] blocks (a single-app file is one app)


def is_multi(raw: Mapping[str, Any]) -> bool:
    return "app" in raw


def load(path: Path, env: Mapping[str, str]) -> Apps:
    """Read and validate every app; raise ConfigError naming each bad key from the file's root."""
    raw = config.read_toml(path)
    if not is_multi(raw):
        return Apps(apps=(config.from_raw(raw, env),))
    return from_raw(raw, env)


def from_raw(raw: dict[str, Any], env: Mapping[str, str]) -> Apps:
    problems: list[Problem] = []
    for key in raw:
        if key not in ("app", "defaults", "fleet"):
            where = "an [[app]] block" if key == "process" else "[defaults]"
            problems.append(
                Problem(key, f"with [[app]] blocks, shared settings go in {where} (or an app's)")
            )
    defaults = _table(raw.get("defaults", {}), "defaults", DEFAULT_KEYS, problems)
    fleet = _fleet(raw.get("fleet", {}), problems)
    blocks = raw.get("app")
    if not isinstance(blocks, list) or not blocks:
        problems.append(Problem("app", "must be one or more [[app]] tables"))
        raise ConfigError(problems)
    if len(blocks) > MAX_APPS:
        problems.append(Problem("app", f"at most {MAX_APPS} apps in one file"))
    apps: list[config.Settings] = []
    seen: dict[str, int] = {}
    for i, block in enumerate(blocks):
        where = f"app[{i}]"
        table = _table(block, where, APP_KEYS, problems)
        name = table.get("name")
        if not isinstance(name, str):
            problems.append(Problem(f"{where}.name", "required: the Heroku app this block scales"))
            continue
        if name in seen:
            problems.append(Problem(f"{where}.name", f"{name!r} is already app[{seen[name]}]"))
            continue
        seen[name] = i
        try:
            apps.append(_one_app(defaults, table, env))
        except ConfigError as exc:
            problems.extend(_named(where, p) for p in exc.problems)
    if problems:
        raise ConfigError(list(dict.fromkeys(problems)))  # an env problem is said once
    return Apps(apps=tuple(apps), fleet=fleet, multi=True)


def _one_app(
    defaults: dict[str, Any], table: dict[str, Any], env: Mapping[str, str]
) -> config.Settings:
    api_key_env = table.get("api_key_env", DEFAULT_API_KEY_ENV)
    if not isinstance(api_key_env, str) or not api_key_env.isidentifier():
        raise ConfigError([Problem("api_key_env", "must name an environment variable")])
    return config.from_raw(app_raw(defaults, table), env, api_key_env=api_key_env)


def one_app_raw(raw: dict[str, Any], name: str | None) -> tuple[str, dict[str, Any]]:
    """One app of a file of several, as the single-app file it stands for (no secrets read):
    for commands that read one app's settings only (``simulate``). ``name`` may be left out
    when the file has one app."""
    blocks = [b for b in raw.get("app", []) if isinstance(b, dict)] if is_multi(raw) else []
    names = [str(b.get("name")) for b in blocks]
    if name is None and len(blocks) == 1:
        name = names[0]
    if name not in names:
        listed = ", ".join(names) or "none"
        why = f"this file has {len(blocks)} apps ({listed}); name one with --app NAME"
        raise ConfigError([Problem("app", why if name is None else f"no app {name!r}: {why}")])
    defaults = raw.get("defaults", {})
    table = blocks[names.index(name)]
    return name, app_raw(defaults if isinstance(defaults, dict) else {}, table)


def app_raw(defaults: dict[str, Any], table: dict[str, Any]) -> dict[str, Any]:
    """One app's table laid over the defaults, in the shape of a single-app file."""
    raw: dict[str, Any] = {}
    for key in APP_TABLES:
        merged = _merge(defaults.get(key, {}), table.get(key, {}))
        if merged:
            raw[key] = merged
    if "notify" in table or "notify" in defaults:
        raw["notify"] = copy.deepcopy(table.get("notify", defaults.get("notify")))
    heroku = raw.setdefault("heroku", {})
    database = raw.setdefault("database", {})
    if isinstance(heroku, dict):
        heroku["app"] = table["name"]
    if isinstance(database, dict) and "url_env" in table:
        database["url_env"] = table["url_env"]
    shared_process = defaults.get("process", {})
    processes = table.get("process")
    if isinstance(processes, list):
        raw["process"] = [_merge(shared_process, p) for p in processes]
    return raw


def _named(where: str, problem: Problem) -> Problem:
    """A problem of one app's settings, named as the user wrote it in the file."""
    renames = {"heroku.app": "name", "database.url_env": "url_env"}
    key = problem.key
    if key.split(" ")[0] in renames:
        key = renames[key.split(" ")[0]]
    if key.startswith(("heroku", "database", "daemon", "adapters", "history", "notify")) or (
        key.startswith(("process", "name", "url_env", "api_key_env", "config"))
    ):
        return Problem(f"{where}.{key}", problem.message)
    if key.startswith("DYNOMATIC_"):
        return problem  # an override in the environment: the same for every app
    # An environment variable's name (a secret not set): say which app needs it.
    return Problem(f"{key} ({where})", problem.message)


def _table(
    value: Any, where: str, allowed: tuple[str, ...], problems: list[Problem]
) -> dict[str, Any]:
    if not isinstance(value, dict):
        problems.append(Problem(where, "must be a table"))
        return {}
    for key in value:
        if key not in allowed:
            problems.append(Problem(f"{where}.{key}", f"unknown key; valid: {', '.join(allowed)}"))
    return {k: v for k, v in value.items() if k in allowed}


def _fleet(value: Any, problems: list[Problem]) -> FleetSettings:
    try:
        return FleetSettings.model_validate(value)
    except ValidationError as exc:
        found = problems_from_validation(exc, FleetSettings, {})
        problems.extend(Problem(f"fleet.{p.key}", p.message) for p in found)
        return FleetSettings()


def _merge(base: Any, over: Any) -> Any:
    """``over`` laid on ``base``: tables merge key by key, anything else replaces."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = copy.deepcopy(base)
        for key, value in over.items():
            out[key] = _merge(out.get(key), value) if key in out else copy.deepcopy(value)
        return out
    return copy.deepcopy(over)
