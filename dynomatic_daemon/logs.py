"""The one structlog configuration of the process.

Off a TTY the lines are logfmt (Heroku's convention: ``at=info event=scale_decision ...``), on a
TTY a readable console format, and JSON when asked. A last processor scrubs every secret the
process knows of from every value, so a secret cannot reach the log even through an error text.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO

import structlog

LogFormat = str  # "auto" | "logfmt" | "console" | "json"
FIRST_KEYS = ["at", "event"]


class SecretScrubber:
    """Replaces any known secret inside any logged value with ``***``."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self._secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def __call__(
        self, _: Any, __: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        if not self._secrets:
            return event
        for key, value in event.items():
            event[key] = self._scrub(value)
        return event

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _scrub(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, list | tuple):
            return type(value)(self._scrub(v) for v in value)
        if isinstance(value, dict):
            return {k: self._scrub(v) for k, v in value.items()}
        return value


def _rename_level(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    event["at"] = event.pop("level", "info")
    return event


def configure(
    fmt: LogFormat = "auto", stream: TextIO | None = None, secrets: Iterable[str] = ()
) -> None:
    out = stream or sys.stdout
    if fmt == "auto":
        fmt = "console" if out.isatty() else "logfmt"
    renderer: Any
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer(sort_keys=False)
    elif fmt == "console":
        renderer = structlog.dev.ConsoleRenderer(colors=False)
    else:
        renderer = structlog.processors.LogfmtRenderer(
            key_order=FIRST_KEYS, drop_missing=True, bool_as_flag=False
        )
    processors: list[Any] = [
        structlog.processors.add_log_level,
        structlog.processors.format_exc_info,
        SecretScrubber(secrets),
    ]
    if fmt != "console":
        processors.insert(1, _rename_level)
    if fmt == "json":
        processors.insert(0, structlog.processors.TimeStamper(fmt="iso", utc=True))
    structlog.configure(
        processors=[*processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
