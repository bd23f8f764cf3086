"""Replay options as tardis-machine takes them: parsed into a checked request, or refused with a message naming the field."""

import json

import pytest

from factor_core.replay import ReplayOptionsError, parse_options
from factor_core.replay.options import parse_data_type
from tests.test_factor_core.replay_data import ns

GOOD = {"symbols": ["ethusdt", "BTCUSDT"], "from": "2024-01-02", "to": "2024-01-03T00:00:00.000Z",
        "dataTypes": ["book_snapshot_10_100ms", "trade"]}


def _parse(**changes):
    return parse_options(json.dumps({**GOOD, **changes}))


def test_options_become_a_request_with_sorted_symbols_utc_nanoseconds_and_trades_before_books():
    request = _parse()
    assert request.symbols == ("BTCUSDT", "ETHUSDT")
    assert request.start_ns == ns("2024-01-02T00:00:00Z") and request.end_ns == ns("2024-01-03T00:00:00Z")
    assert [t.name for t in request.data_types] == ["trade", "book_snapshot_10_100ms"]
    assert request.speed is None and request.days == ["2024-01-02"]


@pytest.mark.parametrize("name, depth, interval_ms", [
    ("book_snapshot_10_100ms", 10, 100), ("book_snapshot_5_1s", 5, 1000), ("book_snapshot_25_2m", 25, 120_000),
    ("book_snapshot_20_0ms", 20, 0), ("quote", 1, 0), ("quote_1s", 1, 1000),
])
def test_book_data_types_carry_levels_and_interval_in_milliseconds(name, depth, interval_ms):
    data_type = parse_data_type(name)
    assert (data_type.is_book, data_type.depth, data_type.interval_ms, data_type.asset) == (True, depth, interval_ms, "raw_book")


def test_times_with_offsets_are_converted_to_utc_and_naive_times_are_utc():
    request = _parse(**{"from": "2024-01-02T02:30:00+02:00", "to": "2024-01-02T01:00:00.250"})
    assert request.start_ns == ns("2024-01-02T00:30:00Z")
    assert request.end_ns == ns("2024-01-02T01:00:00.250Z")


def test_a_range_ending_at_midnight_does_not_touch_the_next_day():
    assert _parse(**{"from": "2024-01-02T23:00:00Z", "to": "2024-01-04T00:00:00Z"}).days == ["2024-01-02", "2024-01-03"]
    assert _parse(**{"to": "2024-01-04T00:00:00.000001Z"}).days == ["2024-01-02", "2024-01-03", "2024-01-04"]


def test_an_array_of_options_is_one_synchronized_request():
    request = parse_options(json.dumps([{**GOOD, "symbols": ["BTCUSDT"]}, {**GOOD, "symbols": ["ETHUSDT"]}]))
    assert request.symbols == ("BTCUSDT", "ETHUSDT")


def test_tardis_machine_options_that_do_not_apply_are_accepted_and_ignored():
    assert _parse(withDisconnectMessages=True, waitWhenDataNotYetAvailable=5).symbols == ("BTCUSDT", "ETHUSDT")


@pytest.mark.parametrize("raw, words", [
    ("{not json", ["not valid JSON"]),
    ("", ["missing options"]),
    ('"BTCUSDT"', ["JSON object"]),
    (json.dumps({**GOOD, "from": "2024-01-04"}), ["options.from (2024-01-04) must be before options.to"]),
    (json.dumps({**GOOD, "from": "2024-01-03T00:00:00Z"}), ["must be before options.to"]),
    (json.dumps({**GOOD, "from": "yesterday"}), ["options.from 'yesterday' is not an ISO 8601 time"]),
    (json.dumps({**GOOD, "speed": 0}), ["options.speed 0 is invalid", "> 0"]),
    (json.dumps({**GOOD, "speed": -2}), ["options.speed -2 is invalid"]),
    (json.dumps({**GOOD, "speed": "fast"}), ["options.speed 'fast' is invalid"]),
    (json.dumps({**GOOD, "speed": True}), ["options.speed True is invalid"]),
    (json.dumps({**GOOD, "dataTypes": ["book_change"]}), ["unknown data type 'book_change'", "book_snapshot_<levels>"]),
    (json.dumps({**GOOD, "dataTypes": ["book_snapshot_0_1s"]}), ["asks for 0 levels"]),
    (json.dumps({**GOOD, "dataTypes": []}), ["options.dataTypes is required"]),
    (json.dumps({**GOOD, "symbols": []}), ["options.symbols is required"]),
    (json.dumps({**GOOD, "symbols": ["BTC/USDT"]}), ["invalid symbol 'BTC/USDT'"]),
    (json.dumps({**GOOD, "speeed": 2}), ["unknown key(s) ['speeed']"]),
    (json.dumps([GOOD, {**GOOD, "to": "2024-01-04"}]), ["same exchange, from, to and speed"]),
])
def test_bad_options_are_refused_naming_the_field_and_value(raw, words):
    with pytest.raises(ReplayOptionsError) as caught:
        parse_options(raw)
    assert caught.value.close_code == 4400 and caught.value.http_status == 400
    for word in words:
        assert word in caught.value.message
