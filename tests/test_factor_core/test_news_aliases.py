"""Alias table: word-boundary matching, ticker case rules, longest alias first, anonymisation."""

from __future__ import annotations

import pytest

from factor_core.news.aliases import DEFAULT_ALIASES, AliasTable

TABLE = AliasTable.for_symbols(["BTCUSDT", "ETHUSDT", "SOLUSDT", "BCHUSDT", "DOGEUSDT", "PEPEUSDT"])


@pytest.mark.parametrize(
    ("text", "symbols"),
    [
        ("A new METHOD for traders", []),
        ("ETH2 staking and Ethernet cables", []),
        ("$ETH rallies; ETH-USD up", ["ETHUSDT"]),
        ("Solana's validators", ["SOLUSDT"]),
        ("el sol brilla", []),  # lowercase 'sol' is not the ticker
        ("SOL up 5%", ["SOLUSDT"]),
        ("bitcoin and BITCOIN and Bitcoin", ["BTCUSDT"]),
        ("btc lowercase ticker", []),
        ("Bitcoin  Cash forks", ["BCHUSDT"]),  # the longer alias wins, any whitespace
        ("Bitcoin Cash and Bitcoin", ["BCHUSDT", "BTCUSDT"]),
        ("XBT/EUR", ["BTCUSDT"]),
        ("PEPE meme season", ["PEPEUSDT"]),  # derived base ticker for a symbol outside the defaults
        ("BTCUSDT perpetual funding", ["BTCUSDT"]),  # the symbol names itself
    ],
)
def test_matching_respects_word_boundaries_and_case_rules(text, symbols):
    assert TABLE.match(text) == symbols


def test_anonymise_replaces_only_the_scored_assets_names():
    text = "Bitcoin jumps while ETH lags; BTC and bitcoin cash diverge, XBT-USD too"
    assert TABLE.anonymise(text, "BTCUSDT", "ASSET") == "ASSET jumps while ETH lags; ASSET and bitcoin cash diverge, ASSET-USD too"


def test_parse_accepts_the_compact_and_the_json_form():
    compact = AliasTable.parse("BTCUSDT=BTC|Bitcoin|XBT; ETHUSDT=ETH|Ether")
    as_json = AliasTable.parse('{"BTCUSDT": ["BTC", "Bitcoin", "XBT"], "ETHUSDT": ["ETH", "Ether"]}')
    assert compact == as_json
    assert compact.match("Ether and XBT") == ["BTCUSDT", "ETHUSDT"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("BTCUSDT=BTC;ETHUSDT=BTC", "names both BTCUSDT and ETHUSDT"),
        ("BTCUSDT BTC", "lacks '='"),
        ('{"BTCUSDT": "BTC"}', "list of aliases"),
        ("btc=BTC", "symbol"),
    ],
)
def test_bad_alias_configuration_is_refused_naming_the_entry(text, message):
    with pytest.raises(ValueError, match=message):
        AliasTable.parse(text)


def test_extra_aliases_add_to_the_defaults():
    table = AliasTable.for_symbols(["BTCUSDT"], extra={"BTCUSDT": ["Satoshi coin"]})
    assert set(DEFAULT_ALIASES["BTCUSDT"]) < set(table.names("BTCUSDT"))
    assert table.match("satoshi coin news") == ["BTCUSDT"]
