"""The names of the indexes ``check`` recommends: 40 characters of the table, then
``_dynomatic_<kind>``, stay within PostgreSQL's 63, which would otherwise cut a long name and
could make two of them collide."""

from __future__ import annotations

import pytest

from dynomatic_daemon.adapters import django_q2, django_tasks, jobrunr, laravel, symfony_messenger

LONG = "t" * 63
# (statements, the table they index, the kinds they name, in order)
CASES = {
    "django_q2": (django_q2.recommended_indexes(django_q2.Options(table=LONG)), LONG, ["idx"]),
    "django_tasks": (
        django_tasks.recommended_indexes(django_tasks.Options(table=LONG)),
        LONG,
        ["idx"],
    ),
    "jobrunr": (
        jobrunr.recommended_indexes(jobrunr.Options(table_prefix="t" * 50)),
        "t" * 50 + "jobrunr_jobs",
        ["idx"],
    ),
    "laravel": (laravel.recommended_indexes(laravel.Options(table=LONG)), LONG, ["idx"]),
    "symfony_messenger": (
        symfony_messenger.recommended_indexes(symfony_messenger.Options(table=LONG)),
        LONG,
        ["ready", "delivered"],
    ),
}


@pytest.mark.parametrize(("statements", "table", "kinds"), CASES.values(), ids=CASES.keys())
def test_a_long_table_name_gives_index_names_postgresql_keeps_whole(
    statements: tuple[str, ...], table: str, kinds: list[str]
) -> None:
    assert len(statements) == len(kinds)
    for statement, kind in zip(statements, kinds, strict=True):
        assert f'"{table[:40]}_dynomatic_{kind}" ON "{table}"' in statement
