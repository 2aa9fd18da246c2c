"""A minimal Django project for the django_tasks and django_q2 adapter tests.

``configure(db_url)`` sets Django up once per test process (settings can be configured only
once) with django-tasks-db's database backend and django-q2's ORM broker on the test
database; ``migrate(app)`` creates that app's tables with its own migrations. The task the
tests enqueue lives in ``django_tasks_app``, imported only once settings are configured
(declaring a django-tasks Task validates it against the TASKS setting).
"""

from __future__ import annotations

from urllib.parse import urlsplit

import django
from django.conf import settings
from django.core.management import call_command
from django.db import connections

QUEUES = ["default", "emails"]
_configured_for: list[str] = []


def configure(db_url: str) -> None:
    if _configured_for:
        assert _configured_for == [db_url], "one test database per run"
        return
    parts = urlsplit(db_url)
    settings.configure(
        SECRET_KEY="dynomatic-tests-only",
        USE_TZ=True,
        TIME_ZONE="UTC",
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
        INSTALLED_APPS=["django_tasks", "django_tasks_db", "django_q"],
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": parts.path.lstrip("/"),
                "USER": parts.username or "postgres",
                "PASSWORD": parts.password or "",
                "HOST": parts.hostname or "127.0.0.1",
                "PORT": parts.port or 5432,
            }
        },
        TASKS={"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": QUEUES}},
        # the ORM broker on the default database; "retry" is the claim's lifetime
        Q_CLUSTER={"name": "default", "orm": "default", "retry": 120, "timeout": 60, "poll": 0.01},
        LOGGING_CONFIG=None,
    )
    django.setup()
    _configured_for.append(db_url)


def migrate(app_label: str) -> None:
    call_command("migrate", app_label, verbosity=0)


def close() -> None:
    """Drop Django's connections: the test database is cleaned by terminating backends."""
    connections.close_all()
