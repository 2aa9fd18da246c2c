"""The django-tasks Task the django_tasks adapter tests enqueue; import after
``django_support.configure`` (declaring a Task checks it against the TASKS setting)."""

from __future__ import annotations

from django_tasks import task


@task()
def send_email(to: str) -> str:
    return f"sent to {to}"
