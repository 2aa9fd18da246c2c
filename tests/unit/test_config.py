"""Configuration: the documented example loads as written; every bad input names its key."""

from __future__ import annotations

from pathlib import Path

import pytest

from dynomatic_daemon import cli, config
from dynomatic_daemon.adapters import catalog
from dynomatic_daemon.errors import ConfigError

ISSUE_EXAMPLE = """
[heroku]
app = "my-app"                       # env HEROKU_APP_NAME or DYNOMATIC_HEROKU_APP overrides
# api_url = "https://api.heroku.com" # env DYNOMATIC_HEROKU_API_URL overrides (tests, proxies)

[database]
# the URL comes from env DATABASE_URL (or the env var named by url_env = "...")
statement_timeout_ms = 5000

[daemon]
interval_seconds = 10                # env DYNOMATIC_DAEMON_INTERVAL_SECONDS
dry_run = false                      # env DYNOMATIC_DAEMON_DRY_RUN

[[process]]
type = "worker"
adapter = "delayed_job"
queues = ["default", "mailers"]      # optional; omitted = every queue
rules = [
  { at_least = 0,  dynos = 1 },
  { at_least = 10, dynos = 5 },
  { at_least = 20, dynos = 10 },
  { at_least = 30, dynos = 15 },
]

[[process]]
type = "urgent"
adapter = "delayed_job"
queues = ["critical"]
worker_names = ["urgent1", "urgent2", "urgent3"]  # hobby mode: toggles these types on/off
rules = [ { at_least = 0, dynos = 0 }, { at_least = 1, dynos = 1 }, { at_least = 50, dynos = 3 } ]
"""

API_KEY = "hk-secret-0123456789abcdef"
DB_URL = "postgres://app:pa55w0rd-zz@db.example.com:5432/app"
ENV = {"HEROKU_API_KEY": API_KEY, "DATABASE_URL": DB_URL}
MINIMAL = """
[heroku]
app = "my-app"
[[process]]
type = "worker"
adapter = "delayed_job"
rules = [{ at_least = 0, dynos = 1 }]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "dynomatic.toml"
    path.write_text(text)
    return path


def problems(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        config.load(write(tmp_path, text), ENV if env is None else env)
    return {p.key: p.message for p in info.value.problems}


def test_issue_example_loads_exactly_as_written(tmp_path: Path) -> None:
    settings = config.load(write(tmp_path, ISSUE_EXAMPLE), ENV)
    assert settings.heroku.app == "my-app"
    assert settings.heroku.api_url == "https://api.heroku.com"
    assert settings.database.statement_timeout_ms == 5000
    assert settings.daemon.interval_seconds == 10
    assert settings.daemon.dry_run is False
    worker, urgent = settings.process
    assert worker.queues == ("default", "mailers")
    assert [(r.at_least, r.dynos) for r in worker.rules] == [(0, 1), (10, 5), (20, 10), (30, 15)]
    assert urgent.worker_names == ("urgent1", "urgent2", "urgent3")
    assert urgent.formation_types == ("urgent1", "urgent2", "urgent3")
    assert settings.heroku.api_key.get_secret_value() == API_KEY
    assert settings.database.url.get_secret_value() == DB_URL


def test_shipped_example_config_loads() -> None:
    example = Path(__file__).resolve().parents[2] / "config.example.toml"
    settings = config.load(example, {**ENV, "HEROKU_APP_NAME": "my-app"})
    assert settings.process


def test_environment_overrides_the_file_which_overrides_defaults(tmp_path: Path) -> None:
    env = {
        **ENV,
        "HEROKU_APP_NAME": "from-heroku",
        "DYNOMATIC_DAEMON_INTERVAL_SECONDS": "3",
        "DYNOMATIC_DAEMON_DRY_RUN": "true",
        "DYNOMATIC_DATABASE_STATEMENT_TIMEOUT_MS": "1500",
        "DYNOMATIC_HEROKU_API_URL": "http://127.0.0.1:9999",
    }
    settings = config.load(write(tmp_path, ISSUE_EXAMPLE), env)
    assert settings.heroku.app == "from-heroku"
    assert settings.daemon.interval_seconds == 3
    assert settings.daemon.dry_run is True
    assert settings.database.statement_timeout_ms == 1500
    assert settings.heroku.api_url == "http://127.0.0.1:9999"
    # untouched keys keep the file's or the default value
    assert settings.heroku.max_retries == 2
    env["DYNOMATIC_HEROKU_APP"] = "most-specific"
    assert config.load(write(tmp_path, ISSUE_EXAMPLE), env).heroku.app == "most-specific"


def test_url_env_names_another_variable(tmp_path: Path) -> None:
    text = MINIMAL.replace("[[process]]", '[database]\nurl_env = "QUEUE_DATABASE_URL"\n[[process]]')
    env = {"HEROKU_API_KEY": API_KEY, "QUEUE_DATABASE_URL": DB_URL}
    assert config.load(write(tmp_path, text), env).database.url.get_secret_value() == DB_URL
    assert "QUEUE_DATABASE_URL" in problems(tmp_path, text, ENV)


@pytest.mark.parametrize(
    ("text", "key", "fragment"),
    [
        (MINIMAL.replace("dynos = 1", "dynos = -1"), "process[0].rules[0].dynos", "-1"),
        (
            MINIMAL.replace(
                "rules = [{ at_least = 0, dynos = 1 }]",
                "rules = [{ at_least = 5, dynos = 1 }, { at_least = 5, dynos = 2 }]",
            ),
            "process[0].rules[1].at_least",
            "duplicate value 5",
        ),
        (
            MINIMAL.replace("rules =", 'worker_names = ["w1", "w2"]\nrules =').replace(
                "dynos = 1", "dynos = 3"
            ),
            "process[0].rules[0].dynos",
            "above len(worker_names) = 2",
        ),
        (
            MINIMAL.replace('type = "worker"', 'type = "worker"\nqueus = ["a"]'),
            "process[0].queus",
            "did you mean 'queues'?",
        ),
        (
            MINIMAL + "[daemon]\nintervl_seconds = 3\n",
            "daemon.intervl_seconds",
            "did you mean 'interval_seconds'?",
        ),
        (
            MINIMAL.replace('"delayed_job"', '"delayed_jobs"'),
            "process[0].adapter",
            "valid adapters are delayed_job, good_job",
        ),
        (MINIMAL.replace('app = "my-app"', 'app = "My App!"'), "heroku.app", "'My App!'"),
        (MINIMAL + '[daemon]\ninterval_seconds = "soon"\n', "daemon.interval_seconds", "'soon'"),
        (MINIMAL + "[daemon]\ninterval_seconds = -1\n", "daemon.interval_seconds", "-1"),
        (
            MINIMAL.replace('app = "my-app"', 'app = "my-app"\napi_url = "http://api.example.com"'),
            "heroku",
            "must use https",
        ),
        (MINIMAL.replace('type = "worker"', 'type = "wor ker"'), "process[0].type", "wor ker"),
        (
            MINIMAL + '[[process]]\ntype = "worker"\nadapter = "delayed_job"\n'
            "rules = [{ at_least = 0, dynos = 1 }]\n",
            "process[1]",
            "already driven",
        ),
        (
            MINIMAL + "[adapters.delayed_job]\nmax_run_time_seconds = 0\n",
            "adapters.delayed_job.max_run_time_seconds",
            "0",
        ),
        (MINIMAL + "[adapters.resque]\n", "adapters.resque", "valid adapters are"),
        (MINIMAL + "[adapters]\ndelayed_job = 3\n", "adapters.delayed_job", "must be a table"),
    ],
)
def test_bad_config_names_the_key_and_the_value(
    tmp_path: Path, text: str, key: str, fragment: str
) -> None:
    found = problems(tmp_path, text)
    assert key in found, found
    assert fragment in found[key]


@pytest.mark.parametrize("name", catalog.NAMES)
def test_every_adapter_table_checks_its_url_env_and_reads_that_database(
    tmp_path: Path, name: str
) -> None:
    table = MINIMAL + f"[adapters.{name}]\n" + ('query = "SELECT 1"\n' if name == "sql" else "")
    bad = problems(tmp_path, table + 'url_env = "1-BAD"\n')
    assert "1-BAD" in bad[f"adapters.{name}.url_env"]
    unset = problems(tmp_path, table + 'url_env = "QUEUE_DB_URL"\n')
    assert unset["QUEUE_DB_URL"] == f"not set; adapters.{name}.url_env names it"
    queue_db = "postgres://q:secret@queues.example.com/q"
    text = table + 'url_env = "QUEUE_DB_URL"\n'
    settings = config.load(write(tmp_path, text), {**ENV, "QUEUE_DB_URL": queue_db})
    env_name, url = settings.url_for(name)
    assert (env_name, url.get_secret_value()) == ("QUEUE_DB_URL", queue_db)


def test_adapter_tables_are_parsed_once_at_load(tmp_path: Path) -> None:
    text = MINIMAL + "[adapters.delayed_job]\nmax_run_time_seconds = 60\n"
    settings = config.load(write(tmp_path, text), ENV)
    parsed = settings.adapters["delayed_job"]
    assert isinstance(parsed, catalog.options_model("delayed_job"))
    assert settings.adapter_options("delayed_job") is parsed
    # an adapter without a table gets its defaults, and [database]'s URL
    assert settings.adapter_options("river") == catalog.options_model("river")()
    assert settings.url_for("river")[0] == "DATABASE_URL"


def test_missing_secrets_are_named_by_their_variables(tmp_path: Path) -> None:
    found = problems(tmp_path, MINIMAL, env={})
    assert "not set" in found["HEROKU_API_KEY"]
    assert "not set" in found["DATABASE_URL"]


def test_secrets_in_the_file_are_refused(tmp_path: Path) -> None:
    text = MINIMAL.replace('app = "my-app"', f'app = "my-app"\napi_key = "{API_KEY}"')
    found = problems(tmp_path, text)
    assert "environment only" in found["heroku.api_key"]
    assert all(API_KEY not in m for m in found.values())


def test_unparsable_toml_reports_the_line(tmp_path: Path) -> None:
    found = problems(tmp_path, MINIMAL.replace('app = "my-app"', 'app = "my-app'))
    (message,) = found.values()
    assert "line 3" in message


def test_unknown_environment_setting_suggests_the_right_one(tmp_path: Path) -> None:
    found = problems(tmp_path, MINIMAL, {**ENV, "DYNOMATIC_DAEMON_DRYRUN": "1"})
    assert "DYNOMATIC_DAEMON_DRY_RUN" in found["DYNOMATIC_DAEMON_DRYRUN"]


def test_environment_value_errors_name_the_variable(tmp_path: Path) -> None:
    found = problems(tmp_path, MINIMAL, {**ENV, "DYNOMATIC_DAEMON_INTERVAL_SECONDS": "ten"})
    key = "daemon.interval_seconds (env DYNOMATIC_DAEMON_INTERVAL_SECONDS)"
    assert "'ten'" in found[key]


def test_several_problems_are_reported_together(tmp_path: Path) -> None:
    text = MINIMAL.replace("dynos = 1", "dynos = -1").replace('"delayed_job"', '"nope"')
    found = problems(tmp_path, text, env={})
    assert {
        "HEROKU_API_KEY",
        "DATABASE_URL",
        "process[0].adapter",
        "process[0].rules[0].dynos",
    } <= set(found)


def test_cli_exits_2_with_one_line_per_problem_and_no_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, MINIMAL.replace("dynos = 1", "dynos = -1"))
    monkeypatch.setenv("HEROKU_API_KEY", API_KEY)
    monkeypatch.setenv("DATABASE_URL", DB_URL)
    assert cli.main(["once", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "process[0].rules[0].dynos" in err
    assert "Traceback" not in err
    assert API_KEY not in err and "pa55w0rd" not in err


def test_config_path_comes_from_flag_then_env_then_default() -> None:
    assert config.resolve_path("a.toml", {"DYNOMATIC_CONFIG": "b.toml"}) == Path("a.toml")
    assert config.resolve_path(None, {"DYNOMATIC_CONFIG": "b.toml"}) == Path("b.toml")
    assert config.resolve_path(None, {}) == Path("dynomatic.toml")


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        config.load(tmp_path / "nope.toml", ENV)


def test_settings_repr_hides_secrets(tmp_path: Path) -> None:
    settings = config.load(write(tmp_path, ISSUE_EXAMPLE), ENV)
    text = repr(settings) + str(settings) + settings.model_dump_json()
    assert API_KEY not in text
    assert "pa55w0rd" not in text


def test_every_key_is_documented_in_the_example() -> None:
    text = (Path(__file__).resolve().parents[2] / "config.example.toml").read_text()
    models = [
        config.HerokuSettings,
        config.DatabaseSettings,
        config.DaemonSettings,
        config.ProcessSettings,
        config.Window,
        catalog.options_model("delayed_job"),
    ]
    undocumented = [
        f"{model.__name__}.{field.alias or name}"
        for model in models
        for name, field in model.model_fields.items()
        if not field.exclude and f"{field.alias or name} =" not in text
    ]
    assert undocumented == []


def test_the_gems_heroku_token_is_used_when_heroku_api_key_is_unset(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)
    gem_env = {"HEROKU_TOKEN": API_KEY, "DATABASE_URL": DB_URL}
    assert config.load(path, gem_env).heroku.api_key.get_secret_value() == API_KEY
    (notice,) = config.notices(gem_env)
    assert "HEROKU_TOKEN" in notice and "HEROKU_API_KEY" in notice and API_KEY not in notice
    both = {**gem_env, "HEROKU_API_KEY": "hk-the-new-one-0000"}
    assert config.load(path, both).heroku.api_key.get_secret_value() == "hk-the-new-one-0000"
    assert config.notices(both) == [] and config.notices(ENV) == []


def test_a_missing_app_names_the_variable_to_set(tmp_path: Path) -> None:
    found = problems(tmp_path, MINIMAL.replace('app = "my-app"', ""))
    assert "HEROKU_APP_NAME" in found["heroku.app"], found
    assert "HEROKU_APP is set" not in found["heroku.app"]
    gem = problems(tmp_path, MINIMAL.replace('app = "my-app"', ""), {**ENV, "HEROKU_APP": "x"})
    assert "HEROKU_APP is set" in gem["heroku.app"]


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_an_empty_file_is_one_clear_problem(tmp_path: Path, text: str) -> None:
    found = problems(tmp_path, text)
    assert list(found.values()) == ["the file is empty; copy config.example.toml to start from"]


def test_unquoted_text_explains_the_quotes(tmp_path: Path) -> None:
    found = problems(tmp_path, MINIMAL.replace('app = "my-app"', "app = newcomer-app"))
    (message,) = found.values()
    assert 'text goes in quotes: app = "newcomer-app"' in message and "line 3" in message
    other = problems(tmp_path, MINIMAL.replace('app = "my-app"', 'app = ["my-app"'))
    assert "quotes" not in next(iter(other.values()))  # another TOML error gets no such hint


@pytest.mark.parametrize(
    ("interval", "api_url", "accepted"),
    [
        (5, "https://api.heroku.com", True),
        (4.9, "https://api.heroku.com", False),
        (0.5, "https://api.heroku.com", False),
        (0.5, "http://127.0.0.1:5000", True),  # the stand-in in tests and the demo
    ],
)
def test_interval_seconds_has_a_floor_off_loopback(
    tmp_path: Path, interval: float, api_url: str, accepted: bool
) -> None:
    text = MINIMAL.replace('app = "my-app"', f'app = "my-app"\napi_url = "{api_url}"')
    path = write(tmp_path, text + f"[daemon]\ninterval_seconds = {interval}\n")
    if accepted:
        assert config.load(path, ENV).daemon.interval_seconds == interval
        return
    found = problems(tmp_path, path.read_text())
    assert "floor of 5 s" in found["daemon.interval_seconds"], found
    assert "4,500" in found["daemon.interval_seconds"]
