"""Several apps in one file: [[app]] blocks over [defaults], each validated as one app."""

from __future__ import annotations

from pathlib import Path

import pytest

from dynomatic_daemon import apps_config, cli
from dynomatic_daemon.errors import ConfigError

ENV = {
    "HEROKU_API_KEY": "hk-shared-0123456789",
    "AGENCY_KEY": "hk-agency-9876543210",
    "DATABASE_URL": "postgres://u:pw-one@db.example.com/one",
    "STAGING_DATABASE_URL": "postgres://u:pw-two@db.example.com/two",
    "HEROKU_APP_NAME": "the-scalers-own-app",  # set on the scaler's dyno: must rename nobody
}
TWO_APPS = """
[fleet]
concurrency = 4

[defaults.daemon]
interval_seconds = 20

[defaults.process]
adapter = "delayed_job"
max_dynos = 5

[[app]]
name = "shop-production"

[[app.process]]
type = "worker"
rules = [{ at_least = 0, dynos = 1 }]

[[app]]
name = "shop-staging"
api_key_env = "AGENCY_KEY"
url_env = "STAGING_DATABASE_URL"
daemon = { interval_seconds = 30 }

[[app.process]]
type = "worker"
max_dynos = 2
rules = [{ at_least = 0, dynos = 0 }]
"""
SINGLE = """
[heroku]
app = "my-app"
[[process]]
type = "worker"
adapter = "delayed_job"
rules = [{ at_least = 0, dynos = 1 }]
"""


def load(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> apps_config.Apps:
    path = tmp_path / "dynomatic.toml"
    path.write_text(text)
    return apps_config.load(path, ENV if env is None else env)


def keys(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text, env)
    return [p.key for p in caught.value.problems]


def test_a_single_app_file_is_one_app_read_as_before(tmp_path: Path) -> None:
    apps = load(tmp_path, SINGLE)
    assert not apps.multi
    (only,) = apps.apps
    assert only.heroku.app == "the-scalers-own-app"  # HEROKU_APP_NAME still names it


def test_each_app_lays_its_own_table_over_the_defaults(tmp_path: Path) -> None:
    apps = load(tmp_path, TWO_APPS)
    prod, staging = apps.apps
    assert apps.multi and apps.fleet.concurrency == 4
    assert (prod.heroku.app, staging.heroku.app) == ("shop-production", "shop-staging")
    assert prod.heroku.api_key.get_secret_value() == ENV["HEROKU_API_KEY"]
    assert staging.heroku.api_key.get_secret_value() == ENV["AGENCY_KEY"]
    assert prod.database.url.get_secret_value() == ENV["DATABASE_URL"]
    assert staging.database.url.get_secret_value() == ENV["STAGING_DATABASE_URL"]
    assert (prod.daemon.interval_seconds, staging.daemon.interval_seconds) == (20, 30)
    assert prod.process[0].max_dynos == 5 and staging.process[0].max_dynos == 2
    assert prod.process[0].adapter == staging.process[0].adapter == "delayed_job"


def test_a_bad_key_is_named_from_the_files_root(tmp_path: Path) -> None:
    text = TWO_APPS.replace("max_dynos = 2", "max_dynos = -1")
    assert keys(tmp_path, text) == ["app[1].process[0].max_dynos"]


def test_a_missing_key_variable_names_the_app_that_needs_it(tmp_path: Path) -> None:
    env = {k: v for k, v in ENV.items() if k != "AGENCY_KEY"}
    assert keys(tmp_path, TWO_APPS, env) == ["AGENCY_KEY (app[1])"]


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (('name = "shop-staging"', 'name = "shop-production"'), "app[1].name"),
        (('name = "shop-staging"', 'name = "Not An App"'), "app[1].name"),
        (("concurrency = 4", "concurrency = 0"), "fleet.concurrency"),
        (("[defaults.daemon]", "[defaults.deamon]"), "defaults.deamon"),
        (('url_env = "STAGING', 'url_evn = "STAGING'), "app[1].url_evn"),
        (("[fleet]", "[heroku]\napp = 'x'\n[fleet]"), "heroku"),
    ],
)
def test_each_mistake_is_refused_by_its_key(
    tmp_path: Path, change: tuple[str, str], key: str
) -> None:
    assert key in keys(tmp_path, TWO_APPS.replace(*change))


def test_secrets_never_appear_in_problems(tmp_path: Path) -> None:
    text = TWO_APPS.replace("max_dynos = 2", "max_dynos = 'x'")
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text, {**ENV, "DATABASE_URL": "postgres://u:pw-one@/"})
    said = str(caught.value)
    assert not any(secret in said for secret in ("pw-one", "pw-two", "hk-agency", "hk-shared"))


def test_history_reads_the_app_named_by_app(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "apps.toml"
    path.write_text(TWO_APPS)
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    assert cli.main(["history", "--config", str(path)]) == 2
    assert "this config has 2 [[app]] blocks (name one with --app NAME)" in capsys.readouterr().err
    assert cli.main(["history", "--config", str(path), "--app", "shop-nowhere"]) == 2
    said = capsys.readouterr().err
    assert "--app: no app 'shop-nowhere' in this config (shop-production, shop-staging)" in said
    assert (
        cli.main(["history", "--app", "shop-staging", "init", "--print-sql", "--config", str(path)])
        == 0
    )


@pytest.mark.parametrize("command", [["pause", "--for", "10m"], ["resume"], ["status"]])
def test_pause_resume_and_status_act_on_the_app_named_by_app(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: list[str],
) -> None:
    path = tmp_path / "apps.toml"
    path.write_text(TWO_APPS)
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    assert cli.main([*command, "--config", str(path)]) == 2
    assert "(name one with --app NAME)" in capsys.readouterr().err
    # the app is picked; with no state store the command says what to do instead (exit 1)
    assert cli.main([*command, "--config", str(path), "--app", "shop-staging"]) == 1
    assert "heroku ps:scale scaler=0" in capsys.readouterr().err
