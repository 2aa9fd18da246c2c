"""What autoscaling has spent: each tick adds what ran since the one before (each driven type's
dynos times the time between, and that times the size's price), per type and UTC day.

The additions wait in ``pending`` until handed to the state store; once it has stored them its
totals replace what is held here. Without a store the totals are this process's own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from dynomatic_daemon.config import ProcessSettings
from dynomatic_daemon.models import Formation
from dynomatic_daemon.policy import current_dynos
from dynomatic_daemon.state.store import SpendRow, Spent

NOTHING_SPENT = Spent(0.0, 0.0)


@dataclass
class SpendMeter:
    max_gap_seconds: float  # a longer gap between ticks is a stop: what ran is not known
    spent: dict[str, Spent] = field(default_factory=dict)
    _pending: dict[tuple[str, date], tuple[float, float]] = field(default_factory=dict)
    _period: tuple[date, int] | None = None
    _last: datetime | None = None

    def of(self, process_type: str) -> Spent:
        return self.spent.get(process_type, NOTHING_SPENT)

    def accrue(
        self,
        procs: Sequence[ProcessSettings],
        formation: Formation,
        now: datetime,
        hourly_usd: Callable[[ProcessSettings], float | None],
    ) -> None:
        last, self._last = self._last, now
        gap = 0.0 if last is None else (now - last).total_seconds()
        if gap <= 0 or gap > self.max_gap_seconds:
            return
        self.roll(now)
        for proc in procs:
            dynos = current_dynos(proc, formation)
            if not dynos:
                continue
            seconds = dynos * gap
            usd = seconds / 3600.0 * (hourly_usd(proc) or 0.0)
            key = (proc.type, now.date())
            old_seconds, old_usd = self._pending.get(key, (0.0, 0.0))
            self._pending[key] = (old_seconds + seconds, old_usd + usd)
            spent = self.of(proc.type)
            self.spent[proc.type] = Spent(
                spent.day_dyno_hours + seconds / 3600.0, spent.month_usd + usd
            )

    def take_pending(self) -> list[SpendRow]:
        """What accrued since the last call, for the state store (which then owns it)."""
        rows = [SpendRow(t, d, s, usd) for (t, d), (s, usd) in self._pending.items()]
        self._pending.clear()
        return rows

    def roll(self, now: datetime) -> None:
        """A new UTC day zeroes the day's hours, a new month the dollars too."""
        period = (now.date(), now.month)
        old, self._period = self._period, period
        if old is None or old == period:
            return
        new_month = old[1] != now.month
        self.spent = {
            t: Spent(0.0, 0.0 if new_month else s.month_usd) for t, s in self.spent.items()
        }
