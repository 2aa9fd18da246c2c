"""The option model every adapter's ``[adapters.<name>]`` table is validated with."""

from __future__ import annotations

import pydantic
import pytest

from dynomatic_daemon.adapters.delayed_job import Options


def test_table_and_schema_names_are_postgres_identifiers_of_1_to_63_characters() -> None:
    assert Options(table="j").table == "j"
    assert Options(table="x" * 63).table == "x" * 63
    for bad in ("", "x" * 64):
        with pytest.raises(pydantic.ValidationError):
            Options(table=bad)


def test_an_unknown_key_is_refused_rather_than_ignored() -> None:
    with pytest.raises(pydantic.ValidationError, match="tabel"):
        Options.model_validate({"tabel": "jobs"})


def test_options_cannot_change_once_validated() -> None:
    options = Options()
    with pytest.raises(pydantic.ValidationError):
        options.table = "other"  # type: ignore[misc]


def test_the_schema_can_be_given_by_its_toml_key_or_its_field_name() -> None:
    assert Options.model_validate({"schema": "jobs"}).schema_name == "jobs"
    assert Options.model_validate({"schema_name": "jobs"}).schema_name == "jobs"


def test_url_env_must_be_an_environment_variable_name() -> None:
    assert Options(url_env="QUEUE_DATABASE_URL").url_env == "QUEUE_DATABASE_URL"
    for bad in ("1ABC", "A-B", "postgres://x"):
        with pytest.raises(pydantic.ValidationError):
            Options(url_env=bad)
