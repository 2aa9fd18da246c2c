"""What a dyno costs: Heroku's public list prices per dyno size, kept as data with date and source.

Heroku bills dynos by wall-clock time, prorated to the second, and the monthly figure is the most
one dyno can cost in a month of running day and night. We convert with 720 hours a month (30 days),
the basis of Heroku's own per-hour figures ("a Basic dyno costs roughly $0.01 per hour").

Eco dynos are a flat $5 plan for a pool of 1,000 dyno-hours shared by every Eco dyno of the
account; an hour is priced here as its share of that pool. Private and Shield dynos (Private
Spaces) are priced by contract and have no public price: give yours in the config, as for any
size whose price differs from the list (discounts, Enterprise credits, new sizes).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

AS_OF = "2024-10-11"
SOURCES = (
    "https://devcenter.heroku.com/articles/usage-and-billing",
    "https://www.heroku.com/pricing",
)
HOURS_PER_MONTH = 720.0
ECO_POOL_HOURS = 1000.0


@dataclass(frozen=True)
class DynoPrice:
    size: str
    monthly_usd: float | None  # None: no public price
    hourly_usd: float | None


def _listed(size: str, monthly: float) -> DynoPrice:
    return DynoPrice(size, monthly, monthly / HOURS_PER_MONTH)


LIST_PRICES: Mapping[str, DynoPrice] = {
    p.size: p
    for p in (
        DynoPrice("eco", 5.0, 5.0 / ECO_POOL_HOURS),
        _listed("basic", 7.0),
        _listed("standard-1x", 25.0),
        _listed("standard-2x", 50.0),
        _listed("performance-m", 250.0),
        _listed("performance-l", 500.0),
        _listed("performance-l-ram", 500.0),
        _listed("performance-xl", 750.0),
        _listed("performance-2xl", 1500.0),
        *(
            DynoPrice(f"{tier}-{size}", None, None)
            for tier in ("private", "shield")
            for size in ("s", "m", "l", "l-ram", "xl", "2xl")
        ),
    )
}


def size_key(size: str) -> str:
    """Heroku spells sizes ``Standard-1X``, ``standard-1x`` or ``standard-1X``; compare one way."""
    return size.strip().lower()


def hourly_usd(size: str | None, overrides: Mapping[str, float] | None = None) -> float | None:
    """The price of one dyno-hour of ``size`` in US dollars, or None when it is not known."""
    if size is None:
        return None
    key = size_key(size)
    custom = {size_key(k): v for k, v in (overrides or {}).items()}
    if key in custom:
        return custom[key]
    listed = LIST_PRICES.get(key)
    return listed.hourly_usd if listed else None
