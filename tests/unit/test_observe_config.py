"""[history], [http] and [[notify]]: off by default, bounded, secrets from the environment only."""

from __future__ import annotations

from pathlib import Path

import pytest

from dynomatic_daemon import config, wiring
from dynomatic_daemon.errors import ConfigError

BASE = """
[heroku]
app = "my-app"
[[process]]
type = "worker"
adapter = "delayed_job"
rules = [{ at_least = 0, dynos = 1 }]
"""
DB_URL = "postgres://app:pa55w0rd-zz@db.example.com:5432/app"
ENV = {"HEROKU_API_KEY": "hk-secret-0123456789abcdef", "DATABASE_URL": DB_URL}
HOOK = "https://hooks.slack.com/services/T000/B000/XXXXsecretXXXX"


def load(tmp_path: Path, extra: str = "", **env: str) -> config.Settings:
    path = tmp_path / "dynomatic.toml"
    path.write_text(BASE + extra)
    return config.load(path, {**ENV, **env})


def problems(tmp_path: Path, extra: str, **env: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, extra, **env)
    return [str(p) for p in caught.value.problems]


def test_everything_is_off_by_default(tmp_path: Path) -> None:
    settings = load(tmp_path)
    assert settings.history.enabled is False
    assert settings.http.port is None
    assert settings.notify == ()
    # the history store defaults to the app's database, in a schema of its own
    assert settings.history.url is not None and settings.history.url.get_secret_value() == DB_URL
    assert settings.history.schema_name == "dynomatic"


def test_a_full_example_loads(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        """
[history]
enabled = true
url_env = "HISTORY_DATABASE_URL"
schema = "scaler_history"
retention_days = 30
[http]
port = 8080
password_env = "PAGE_PASSWORD"
[[notify]]
kind = "slack"
url_env = "SLACK_WEBHOOK_URL"
events = ["at_max", "stalled", "scaled"]
at_max_minutes = 15
[[notify]]
kind = "webhook"
url_env = "ALERT_WEBHOOK_URL"
""",
        HISTORY_DATABASE_URL="postgres://h:hist-pw-77@h.example.com/h",
        PAGE_PASSWORD="page-pw-123",
        SLACK_WEBHOOK_URL=HOOK,
        ALERT_WEBHOOK_URL="https://example.com/hook?token=abc123secret",
    )
    assert settings.history.schema_name == "scaler_history"
    assert settings.history.retention_days == 30
    assert settings.http.password is not None
    assert [n.kind for n in settings.notify] == ["slack", "webhook"]
    assert settings.notify[0].events == ("at_max", "stalled", "scaled")
    assert "stalled" in settings.notify[1].events and "scaled" not in settings.notify[1].events
    secrets = wiring.secrets_of(settings)
    for secret in (HOOK, "hist-pw-77", "page-pw-123", "abc123secret"):
        assert any(secret in s for s in secrets), secret
    shown = repr(settings) + settings.model_dump_json()
    for secret in (HOOK, "hist-pw-77", "page-pw-123"):
        assert secret not in shown


def test_environment_overrides_reach_the_new_sections(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        DYNOMATIC_HISTORY_ENABLED="true",
        DYNOMATIC_HISTORY_RETENTION_DAYS="3",
        DYNOMATIC_HISTORY_SCHEMA_NAME="hist",
        DYNOMATIC_HTTP_PORT="9000",
    )
    assert settings.history.enabled and settings.history.retention_days == 3
    assert settings.history.schema_name == "hist"
    assert settings.http.port == 9000


@pytest.mark.parametrize(
    ("extra", "env", "expected"),
    [
        ("[history]\nretention_days = 0\n", {}, "history.retention_days"),
        ("[history]\nqueue_size = 10000000\n", {}, "history.queue_size"),
        ('[history]\nschema = "Bad-Name"\n', {}, "history.schema"),
        ("[history]\nenabled = true\nurl_env = 'NOPE_URL'\n", {}, "NOPE_URL: not set"),
        ('[history]\nurl = "postgres://x"\n', {}, "history.url: secrets come from the environment"),
        ('[http]\npassword = "hunter22"\n', {}, "http.password: secrets come from the environment"),
        ("[http]\nport = 70000\n", {}, "http.port"),
        ('[[notify]]\nkind = "slack"\nurl_env = "MISSING_HOOK"\n', {}, "MISSING_HOOK: not set"),
        ('[[notify]]\nkind = "pager"\nurl_env = "H"\n', {"H": HOOK}, "notify[0].kind"),
        (
            '[[notify]]\nkind = "slack"\nurl_env = "H"\nevents = ["exploded"]\n',
            {"H": HOOK},
            "unknown event(s) ['exploded']",
        ),
        (
            '[[notify]]\nkind = "slack"\nurl_env = "H"\ntimeout_seconds = 600\n',
            {"H": HOOK},
            "notify[0].timeout_seconds",
        ),
        (
            '[[notify]]\nkind = "slack"\nurl_env = "H"\nurl = "https://x"\n',
            {"H": HOOK},
            "notify[0].url: secrets come from the environment",
        ),
    ],
)
def test_bad_input_is_refused_naming_the_key(
    tmp_path: Path, extra: str, env: dict[str, str], expected: str
) -> None:
    found = problems(tmp_path, extra, **env)
    assert any(expected in p for p in found), found
    assert not any(HOOK in p or "hunter22" in p for p in found)


def test_an_unknown_history_variable_is_refused(tmp_path: Path) -> None:
    found = problems(tmp_path, "", DYNOMATIC_HISTORY_ENABLE="true")
    assert any("DYNOMATIC_HISTORY_ENABLE" in p and "ENABLED" in p for p in found), found
