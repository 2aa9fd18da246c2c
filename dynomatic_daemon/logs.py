"""The one structlog configuration of the process, and the scrubber every output goes through.

Off a TTY the lines are logfmt (Heroku's convention: ``at=info event=scale_decision ...``), on a
TTY a readable console format, and JSON when asked. A last processor scrubs every secret the
process knows of from every value, so a secret cannot reach the log even through an error text;
``scrubbed_output`` puts the same scrubber in front of stdout and stderr, so whatever else the
process prints (command output, the ``once --json`` document, a traceback) is scrubbed too.
"""

from __future__ import annotations

import io
import logging
import sys
import threading
from collections.abc import Iterable, Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any, Protocol, TextIO

import structlog

LogFormat = str  # "auto" | "logfmt" | "console" | "json"
FIRST_KEYS = ["at", "event"]
MASK = "***"
_PLAIN = (int, float, bool, type(None))


class Logger(Protocol):
    """What the daemon needs of a logger: structlog's bound loggers, or a test's capture."""

    def info(self, event: str, **fields: Any) -> Any: ...

    def warning(self, event: str, **fields: Any) -> Any: ...

    def error(self, event: str, **fields: Any) -> Any: ...


class SecretScrubber:
    """Replaces any known secret inside any value with ``***``; never raises."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self._secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def __call__(
        self, _: Any, __: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        if not self._secrets:
            return event
        for key, value in event.items():
            event[key] = self.scrub_value(value)
        return event

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return text

    def scrub_value(self, value: Any) -> Any:
        """``value`` with every string in it scrubbed; anything else becomes a scrubbed string."""
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, _PLAIN):
            return value
        if isinstance(value, list | tuple):
            return type(value)(self.scrub_value(v) for v in value)
        if isinstance(value, dict):
            return {k: self.scrub_value(v) for k, v in value.items()}
        try:
            return self.scrub(str(value))
        except Exception:  # noqa: BLE001 - a broken __str__ must not take the scrubber down
            return f"<unprintable {type(value).__name__}>"


class ScrubbingStream(io.TextIOBase):
    """A text stream that scrubs each whole line before it reaches the stream underneath.

    Lines are held until they are complete, so a secret written in two pieces is still found.
    """

    def __init__(self, inner: TextIO, scrubber: SecretScrubber) -> None:
        self._inner = inner
        self._scrubber = scrubber
        self._pending = ""
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            self._pending += text
            if "\n" in self._pending:
                lines, _, self._pending = self._pending.rpartition("\n")
                self._inner.write(self._scrubber.scrub(lines + "\n"))
        return len(text)

    def flush(self) -> None:
        self._inner.flush()

    def drain(self) -> None:
        """Write out a last unfinished line."""
        with self._lock:
            text, self._pending = self._pending, ""
        if text:
            self._inner.write(self._scrubber.scrub(text))
        self._inner.flush()

    @property
    def inner(self) -> TextIO:
        """The stream underneath (for wrappers that need to find their own kind)."""
        return self._inner

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self._inner.encoding

    def isatty(self) -> bool:
        return self._inner.isatty()

    def fileno(self) -> int:
        return self._inner.fileno()

    def writable(self) -> bool:
        return True


@contextmanager
def scrubbed_output(scrubber: SecretScrubber) -> Iterator[None]:
    """Route ``sys.stdout`` and ``sys.stderr`` through ``scrubber`` for the duration."""
    saved = sys.stdout, sys.stderr
    out, err = ScrubbingStream(saved[0], scrubber), ScrubbingStream(saved[1], scrubber)
    sys.stdout, sys.stderr = out, err
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved
        out.drain()
        err.drain()


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
