"""config.apps.example.toml loads as written, and what it calls a default is the code's."""

from __future__ import annotations

import re
from pathlib import Path

from dynomatic_daemon import apps_config

EXAMPLE = Path(__file__).resolve().parents[2] / "config.apps.example.toml"
ENV = {
    "HEROKU_API_KEY": "hk-example-0000",
    "AGENCY_API_KEY": "hk-agency-0000",
    "DATABASE_URL": "postgres://app@db.example.com/app",
    "STAGING_DATABASE_URL": "postgres://app@staging.example.com/app",
}
KEY_LINE = re.compile(r"^(#\s*)?(\w+)\s*=")
MARKED = re.compile(r"^(#\s*)?(?P<key>\w+)\s*=\s*(?P<value>.+?)\s+#\s*(?P<kind>default|example)\b")


def test_copied_as_it_is_it_scales_two_apps() -> None:
    apps = apps_config.load(EXAMPLE, ENV)
    prod, staging = apps.apps
    assert (prod.heroku.app, staging.heroku.app) == ("shop-production", "shop-staging")
    assert staging.heroku.api_key.get_secret_value() == ENV["AGENCY_API_KEY"]
    assert (prod.process[0].max_dynos, staging.process[0].max_dynos) == (5, 2)
    assert staging.daemon.interval_seconds == 30


def test_every_key_line_is_marked_and_the_defaults_are_the_codes() -> None:
    defaults = {
        "concurrency": str(apps_config.FleetSettings().concurrency),
        "api_key_env": f'"{apps_config.DEFAULT_API_KEY_ENV}"',
        "url_env": '"DATABASE_URL"',
        "interval_seconds": "10.0",
    }
    seen = []
    for i, line in enumerate(EXAMPLE.read_text().splitlines()):
        if not KEY_LINE.match(line):
            continue
        marked = MARKED.match(line)
        assert marked, f"line {i + 1} says neither '# default' nor '# example': {line}"
        if marked["kind"] == "default":
            assert line.startswith("#"), f"line {i + 1}: a default is shown, not set"
            assert marked["value"] == defaults[marked["key"]], f"line {i + 1}"
            seen.append(marked["key"])
    assert sorted(seen) == sorted(defaults)
