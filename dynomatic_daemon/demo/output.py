"""Where the demo's words go. The daemon logs through structlog; ``DecisionTap`` sits in that
pipeline and keeps the recent decisions for the live view, while the log lines themselves go to
an in-memory sink on a TTY (so only the view draws on the screen) or to stdout elsewhere.
"""

from __future__ import annotations

import io
import threading
from collections import deque
from collections.abc import MutableMapping
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TextIO

import psycopg
import structlog
from psycopg import conninfo

from dynomatic_daemon import logs

TTY_FRAME_SECONDS = 0.5
STATUS_LINE_SECONDS = 2.0
MAX_CHANGES = 500  # scale events kept for the view's final list; a demo run makes far fewer


@dataclass(frozen=True)
class Decision:
    clock: str
    action: str
    current: int | None
    desired: int | None
    ready: int | None
    oldest_age: float | None
    running: int | None
    reason: str


@dataclass
class DecisionTap:
    """A structlog processor keeping the latest ``scale_decision``, the recent ones that scaled,
    and recent warning/error lines."""

    latest: Decision | None = None
    changes: deque[Decision] = field(default_factory=lambda: deque(maxlen=MAX_CHANGES))
    problems: deque[str] = field(default_factory=lambda: deque(maxlen=3))
    scaled: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(
        self, _logger: Any, _method: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        with self.lock:
            if event.get("event") == "scale_decision":
                self._keep(event)
            elif event.get("at", event.get("level")) in ("warning", "error"):
                self.problems.append(f"{event.get('event')}: {event.get('reason', '')}")
        return event

    def _keep(self, event: MutableMapping[str, Any]) -> None:
        decision = Decision(
            datetime.now().strftime("%H:%M:%S"),  # noqa: DTZ005 - shown to a person, local time
            str(event.get("action")),
            event.get("current"),
            event.get("desired"),
            event.get("ready"),
            event.get("oldest_age"),
            event.get("running"),
            str(event.get("reason", "")),
        )
        self.latest = decision
        if decision.action == "scaled":
            self.changes.append(decision)
            self.scaled += 1

    def snapshot(self) -> tuple[Decision | None, list[Decision], list[str], int]:
        with self.lock:
            return self.latest, list(self.changes), list(self.problems), self.scaled


class LineSink(io.StringIO):
    """Where the daemon's log lines go under the live view: only the last few are kept."""

    def __init__(self, keep: int = 200) -> None:
        super().__init__()
        self.lines: deque[str] = deque(maxlen=keep)

    def write(self, text: str) -> int:
        self.lines.extend(line for line in text.splitlines() if line)
        return len(text)


class Output:
    """The live view on a terminal unless a log format was asked for; log lines otherwise."""

    def __init__(self, out: TextIO, database_url: str, log_format: str | None = None) -> None:
        self.out = out
        self.tty = out.isatty() and log_format in (None, "auto")
        self.tap = DecisionTap()
        self.sink = LineSink() if self.tty else None
        self.refresh_seconds = TTY_FRAME_SECONDS if self.tty else STATUS_LINE_SECONDS
        self.secrets = _secrets(database_url)
        fmt = "logfmt" if log_format in (None, "auto") else str(log_format)
        logs.configure(fmt, stream=self.sink or out, secrets=self.secrets)
        processors = list(structlog.get_config()["processors"])
        processors.insert(len(processors) - 1, self.tap)  # sees each event before rendering
        structlog.configure(processors=processors)
        self.log: Any = structlog.get_logger("dynomatic")

    def note(self, event: str, text: str, **fields: Any) -> None:
        """A setup step: plain text before the live view on a TTY, a log line elsewhere."""
        if self.tty:
            self.out.write(text + "\n")
            self.out.flush()
        else:
            self.log.info(event, **fields)


def _secrets(url: str) -> list[str]:
    """A DATABASE_URL of the caller's, and the password in it, never reach the output."""
    found = [url]
    with suppress(psycopg.ProgrammingError):
        if password := conninfo.conninfo_to_dict(url).get("password"):
            found.append(str(password))
    return found
