"""config.example.toml is honest: what it calls a default is the code's default, every example
loads, and copied as it is the file is a small working config rather than a stack of rules."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from dynomatic_daemon import config
from dynomatic_daemon.adapters import catalog
from dynomatic_daemon.observe_config import NotifySettings

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.toml"
ENV = {
    "HEROKU_API_KEY": "hk-example-0000",
    "HEROKU_APP_NAME": "my-app",
    "DATABASE_URL": "postgres://app@db.example.com/app",
    "QUEUE_DATABASE_URL": "postgres://app@queue.example.com/jobs",
    "SLACK_WEBHOOK_URL": "https://hooks.slack.example/services/T0/B0/x",
}
KEY_LINE = re.compile(r"^(#\s*)?(\w+)\s*=")
MARKED = re.compile(
    r"^(?P<comment>#\s*)?(?P<key>\w+)\s*=\s*(?P<value>.+?)\s+#\s*(?P<kind>default|example)\b"
)
HEADER = re.compile(r"^(?P<comment>#\s*)?\[\[?(?P<name>[\w.]+)\]\]?\s*$")
SECTIONS: dict[str, type[BaseModel]] = {
    "heroku": config.HerokuSettings,
    "database": config.DatabaseSettings,
    "daemon": config.DaemonSettings,
    "process": config.ProcessSettings,
    "notify": NotifySettings,  # an array of tables: its annotation is a tuple
}


def lines() -> list[str]:
    return EXAMPLE.read_text(encoding="utf-8").splitlines()


def model_of(section: str) -> type[BaseModel]:
    if section.startswith("adapters."):
        return catalog.options_model(section.removeprefix("adapters."))
    if section in SECTIONS:
        return SECTIONS[section]
    annotation = config.Settings.model_fields[section].annotation  # a section added since
    assert isinstance(annotation, type) and issubclass(annotation, BaseModel), section
    return annotation


def marked_lines() -> list[tuple[int, str, str, str, str]]:
    """(line index, section, key, value, "default" or "example") for every key line."""
    found, section = [], ""
    for i, line in enumerate(lines()):
        if header := HEADER.match(line):
            section = header["name"]
        elif KEY_LINE.match(line):
            marked = MARKED.match(line)
            assert marked, f"line {i + 1} says neither '# default' nor '# example': {line}"
            found.append((i, section, marked["key"], marked["value"], marked["kind"]))
    return found


def fields_by_key(model: type[BaseModel]) -> dict[str, Any]:
    """Each field under the key a file uses: its alias, else the first validation alias."""
    found = {}
    for name, field in model.model_fields.items():
        choices = getattr(field.validation_alias, "choices", None)
        found[field.alias or (choices[0] if choices else name)] = field
    return found


def test_every_default_in_the_file_is_the_codes_default() -> None:
    checked = []
    for i, section, key, value, kind in marked_lines():
        if kind != "default":
            continue
        field = fields_by_key(model_of(section)).get(key)
        assert field is not None, f"line {i + 1}: {section}.{key} is not a key"
        written = tomllib.loads(f"v = {value}")["v"]
        written = tuple(written) if isinstance(written, list) else written  # TOML has no tuple
        assert written == field.default, f"line {i + 1}: {section}.{key} = {value}"
        assert lines()[i].startswith("#"), f"line {i + 1}: a default is shown, not set"
        checked.append(f"{section}.{key}")
    assert len(checked) >= 20, checked


def test_every_default_of_the_code_is_in_the_file() -> None:
    written = {(s, k) for _i, s, k, _v, kind in marked_lines() if kind == "default"}
    sections = [*SECTIONS, "adapters.delayed_job"]
    missing = [
        f"{section}.{key}"
        for section in sections
        for key, field in fields_by_key(model_of(section)).items()
        if not field.exclude
        and field.default not in (None, PydanticUndefined, ())  # "none" / required: in words
        and (section, key) not in written
    ]
    assert missing == []


@pytest.mark.parametrize(
    "index", [i for i, *_rest, kind in marked_lines() if kind == "example" and lines()[i][0] == "#"]
)
def test_each_commented_example_is_valid_on_its_own(tmp_path: Path, index: int) -> None:
    text = lines()
    header = max(i for i in range(index) if HEADER.match(text[i]))
    section = HEADER.match(text[header])["name"]  # type: ignore[index]
    required = {k for k, f in fields_by_key(model_of(section)).items() if f.is_required()}
    # a table whose keys are required ([[notify]]) needs its other required examples too
    partners = [
        i for i, s, k, _v, kind in marked_lines() if s == section and k in required and i > header
    ]
    for i in {header, index, *partners}:
        text[i] = re.sub(r"^#\s*", "", text[i])
    path = tmp_path / "dynomatic.toml"
    path.write_text("\n".join(text))
    config.load(path, ENV)  # raises, naming the key, if the example is not valid


def test_copied_as_it_is_the_file_is_a_small_working_config() -> None:
    settings = config.load(EXAMPLE, ENV)
    (process,) = settings.process
    assert process.type == "worker" and process.adapter == "auto"
    assert (process.jobs_per_dyno, process.max_dynos) == (25, 3)
    assert process.rules == () and process.latency_rules == () and process.schedules == ()
    assert settings.adapters == {} and settings.heroku.app == "my-app"
