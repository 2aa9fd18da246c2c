"""The formation as the daemon knows it, and when the Platform API may be called at all.

- Reads: the formation is remembered and listed again every ``resync_seconds`` (stretched while
  the rate-limit budget is low), on the tick after a write, and after ``forget`` (the caller's
  role changed: while it did not lead, another copy may have written).
- Manual changes: a listing that differs from what the daemon last knew, for a type it drives, is
  reported as an external change; the daemon then carries on from the real formation.
- Backing off: after 401/402/403, after 429 and after a call that failed on 5xx or a timeout
  even with its retries, the API is left alone for a pause that doubles with each repeat
  (capped), and lasts at least as long as a ``Retry-After`` asked.
- Budget: the account's token bucket is shared with the user's other tools. Below a reserve of
  ``RateLimit-Remaining`` the daemon calls at most once a minute, below a tenth of that once
  every five minutes.
- Refusals: a 422 that states a dyno limit ("more than N Basic size dynos") clamps later requests
  to N for the types it names (by size, else the type that asked for more), until
  ``LIMIT_RETEST_SECONDS`` pass or the type changes size; any other refused request is not sent
  again unchanged for ``REFUSAL_COOLOFF_SECONDS``; a formation locked by a preboot deploy is tried
  again after ``PREBOOT_RETRY_SECONDS``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from dynomatic_daemon.clock import Clock
from dynomatic_daemon.errors import (
    HerokuAuthError,
    HerokuError,
    HerokuHeldBackError,
    HerokuInvalidRequestError,
    HerokuNotFoundError,
    HerokuRateLimitedError,
    HerokuUnavailableError,
)
from dynomatic_daemon.heroku import FormationResult, HerokuClient, MaySend
from dynomatic_daemon.models import Formation, FormationUpdate

RESERVE_TOKENS = 450  # 10 % of Heroku's 4,500-token bucket
LOW_RESERVE_TOKENS = 45
RESERVE_GAP_SECONDS = 60.0
LOW_RESERVE_GAP_SECONDS = 300.0
# kind of failure -> (first pause, longest pause), in seconds
PAUSES = {"auth": (60.0, 1800.0), "rate": (60.0, 900.0), "unavailable": (5.0, 300.0)}
MAX_RETRY_AFTER_SECONDS = 3600.0  # a Retry-After beyond this is taken as this
REFUSAL_COOLOFF_SECONDS = 300.0
PREBOOT_RETRY_SECONDS = 30.0
LIMIT_RETEST_SECONDS = 1800.0
_LIMIT = re.compile(r"more than (\d+)(?: (\S+) size)?")


@dataclass(frozen=True)
class ExternalChange:
    type: str
    expected: int
    actual: int


@dataclass(frozen=True)
class LearntLimit:
    """A dyno limit Heroku stated for a type: the type's size then, and when it said so."""

    quantity: int
    size: str | None
    learnt_at: float


@dataclass
class FormationKeeper:
    heroku: HerokuClient
    clock: Clock
    resync_seconds: float
    managed: frozenset[str] = frozenset()
    limits: dict[str, LearntLimit] = field(default_factory=dict)  # learnt from 422s, by type
    _known: Formation | None = None
    _listed_at: float = float("-inf")
    _stale: bool = True
    _last_call_at: float = float("-inf")
    _paused_until: float = float("-inf")
    _pause_reason: str = ""
    _strikes: dict[str, int] = field(default_factory=dict)
    _refused: dict[tuple[FormationUpdate, ...], float] = field(default_factory=dict)

    def formation(self, may_send: MaySend | None = None) -> tuple[Formation, list[ExternalChange]]:
        """The formation to decide on, listing it again when due, with any manual changes.

        While calls are paused the last known formation stands in, if there is one."""
        now = self.clock.monotonic()
        due = self._stale or now - self._listed_at >= self.resync_seconds * self._stretch()
        if self._known is not None and (not due or now < self._paused_until):
            return self._known, []
        self._check_allowed(now, budget=False)
        result = self._call(lambda: self.heroku.list_formation(may_send))
        changes = self._external_changes(result.formation)
        self._known, self._listed_at, self._stale = result.formation, now, False
        return result.formation, changes

    @property
    def calls_paused(self) -> bool:
        """True while the API is left alone (after 401/403, 429, or 5xx beyond the retries):
        optional calls, such as looking for a new release, wait too."""
        return self.clock.monotonic() < self._paused_until

    def forget(self) -> None:
        """Drop the remembered formation: the next ``formation()`` lists it, reporting nothing
        as a manual change (what changed meanwhile was most likely another copy's doing)."""
        self._known, self._stale = None, True

    def clamp(
        self, updates: Sequence[FormationUpdate], formation: Formation | None = None
    ) -> tuple[FormationUpdate, ...]:
        """Updates cut to the dyno limits Heroku has stated for their types (and sizes)."""
        return tuple(
            FormationUpdate(u.type, min(u.quantity, self._limit(u.type, formation, u.quantity)))
            for u in updates
        )

    def write(
        self, updates: Sequence[FormationUpdate], may_send: MaySend | None = None
    ) -> FormationResult:
        key = tuple(sorted(updates, key=lambda u: u.type))
        now = self.clock.monotonic()
        refused_at = self._refused.get(key)
        if refused_at is not None and now - refused_at < REFUSAL_COOLOFF_SECONDS:
            left = REFUSAL_COOLOFF_SECONDS - (now - refused_at)
            raise HerokuHeldBackError(
                f"Heroku refused this exact change; not resent for {left:.0f}s"
            )
        self._check_allowed(now, budget=True)
        try:
            result = self._call(lambda: self.heroku.batch_update(updates, may_send))
        except HerokuInvalidRequestError as exc:
            self._learn_refusal(key, exc, now)
            raise
        except HerokuNotFoundError:
            self._refused[key] = now
            raise
        finally:
            self._stale = True  # whatever happened, look at the real formation next tick
        if self._known is not None:
            self._known = self._known.with_updates(updates)
        return result

    def _call(self, fn: Callable[[], FormationResult]) -> FormationResult:
        self._last_call_at = self.clock.monotonic()
        try:
            result: FormationResult = fn()
        except (HerokuAuthError, HerokuRateLimitedError, HerokuUnavailableError) as exc:
            self._pause(exc)
            raise
        self._strikes.clear()
        return result

    def _check_allowed(self, now: float, *, budget: bool) -> None:
        if now < self._paused_until:
            left = self._paused_until - now
            raise HerokuHeldBackError(
                f"Heroku calls paused for {left:.0f}s after {self._pause_reason}"
            )
        gap = self._budget_gap()
        if gap and budget and now - self._last_call_at < gap:
            left = gap - (now - self._last_call_at)
            remaining = self.heroku.rate_limit_remaining
            raise HerokuHeldBackError(
                f"saving the API budget (RateLimit-Remaining {remaining}); next call in {left:.0f}s"
            )

    def _budget_gap(self) -> float:
        remaining = self.heroku.rate_limit_remaining
        if remaining is None or remaining >= RESERVE_TOKENS:
            return 0.0
        return LOW_RESERVE_GAP_SECONDS if remaining < LOW_RESERVE_TOKENS else RESERVE_GAP_SECONDS

    def _stretch(self) -> float:
        """Re-list less often while the budget is low."""
        gap = self._budget_gap()
        return 1.0 if not gap else max(1.0, gap / max(self.resync_seconds, 1.0))

    def _pause(self, exc: HerokuError) -> None:
        kind = (
            "auth"
            if isinstance(exc, HerokuAuthError)
            else "rate"
            if isinstance(exc, HerokuRateLimitedError)
            else "unavailable"
        )
        strikes = self._strikes.get(kind, 0) + 1
        self._strikes[kind] = strikes
        first, longest = PAUSES[kind]
        pause = min(longest, first * 2 ** (strikes - 1))
        pause = max(pause, min(exc.retry_after or 0.0, MAX_RETRY_AFTER_SECONDS))
        self._paused_until = self.clock.monotonic() + pause
        self._pause_reason = (
            f"{exc.status} {exc.error_id or ''}".strip() if exc.status else "no answer (timeout)"
        )

    def _limit(self, ptype: str, formation: Formation | None, wanted: int) -> int:
        limit = self.limits.get(ptype)
        if limit is None:
            return wanted
        if self.clock.monotonic() - limit.learnt_at >= LIMIT_RETEST_SECONDS:
            del self.limits[ptype]  # ask Heroku again: the plan or the limit may have changed
            return wanted
        size = self._size(ptype, formation)
        if limit.size is not None and size is not None and size.lower() != limit.size.lower():
            return wanted  # resized since: the stated limit was about the old size
        return limit.quantity

    def _size(self, ptype: str, formation: Formation | None) -> str | None:
        known = formation or self._known
        entry = known.entries.get(ptype) if known is not None else None
        return entry.size if entry is not None else None

    def _learn_refusal(
        self, key: tuple[FormationUpdate, ...], exc: HerokuInvalidRequestError, now: float
    ) -> None:
        text = str(exc)
        stated = _LIMIT.search(text)
        if stated:
            culprits = self._culprits(key, stated)
            for update in culprits:
                size = self._size(update.type, None)  # the limit holds while the size does
                self.limits[update.type] = LearntLimit(int(stated[1]), size, now)
            if culprits:
                return
        if "preboot" in text.lower():
            self._refused[key] = now - REFUSAL_COOLOFF_SECONDS + PREBOOT_RETRY_SECONDS
            return
        self._refused[key] = now

    def _culprits(
        self, key: tuple[FormationUpdate, ...], stated: re.Match[str]
    ) -> list[FormationUpdate]:
        """The updates a stated limit is about: over it, and of the size it names if any."""
        over = [u for u in key if u.quantity > int(stated[1])]
        size = stated[2]
        if size is None:
            return over  # "more than N dynos per process type" binds every type
        named = [u for u in over if (self._size(u.type, None) or "").lower() == size.lower()]
        return named or (over if len(over) == 1 else [])

    def _external_changes(self, listed: Formation) -> list[ExternalChange]:
        if self._known is None:
            return []
        changes = []
        for ftype in sorted(self.managed):
            expected, actual = self._known.quantity(ftype), listed.quantity(ftype)
            if expected is not None and actual is not None and expected != actual:
                changes.append(ExternalChange(ftype, expected, actual))
        return changes
