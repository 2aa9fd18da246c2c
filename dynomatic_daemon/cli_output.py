"""Standard output whose reader may go away: ``dynomatic check | head -1``.

Python ignores SIGPIPE, so a write to a closed pipe raises BrokenPipeError, and even the
interpreter's last flush at exit prints a traceback-like complaint. ``ClosableOutput`` catches
the first such error, points the file descriptor at /dev/null so that nothing written later (or
flushed at exit) fails again, and tells whoever asked: ``dynomatic run`` then stops its loop.
(Restoring SIGPIPE's default instead would also kill the process on a closed *socket*, such as
a connection Heroku's API drops, which must stay an ordinary, handled error.)
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any, TextIO


class ClosableOutput:
    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self._listeners: list[Callable[[], None]] = []
        self.closed = False

    @staticmethod
    def watch(stream: Any, listener: Callable[[], None]) -> bool:
        """Call ``listener`` when ``stream`` (if it is a ClosableOutput) loses its reader;
        False, and no call, if it has lost it already. Wrappers (the scrubber) are looked
        through by their ``inner`` stream."""
        while not isinstance(stream, ClosableOutput) and hasattr(stream, "inner"):
            stream = stream.inner
        if not isinstance(stream, ClosableOutput):
            return True
        with stream._lock:
            if stream.closed:
                return False
            stream._listeners.append(listener)
            return True

    def write(self, text: str) -> int:
        self._guarded(lambda: self._stream.write(text))
        return len(text)

    def flush(self) -> None:
        self._guarded(self._stream.flush)

    def isatty(self) -> bool:
        return self._stream.isatty()

    def fileno(self) -> int:
        return self._stream.fileno()

    def __getattr__(self, name: str) -> Any:  # encoding, errors, ... as the real stream has them
        return getattr(self._stream, name)

    def _guarded(self, action: Callable[[], object]) -> None:
        if self.closed:
            return
        try:
            action()
        except BrokenPipeError:
            self._close()

    def _close(self) -> None:
        with self._lock:
            if self.closed:
                return
            self.closed = True
            listeners = list(self._listeners)
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)
        except (OSError, ValueError):
            pass  # not a real file: nothing will be flushed to it at exit
        for listener in listeners:
            listener()
