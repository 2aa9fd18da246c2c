"""Frozen, validated settings. ``load(path, env)`` layers defaults < TOML file < environment.

This is the only module that reads the environment. Secrets (the Heroku API key and the
database URL) come from the environment only and are held as ``SecretStr`` so that no repr,
log line or error message can show them.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from difflib import get_close_matches
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from dynomatic_daemon.adapters import catalog
from dynomatic_daemon.adapters.base import AdapterOptions
from dynomatic_daemon.addresses import database_url_problem, is_loopback
from dynomatic_daemon.config_problems import missing_hints, problems_from_validation, toml_hint
from dynomatic_daemon.errors import ConfigError, Problem
from dynomatic_daemon.frozen import Frozen
from dynomatic_daemon.guard_config import (
    BudgetSettings,
    StateSettings,
    apply_state_secret,
    missing_state_secret,
)
from dynomatic_daemon.observe_config import (
    HistorySettings,
    HttpSettings,
    NotifyList,
    apply_secrets,
    missing_secrets,
)
from dynomatic_daemon.process_config import (
    LatencyRule,
    ProcessSettings,
    Rule,
    Window,
    valid_adapters,
)

__all__ = ["LatencyRule", "ProcessSettings", "Rule", "Settings", "Window", "load"]

DEFAULT_PATH = Path("dynomatic.toml")
APP_PATTERN = (
    r"^([a-z][a-z0-9-]{1,28}[a-z0-9]|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$"
)
MAX_CONFIG_BYTES = 1 << 20  # a config file is a few kB; /dev/zero must not be read forever
# Each tick may cost two Heroku API calls (a write and the re-list after it): at 5 s that is at
# most 1,440 of the account's 4,500 requests an hour, and a new dyno takes longer than 5 s to
# boot, so a shorter interval would not scale any faster. The stand-in on loopback has no budget.
MIN_INTERVAL_SECONDS = 5.0
# The Ruby gem read its token from HEROKU_TOKEN; it is accepted when HEROKU_API_KEY is not set.
API_KEY_VARIABLES = ("HEROKU_API_KEY", "HEROKU_TOKEN")


class HerokuSettings(Frozen):
    app: Annotated[str, Field(pattern=APP_PATTERN)]
    api_url: str = "https://api.heroku.com"
    api_key: SecretStr = Field(exclude=True)
    timeout_seconds: Annotated[float, Field(gt=0, le=60)] = 10.0
    max_retries: Annotated[int, Field(ge=0, le=5)] = 2
    resync_seconds: Annotated[float, Field(ge=0, le=3600)] = 60.0
    # how often to look for a new release (one API call); 0: never (no release holds)
    releases_poll_seconds: Annotated[float, Field(ge=0, le=3600)] = 60.0

    @model_validator(mode="after")
    def _https_unless_loopback(self) -> HerokuSettings:
        parts = urlsplit(self.api_url)
        host = parts.hostname or ""
        loopback = is_loopback(host)  # the parsed address: 127.attacker.example is not loopback
        if parts.scheme not in ("http", "https") or not host:
            raise ValueError(f"api_url must be an http(s) URL, got {self.api_url!r}")
        if parts.scheme == "http" and not loopback:
            raise ValueError(
                f"api_url must use https unless it is a loopback address: {self.api_url!r}"
            )
        return self


class DatabaseSettings(Frozen):
    url_env: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] = "DATABASE_URL"
    url: SecretStr = Field(exclude=True)
    statement_timeout_ms: Annotated[int, Field(ge=100, le=600_000)] = 5000
    connect_timeout_seconds: Annotated[int, Field(ge=1, le=60)] = 5


class DaemonSettings(Frozen):
    interval_seconds: Annotated[float, Field(ge=0.01, le=3600)] = 10.0
    dry_run: bool = False
    log_format: Literal["auto", "logfmt", "console", "json"] = "auto"
    stalled_after_intervals: Annotated[int, Field(ge=1, le=1000)] = 3


class Settings(Frozen):
    heroku: HerokuSettings
    database: DatabaseSettings
    daemon: DaemonSettings = DaemonSettings()
    adapters: Mapping[str, AdapterOptions] = Field(default_factory=dict)  # parsed once, here
    process: Annotated[tuple[ProcessSettings, ...], Field(min_length=1)]
    history: HistorySettings = HistorySettings()
    http: HttpSettings = HttpSettings()
    notify: NotifyList = ()
    state: StateSettings = StateSettings()
    budget: BudgetSettings = BudgetSettings()
    # URLs of further databases named by an adapter's url_env, keyed by that variable's name.
    database_urls: Mapping[str, SecretStr] = Field(default_factory=dict, exclude=True)

    @field_validator("adapters", mode="before")
    @classmethod
    def _adapter_tables(cls, tables: object) -> object:
        """Each ``[adapters.X]`` table as X's own options model, so every later use of it reads
        the parsed options (one problem line per bad key, named under ``adapters.X``)."""
        if not isinstance(tables, Mapping):
            return tables  # pydantic reports the wrong type
        parsed, problems = {}, []
        for name, table in tables.items():
            if name not in catalog.NAMES:
                problems.append(f"{name}: unknown adapter; {valid_adapters()}")
            elif isinstance(table, AdapterOptions):
                parsed[name] = table
            elif not isinstance(table, Mapping):
                problems.append(f"{name}: must be a table")
            else:
                model = catalog.options_model(name)
                try:
                    parsed[name] = model.model_validate(table)
                except ValidationError as exc:
                    problems += [
                        f"{name}.{p.key}: {p.message}"
                        for p in problems_from_validation(exc, model, {})
                    ]
        if problems:
            raise ValueError("\n".join(problems))
        return parsed

    @model_validator(mode="after")
    def _check(self) -> Settings:
        problems: list[str] = []
        owners: dict[str, str] = {}
        for i, proc in enumerate(self.process):
            for ftype in proc.formation_types:
                if ftype in owners:
                    problems.append(
                        f"process[{i}]: process type {ftype!r} is already driven by "
                        f"process {owners[ftype]!r}"
                    )
                owners[ftype] = proc.type
        for ptype in self.budget.process:
            if ptype not in {p.type for p in self.process}:
                problems.append(f"budget.process.{ptype}: no [[process]] has this type")
        interval = self.daemon.interval_seconds
        if interval < MIN_INTERVAL_SECONDS and not is_loopback(
            urlsplit(self.heroku.api_url).hostname
        ):
            problems.append(
                f"daemon.interval_seconds: {interval:g} is below the floor of "
                f"{MIN_INTERVAL_SECONDS:g} s (a tick may cost 2 Heroku API calls: at "
                f"{MIN_INTERVAL_SECONDS:g} s that is at most 1,440 of the account's 4,500 "
                "requests an hour, and a dyno takes longer to boot, so polling faster would not "
                "scale faster; only a loopback api_url, for tests, allows less)"
            )
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def adapter_options(self, name: str) -> AdapterOptions:
        """The ``[adapters.<name>]`` options, or that adapter's defaults without a table."""
        options = self.adapters.get(name)
        return catalog.options_model(name)() if options is None else options

    def url_for(self, adapter: str) -> tuple[str, SecretStr]:
        """The variable naming the database this adapter reads, and its URL."""
        env_name = self.adapter_options(adapter).url_env or self.database.url_env
        return env_name, self.database_urls.get(env_name, self.database.url)


_SCALAR_SECTIONS: dict[str, type[BaseModel]] = {
    "heroku": HerokuSettings,
    "database": DatabaseSettings,
    "daemon": DaemonSettings,
    "history": HistorySettings,
    "http": HttpSettings,
    "state": StateSettings,
}
_ENV_ONLY = {
    ("heroku", "api_key"): "HEROKU_API_KEY",
    ("database", "url"): "DATABASE_URL",
    ("history", "url"): "the variable history.url_env names",
    ("http", "password"): "the variable http.password_env names",
    ("state", "url"): "the variable state.url_env names",
}


def resolve_path(cli_path: str | None, env: Mapping[str, str]) -> Path:
    if cli_path:
        return Path(cli_path)
    if env.get("DYNOMATIC_CONFIG"):
        return Path(env["DYNOMATIC_CONFIG"])
    return DEFAULT_PATH


def load(path: Path, env: Mapping[str, str]) -> Settings:
    """Read, layer and validate; raise ConfigError with one Problem per bad key."""
    return from_raw(read_toml(path), env)


def from_raw(
    raw: dict[str, Any], env: Mapping[str, str], *, api_key_env: str | None = None
) -> Settings:
    """Layer the environment over one app's parsed file and validate it.

    ``api_key_env``: the one variable that holds this app's key (an ``[[app]]`` block names
    it); None reads HEROKU_API_KEY, else HEROKU_TOKEN, and lets the environment name the app,
    as a single-app file always has."""
    problems: list[Problem] = []
    env_keys: dict[str, str] = {}
    for (section, key), var in _ENV_ONLY.items():
        if key in raw.get(section, {}) and isinstance(raw[section], dict):
            problems.append(
                Problem(f"{section}.{key}", f"secrets come from the environment only (set {var})")
            )
            del raw[section][key]
    _apply_env(raw, env, env_keys, problems, app_aliases=api_key_env is None)
    _apply_secrets(raw, env, problems, api_key_env)
    apply_secrets(raw, env, problems)
    apply_state_secret(raw, env, problems)
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as exc:
        hints = missing_hints(gem_app_variable="HEROKU_APP" in env)
        problems.extend(problems_from_validation(exc, Settings, env_keys, hints))
        raise ConfigError(problems) from None
    problems.extend(missing_secrets(settings.history))
    problems.extend(missing_state_secret(settings.state))
    if problems:
        raise ConfigError(problems)
    return _adapter_urls(settings, env)


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as file:
            data = file.read(MAX_CONFIG_BYTES + 1)
        if len(data) > MAX_CONFIG_BYTES:
            raise ConfigError([Problem(str(path), "too large for a config file (over 1 MiB)")])
        text = data.decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(
            [Problem(str(path), "config file not found (use --config PATH or DYNOMATIC_CONFIG)")]
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([Problem(str(path), f"cannot read config file: {exc}")]) from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = f"not valid TOML: {exc}{toml_hint(text, str(exc))}"
        raise ConfigError([Problem(str(path), message)]) from None
    if not raw:
        raise ConfigError(
            [Problem(str(path), "the file is empty; copy config.example.toml to start from")]
        )
    return raw


def _apply_env(
    raw: dict[str, Any],
    env: Mapping[str, str],
    env_keys: dict[str, str],
    problems: list[Problem],
    *,
    app_aliases: bool = True,
) -> None:
    # In a file of several apps each names its own: Heroku's HEROKU_APP_NAME (set on the
    # scaler's own dyno) must not rename them all.
    app_vars = ("HEROKU_APP_NAME", "DYNOMATIC_HEROKU_APP")
    aliases = dict.fromkeys(app_vars, ("heroku", "app"))
    for section, model in _SCALAR_SECTIONS.items():
        for key in model.model_fields:
            if (section, key) in _ENV_ONLY:
                continue
            aliases[f"DYNOMATIC_{section}_{key}".upper()] = (section, key)
    # The more specific DYNOMATIC_HEROKU_APP wins over Heroku's own HEROKU_APP_NAME.
    for var in sorted(aliases, key=lambda v: v == "DYNOMATIC_HEROKU_APP"):
        if var in env and (app_aliases or var not in app_vars):
            section, key = aliases[var]
            target = raw.setdefault(section, {})
            if not isinstance(target, dict):
                problems.append(Problem(section, "must be a table"))
                continue
            target[key] = env[var]
            env_keys[f"{section}.{key}"] = var
    known = set(aliases)
    prefixes = tuple(f"DYNOMATIC_{s.upper()}_" for s in _SCALAR_SECTIONS)
    for var in sorted(env):
        if var.startswith(prefixes) and var not in known:
            problems.append(
                Problem(var, f"unknown setting in the environment; {_closest(var, known)}")
            )


def _apply_secrets(
    raw: dict[str, Any], env: Mapping[str, str], problems: list[Problem], api_key_env: str | None
) -> None:
    heroku = raw.setdefault("heroku", {})
    database = raw.setdefault("database", {})
    if not isinstance(heroku, dict) or not isinstance(database, dict):
        return
    source = api_key_variable(env) if api_key_env is None else api_key_env
    if source is not None and env.get(source, "").strip():
        heroku["api_key"] = env[source].strip()
    else:
        problems.append(
            Problem(
                source or "HEROKU_API_KEY",
                "not set; the Heroku API key comes from the environment only",
            )
        )
    url_env = database.get("url_env", "DATABASE_URL")
    if isinstance(url_env, str) and env.get(url_env, "").strip():
        if bad_url := _url_problem(url_env, env):
            problems.append(bad_url)
        else:
            database["url"] = env[url_env].strip()
    else:
        problems.append(
            Problem(str(url_env), "not set; the database URL comes from the environment only")
        )


def api_key_variable(env: Mapping[str, str]) -> str | None:
    """The variable the Heroku API key comes from: HEROKU_API_KEY, else the gem's HEROKU_TOKEN."""
    return next((v for v in API_KEY_VARIABLES if env.get(v, "").strip()), None)


def notices(env: Mapping[str, str]) -> list[str]:
    """Things worth one line at start that are not problems (never a secret's value)."""
    if api_key_variable(env) == "HEROKU_TOKEN":
        return [
            "the Heroku API key comes from HEROKU_TOKEN (the Ruby gem's name) because "
            "HEROKU_API_KEY is not set; rename it to HEROKU_API_KEY to drop this line"
        ]
    return []


def _url_problem(var: str, env: Mapping[str, str]) -> Problem | None:
    """A malformed database URL, named by its variable: its value may hold the password."""
    reason = database_url_problem(env[var].strip())
    return Problem(var, f"malformed database URL: {reason}") if reason else None


def _adapter_urls(settings: Settings, env: Mapping[str, str]) -> Settings:
    """Fetch the URL of each further database an ``[adapters.X]`` table names."""
    problems: list[Problem] = []
    urls: dict[str, SecretStr] = {}
    for name, parsed in settings.adapters.items():
        if parsed.url_env and parsed.url_env != settings.database.url_env:
            if env.get(parsed.url_env, "").strip():
                if bad_url := _url_problem(parsed.url_env, env):
                    problems.append(bad_url)
                urls[parsed.url_env] = SecretStr(env[parsed.url_env].strip())
            else:
                why = f"not set; adapters.{name}.url_env names it"
                problems.append(Problem(parsed.url_env, why))
    if problems:
        raise ConfigError(problems)
    return settings.model_copy(update={"database_urls": urls})


def _closest(word: str, candidates: set[str]) -> str:
    match = get_close_matches(word, sorted(candidates), n=1)
    return f"did you mean {match[0]}?" if match else "no such setting"
