"""Budgets: how many dynos the rest of the day or month can pay for, and spend bookkeeping.

Pure. A cap is what keeps a limit for the rest of its period if the count stayed there:
``(limit - spent) / hours_left`` dyno-hours per hour for ``max_dyno_hours_per_day`` (the UTC
day), and the same in dollars at the size's price for ``max_monthly_usd`` (the UTC month). An
app-wide limit first takes away what the other driven types run now.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from dynomatic_daemon.guard_config import BudgetLimit


@dataclass(frozen=True)
class Usage:
    """A scope's spend so far (today's dyno-hours, this month's dollars), and its cost per dyno
    per hour in both units for the type being capped and for the others (who run now)."""

    day_dyno_hours: float
    month_usd: float
    hourly_usd: float | None  # one dyno of this type; None: no known price
    others_dynos: int = 0
    others_usd_per_hour: float = 0.0


@dataclass(frozen=True)
class Cap:
    dynos: int
    reason: str


def hours_left_in_day(now: datetime) -> float:
    now = now.astimezone(UTC)
    midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC)
    return max((midnight - now).total_seconds() / 3600.0, 1 / 60)


def hours_left_in_month(now: datetime) -> float:
    now = now.astimezone(UTC)
    first = date(now.year + now.month // 12, now.month % 12 + 1, 1)
    end = datetime.combine(first, datetime.min.time(), UTC)
    return max((end - now).total_seconds() / 3600.0, 1 / 60)


def cap(limit: BudgetLimit, usage: Usage, now: datetime, scope: str) -> Cap | None:
    """The most dynos of this type the limit allows from now on, and why; None: no limit."""
    caps: list[Cap] = []
    if limit.max_dyno_hours_per_day is not None:
        left, hours = limit.max_dyno_hours_per_day - usage.day_dyno_hours, hours_left_in_day(now)
        dynos = _affordable(left / hours - usage.others_dynos, 1.0)
        caps.append(
            Cap(
                dynos,
                f"{scope} max_dyno_hours_per_day={limit.max_dyno_hours_per_day:g}: "
                f"{usage.day_dyno_hours:.1f} used, {hours:.1f} h of the day left",
            )
        )
    if limit.max_monthly_usd is not None and usage.hourly_usd is not None:
        left, hours = limit.max_monthly_usd - usage.month_usd, hours_left_in_month(now)
        dynos = _affordable(left / hours - usage.others_usd_per_hour, usage.hourly_usd)
        caps.append(
            Cap(
                dynos,
                f"{scope} max_monthly_usd={limit.max_monthly_usd:g}: "
                f"${usage.month_usd:.2f} spent, {hours:.0f} h of the month left",
            )
        )
    return min(caps, key=lambda c: c.dynos) if caps else None


def _affordable(per_hour: float, price: float) -> int:
    if price <= 0:
        return 1_000_000
    return max(0, math.floor(per_hour / price + 1e-9))


def cost_per_hour(
    quantities: Mapping[str, int], prices: Mapping[str, float | None]
) -> float | None:
    """US dollars an hour for these dynos; None when a running type has no known price."""
    total = 0.0
    for ptype, quantity in quantities.items():
        price = prices.get(ptype)
        if quantity and price is None:
            return None
        total += quantity * (price or 0.0)
    return total
