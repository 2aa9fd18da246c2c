"""One API budget per Heroku token, shared by every app the token scales.

Heroku gives each account token a bucket of 4,500 requests that refills at 4,500 an hour. Apps
that share a token share that bucket, so one scaler of many apps keeps a local copy of it:

- Plan (at start): a tenth is left to the user's other tools; of the rest, at most half goes to
  the periodic re-lists of the formations (``resync_seconds`` is stretched so that the token's
  apps together stay within it; the stretch is logged as ``api_budget_shared``), the other
  half to writes and the re-list after each write.
- Spend (each request): every attempt takes a token from the local bucket, which never holds
  more than the ``RateLimit-Remaining`` Heroku last reported (other tools spend too). While the
  bucket is over half full any app may spend; below half (``tight``) each app may spend only
  its own share (a bucket per app, refilled at 1/n of the rate), so a busy app cannot starve
  the others; the shares are logged as ``api_budget_tight`` once each time it turns tight. An
  empty bucket or share refuses the request (held, as a shutdown or a lost lock holds it).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dynomatic_daemon import config
from dynomatic_daemon.clock import Clock
from dynomatic_daemon.logs import Logger

HEROKU_BUCKET = 4500  # requests; refilled at this many an hour
RESERVE_SHARE = 0.1  # left for the user's other tools (the CLI, the dashboard, CI)
READ_SHARE = 0.5  # of the rest, for periodic re-lists of the formations
TIGHT_BELOW = 0.5  # of the usable bucket: each app then spends only its share


class TokenBudget:
    """The local copy of one token's bucket, shared by ``apps``; thread-safe."""

    def __init__(
        self, label: str, apps: Sequence[str], clock: Clock, log: Logger | None = None
    ) -> None:
        self.label, self.apps = label, tuple(apps)
        self._clock, self._log = clock, log
        self.usable = HEROKU_BUCKET * (1 - RESERVE_SHARE)
        self.rate = self.usable / 3600.0  # per second
        share = self.usable / len(self.apps)
        self._share_capacity = max(3.0, share)
        self._tokens = self.usable
        self._shares = dict.fromkeys(self.apps, self._share_capacity)
        self._at = clock.monotonic()
        self._tight = False
        self._lock = threading.Lock()
        self.spent: dict[str, int] = dict.fromkeys(self.apps, 0)
        self.refused: dict[str, int] = dict.fromkeys(self.apps, 0)

    @property
    def per_app_per_hour(self) -> float:
        return self.usable / len(self.apps)

    def spend(self, app: str) -> str | None:
        """Take one request for ``app``; why not, or None to go ahead."""
        with self._lock:
            self._refill()
            tight = self._tokens < self.usable * TIGHT_BELOW
            if tight and not self._tight:
                self._say_tight()
            self._tight = tight
            if self._tokens < 1 or (tight and self._shares[app] < 1):
                self.refused[app] += 1
                return (
                    f"saving the API budget this token shares with {len(self.apps)} app(s) "
                    f"(about {self.per_app_per_hour:.0f} requests an hour each)"
                )
            self._tokens -= 1
            self._shares[app] = max(-self._share_capacity, self._shares[app] - 1)
            self.spent[app] += 1
            return None

    def seen(self, remaining: int | None) -> None:
        """What Heroku said is left: the local bucket never believes in more."""
        if remaining is None:
            return
        with self._lock:
            self._refill()
            self._tokens = min(self._tokens, max(0.0, remaining - HEROKU_BUCKET * RESERVE_SHARE))

    def _refill(self) -> None:
        now = self._clock.monotonic()
        elapsed, self._at = max(0.0, now - self._at), now
        self._tokens = min(self.usable, self._tokens + elapsed * self.rate)
        per_app = elapsed * self.rate / len(self.apps)
        for app, left in self._shares.items():
            self._shares[app] = min(self._share_capacity, left + per_app)

    def _say_tight(self) -> None:
        if self._log is not None:
            self._log.warning(
                "api_budget_tight",
                token=self.label,
                apps=len(self.apps),
                left=int(self._tokens),
                requests_per_hour_per_app=round(self.per_app_per_hour, 1),
                reason="under half the token's budget is left: each app spends only its share",
            )


@dataclass(frozen=True)
class AppBudget:
    """One app's handle on its token's budget, as the Heroku client asks it."""

    token: TokenBudget
    app: str

    def spend(self) -> str | None:
        return self.token.spend(self.app)

    def seen(self, remaining: int | None) -> None:
        self.token.seen(remaining)


class Budgets:
    """Every token's budget, by the token (never shown: labelled ``token 1``, ``token 2``...)."""

    def __init__(self, tokens: dict[str, TokenBudget]) -> None:
        self._by_key = tokens

    @classmethod
    def for_apps(
        cls, apps: Sequence[config.Settings], clock: Clock, log: Logger | None = None
    ) -> Budgets:
        groups: dict[str, list[str]] = {}
        for one in apps:
            groups.setdefault(one.heroku.api_key.get_secret_value(), []).append(one.heroku.app)
        return cls(
            {
                key: TokenBudget(f"token {i}", names, clock, log)
                for i, (key, names) in enumerate(groups.items(), start=1)
            }
        )

    @property
    def tokens(self) -> list[TokenBudget]:
        return list(self._by_key.values())

    def for_app(self, settings: config.Settings) -> AppBudget:
        return AppBudget(
            self._by_key[settings.heroku.api_key.get_secret_value()], settings.heroku.app
        )

    def resync_floor(self, settings: config.Settings) -> float:
        """The shortest re-list period that keeps the token's apps within their read share."""
        token = self._by_key[settings.heroku.api_key.get_secret_value()]
        reads_per_hour = token.usable * READ_SHARE
        return len(token.apps) * 3600.0 / reads_per_hour

    def stretched(self, apps: Sequence[config.Settings]) -> list[config.Settings]:
        """Each app with its re-list period stretched to its token's read share, if needed."""
        out = []
        for one in apps:
            floor = self.resync_floor(one)
            if one.heroku.resync_seconds < floor:
                heroku = one.heroku.model_copy(update={"resync_seconds": round(floor, 1)})
                out.append(one.model_copy(update={"heroku": heroku}))
            else:
                out.append(one)
        return out

    def plan_lines(self, apps: Sequence[config.Settings]) -> list[dict[str, Any]]:
        """One line per token whose apps had their re-lists stretched: the budget is tight."""
        lines = []
        for token in self.tokens:
            mine = [a for a in apps if a.heroku.app in token.apps]
            floor = self.resync_floor(mine[0])
            if any(a.heroku.resync_seconds < floor for a in mine):
                lines.append(
                    {
                        "token": token.label,
                        "apps": len(token.apps),
                        "requests_per_hour_per_app": round(token.per_app_per_hour, 1),
                        "resync_seconds": round(floor, 1),
                    }
                )
        return lines
