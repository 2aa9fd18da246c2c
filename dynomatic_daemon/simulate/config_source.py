"""The parts of a ``dynomatic.toml`` a simulation needs, read without secrets or a database.

The ``[[process]]`` tables are validated by the daemon's own ``ProcessSettings`` and ``[daemon]``
by its ``DaemonSettings``, so a config that simulates is a config that runs (minus the API key
and database URL, which only ``run``/``once``/``check`` need). ``[heroku]`` is not read;
``[database] url_env`` and ``[adapters.*]`` are kept for ``--from-database``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dynomatic_daemon import apps_config
from dynomatic_daemon.config import DaemonSettings
from dynomatic_daemon.config_problems import problems_from_validation
from dynomatic_daemon.errors import ConfigError, Problem
from dynomatic_daemon.process_config import ProcessSettings


class _DatabaseSection(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    url_env: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] = "DATABASE_URL"
    statement_timeout_ms: Annotated[int, Field(ge=100, le=600_000)] = 5000
    connect_timeout_seconds: Annotated[int, Field(ge=1, le=60)] = 5


class SimulationConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    heroku: Mapping[str, Any] = Field(default_factory=dict)
    database: _DatabaseSection = _DatabaseSection()
    daemon: DaemonSettings = DaemonSettings()
    adapters: Mapping[str, Any] = Field(default_factory=dict)
    process: Annotated[tuple[ProcessSettings, ...], Field(min_length=1)]


def labelled(path: Path, app: str | None = None) -> tuple[str, SimulationConfig]:
    """The config and its label in reports: the path, and the app's name for a file of several."""
    raw = _read(path)
    if apps_config.is_multi(raw):
        try:
            name, raw = apps_config.one_app_raw(raw, app)
        except ConfigError as exc:
            problems = [Problem(f"{path}: {p.key}", p.message) for p in exc.problems]
            raise ConfigError(problems) from None
        raw = {k: v for k, v in raw.items() if k in SimulationConfig.model_fields}
        return f"{path} [{name}]", _validated(path, raw)
    return str(path), _validated(path, raw)


def load(path: Path) -> SimulationConfig:
    """Read and validate; raise ConfigError with one Problem per bad key, each under the path."""
    return _validated(path, _read(path))


def _read(path: Path) -> dict[str, Any]:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError([Problem(str(path), "config file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([Problem(str(path), f"cannot read config file: {exc}")]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([Problem(str(path), f"not valid TOML: {exc}")]) from None
    return raw


def _validated(path: Path, raw: dict[str, Any]) -> SimulationConfig:
    try:
        return SimulationConfig.model_validate(raw)
    except ValidationError as exc:
        problems = problems_from_validation(exc, SimulationConfig, {})
        raise ConfigError([Problem(f"{path}: {p.key}", p.message) for p in problems]) from None
