from __future__ import annotations

import pytest

from dynomatic_daemon.prices import LIST_PRICES, hourly_usd


@pytest.mark.parametrize(
    ("size", "per_hour"),
    [
        ("Basic", 7 / 720),
        ("standard-1X", 25 / 720),
        ("Standard-2X", 50 / 720),
        ("Performance-M", 250 / 720),
        ("Performance-2XL", 1500 / 720),
        ("eco", 5 / 1000),
    ],
)
def test_list_prices_per_hour_whatever_the_spelling(size: str, per_hour: float) -> None:
    assert hourly_usd(size) == pytest.approx(per_hour)


def test_basic_costs_about_a_cent_an_hour_as_heroku_says() -> None:
    assert hourly_usd("basic") == pytest.approx(0.01, abs=0.0005)


def test_unknown_and_contract_sizes_have_no_price_unless_configured() -> None:
    assert hourly_usd("Private-M") is None
    assert hourly_usd("dyno-2c-4gb") is None
    assert hourly_usd(None) is None
    assert hourly_usd("Private-M", {"private-m": 0.9}) == 0.9
    assert hourly_usd("Standard-1X", {"STANDARD-1X": 0.05}) == 0.05


def test_every_listed_price_is_consistent() -> None:
    for price in LIST_PRICES.values():
        assert (price.monthly_usd is None) == (price.hourly_usd is None)
        assert price.size == price.size.lower()
