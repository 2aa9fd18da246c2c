"""Release holds: the app's newest release, asked of Heroku at most every
``releases_poll_seconds`` and never while the API is paused or its budget is low.

The hold is counted from the release's own ``created_at``, so a restarted daemon finds it again
on its first poll: release holds need no state store.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dynomatic_daemon.clock import Clock
from dynomatic_daemon.config import ProcessSettings, Settings
from dynomatic_daemon.errors import HerokuError
from dynomatic_daemon.formation_keeper import RESERVE_TOKENS
from dynomatic_daemon.heroku import HerokuClient, MaySend, Release
from dynomatic_daemon.logs import Logger

MAX_BACKOFF_DOUBLINGS = 4  # a failing endpoint is asked at most every 16 polls' time


@dataclass
class ReleaseWatcher:
    settings: Settings
    heroku: HerokuClient
    clock: Clock
    log: Logger
    event: Callable[..., None]
    newest: Release | None = None
    _polled_at: float = float("-inf")
    _failures: int = 0

    @property
    def wanted(self) -> bool:
        poll = self.settings.heroku.releases_poll_seconds
        return bool(poll) and any(p.release_hold_seconds for p in self.settings.process)

    def poll(self, may_send: MaySend) -> None:
        if not self.wanted:
            return
        now = self.clock.monotonic()
        wait = self.settings.heroku.releases_poll_seconds * 2 ** min(
            self._failures, MAX_BACKOFF_DOUBLINGS
        )
        remaining = self.heroku.rate_limit_remaining
        if now - self._polled_at < wait or (remaining or RESERVE_TOKENS) < RESERVE_TOKENS:
            return  # within the API budget: a release hold is worth less than a formation write
        self._polled_at = now
        try:
            release = self.heroku.latest_release(may_send)
        except HerokuError as exc:
            self._failures += 1
            self.log.warning("release_poll_failed", error=str(exc), retry_in_seconds=wait * 2)
            return
        self._failures = 0
        if release is not None and (self.newest is None or release.version > self.newest.version):
            self.newest = release
            self._seen(release)

    def _seen(self, release: Release) -> None:
        age = (self.clock.now() - release.created_at).total_seconds()
        longest = max(p.release_hold_seconds for p in self.settings.process)
        if age >= longest:
            return  # an old release (found at start): nothing to hold
        self.log.info(
            "release_hold",
            version=release.version,
            description=release.description[:120],
            age_seconds=round(age, 1),
            hold_seconds=longest,
            reason="a new release: scale-downs wait, scale-ups still go out",
        )
        self.event(
            self.settings.heroku.app,
            "release_hold",
            reason=f"release v{release.version}: scale-downs held for {longest:g}s",
            version=release.version,
        )

    def hold(self, proc: ProcessSettings) -> str | None:
        """Why this type's scale-downs wait now, or None."""
        release = self.newest
        if release is None or not proc.release_hold_seconds:
            return None
        age = (self.clock.now() - release.created_at).total_seconds()
        left = proc.release_hold_seconds - age
        if left <= 0:
            return None
        return (
            f"release v{release.version} is {age:.0f}s old; "
            f"release_hold_seconds={proc.release_hold_seconds:g} ({left:.0f}s left)"
        )
