import datetime as dt

import pytest
from dagster import MultiPartitionKey

from factor_core.schemas import InvalidSymbolError, validate_symbol
from partitions import (
    DAILY,
    DAY_SYMBOL,
    SYMBOLS_PARTITION_NAME,
    day_symbol_key,
    partition_dimensions,
    register_symbols,
    registered_symbols,
)

BAD_SYMBOLS = ["../x", "BTC;DROP", "", "btcusdt", "B", "A" * 31, "BTC USDT", "BTC/USDT", "ÄBC", None, 42]


def test_day_symbol_key_prints_date_then_symbol():
    key = day_symbol_key(dt.date(2024, 1, 2), "BTCUSDT")
    assert str(key) == "2024-01-02|BTCUSDT"
    assert key.keys_by_dimension == {"date": "2024-01-02", "symbol": "BTCUSDT"}


def test_dimensions_are_named_date_and_symbol():
    assert sorted(d.name for d in DAY_SYMBOL.partitions_defs) == ["date", "symbol"]
    assert DAILY.timezone == "UTC"


@pytest.mark.parametrize("symbol", BAD_SYMBOLS)
def test_bad_symbols_are_refused_with_a_clear_error(symbol):
    with pytest.raises(InvalidSymbolError, match="invalid symbol"):
        validate_symbol(symbol)


@pytest.mark.parametrize("symbol", ["BTCUSDT", "1000PEPEUSDT", "AB", "A" * 30])
def test_good_symbols_pass(symbol):
    assert validate_symbol(symbol) == symbol


def test_partition_dimensions_validate_the_symbol_before_any_path_is_built():
    assert partition_dimensions(DAY_SYMBOL, "2024-01-02|ETHUSDT") == {"date": "2024-01-02", "symbol": "ETHUSDT"}
    assert partition_dimensions(DAILY, "2024-01-02") == {"date": "2024-01-02"}
    assert partition_dimensions(None, "") == {}
    with pytest.raises(InvalidSymbolError):
        partition_dimensions(DAY_SYMBOL, MultiPartitionKey({"date": "2024-01-02", "symbol": "../etc"}))
    with pytest.raises(ValueError, match="not a YYYY-MM-DD day"):
        partition_dimensions(DAILY, "2024-13-02")


def test_register_symbols_adds_new_ones_once(instance):
    assert register_symbols(instance, ["ETHUSDT", "BTCUSDT"]) == ["BTCUSDT", "ETHUSDT"]
    assert register_symbols(instance, ["BTCUSDT", "SOLUSDT"]) == ["SOLUSDT"]
    assert registered_symbols(instance) == ["BTCUSDT", "ETHUSDT", "SOLUSDT"]


def test_one_bad_symbol_registers_nothing(instance):
    with pytest.raises(InvalidSymbolError, match="BTC;DROP"):
        register_symbols(instance, ["BTCUSDT", "BTC;DROP"])
    assert instance.get_dynamic_partitions(SYMBOLS_PARTITION_NAME) == []
