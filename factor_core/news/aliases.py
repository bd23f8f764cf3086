"""Alias table: which words in a news item name which symbol (BTC / Bitcoin / XBT -> BTCUSDT).

Matching rules (one regex per table):

* word boundaries: an alias matches only when neither neighbour is a letter
  or digit, so "ETH" is not found inside "METHOD" or "ETH2", while "$ETH",
  "ETH-USD" and "Solana's" match;
* an alias written in capitals (a ticker: "ETH", "SOL") matches
  case-sensitively, so the Spanish word "sol" is not Solana; any other alias
  ("Bitcoin", "Binance Coin") matches case-insensitively, with any run of
  whitespace between its words;
* the longest alias wins at a position ("Bitcoin Cash" before "Bitcoin").

The same table anonymises prompts: every alias of the scored symbol is
replaced by a neutral token, so the model cannot recall what it learned in
training about that asset's later price path.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence

from factor_core.schemas import validate_symbol

#: Aliases of the demo universe and a few other large assets. Symbols outside the
#: table get their base-asset ticker (``DOGEUSDT`` -> ``DOGE``) from ``for_symbols``.
DEFAULT_ALIASES: Mapping[str, tuple[str, ...]] = {
    "BTCUSDT": ("BTC", "XBT", "Bitcoin"),
    "ETHUSDT": ("ETH", "Ether", "Ethereum"),
    "SOLUSDT": ("SOL", "Solana"),
    "BNBUSDT": ("BNB", "Binance Coin"),
    "XRPUSDT": ("XRP", "Ripple"),
    "DOGEUSDT": ("DOGE", "Dogecoin"),
    "ADAUSDT": ("ADA", "Cardano"),
    "AVAXUSDT": ("AVAX", "Avalanche"),
    "LTCUSDT": ("LTC", "Litecoin"),
    "BCHUSDT": ("BCH", "Bitcoin Cash"),
}

#: Quote assets stripped from a symbol to derive its base ticker, longest first.
QUOTE_ASSETS: tuple[str, ...] = ("FDUSD", "USDT", "USDC", "BUSD", "TUSD", "BTC", "ETH", "BNB", "EUR", "TRY")

_EDGE_BEFORE = r"(?<![A-Za-z0-9])"
_EDGE_AFTER = r"(?![A-Za-z0-9])"


def base_ticker(symbol: str) -> str | None:
    """``DOGEUSDT`` -> ``DOGE``; None when no known quote asset ends the symbol."""
    for quote in QUOTE_ASSETS:
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return symbol[: -len(quote)]
    return None


def _is_ticker(alias: str) -> bool:
    return alias.upper() == alias and any(c.isalpha() for c in alias)


def _lookup_key(alias: str) -> str:
    return alias if _is_ticker(alias) else " ".join(alias.split()).casefold()


def _alias_regex(alias: str) -> str:
    body = r"\s+".join(re.escape(word) for word in alias.split())
    return body if _is_ticker(alias) else f"(?i:{body})"


class AliasTable:
    """An immutable ``symbol -> aliases`` table with word-boundary matching."""

    def __init__(self, aliases: Mapping[str, Iterable[str]]):
        table: dict[str, tuple[str, ...]] = {}
        owner: dict[str, str] = {}
        for symbol, names in aliases.items():
            validate_symbol(symbol)
            cleaned = []
            for name in (symbol, *names):  # the symbol itself always names itself
                name = " ".join(str(name).split())
                if not name:
                    raise ValueError(f"alias table: empty alias for symbol {symbol}")
                key = _lookup_key(name)
                if owner.get(key, symbol) != symbol:
                    raise ValueError(
                        f"alias table: alias {name!r} names both {owner[key]} and {symbol}; "
                        "give each alias to one symbol only"
                    )
                owner[key] = symbol
                if name not in cleaned:
                    cleaned.append(name)
            table[symbol] = tuple(cleaned)
        self._table = table
        self._owner = owner
        self._pattern = self._compile(a for names in table.values() for a in names)

    @staticmethod
    def _compile(aliases: Iterable[str]) -> re.Pattern[str] | None:
        ordered = sorted(set(aliases), key=lambda a: (-len(a), a))
        if not ordered:
            return None
        return re.compile(_EDGE_BEFORE + "(?:" + "|".join(map(_alias_regex, ordered)) + ")" + _EDGE_AFTER)

    def _owner_of(self, matched: str) -> str:
        # A ticker matched exactly; a name matched in any case ("BITCOIN" is the name Bitcoin).
        return self._owner.get(matched) or self._owner[" ".join(matched.split()).casefold()]

    # ------------------------------------------------------------------ construction
    @classmethod
    def parse(cls, text: str) -> "AliasTable":
        """From configuration text: a JSON object ``{"BTCUSDT": ["BTC", "Bitcoin"]}`` or the
        compact form ``BTCUSDT=BTC|Bitcoin|XBT;ETHUSDT=ETH|Ether``."""
        text = text.strip()
        if not text:
            return cls({})
        if text.startswith("{"):
            try:
                raw = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"alias table is not valid JSON: {exc}") from None
            if not isinstance(raw, dict) or not all(isinstance(v, list) for v in raw.values()):
                raise ValueError('alias table JSON must map each symbol to a list of aliases: {"BTCUSDT": ["BTC"]}')
            return cls(raw)
        mapping: dict[str, list[str]] = {}
        for entry in filter(None, (e.strip() for e in text.split(";"))):
            symbol, sep, names = entry.partition("=")
            if not sep:
                raise ValueError(f"alias table entry {entry!r} lacks '=': write SYMBOL=alias|alias")
            mapping[symbol.strip()] = [n for n in names.split("|") if n.strip()]
        return cls(mapping)

    @classmethod
    def for_symbols(
        cls,
        symbols: Iterable[str],
        base: Mapping[str, Iterable[str]] = DEFAULT_ALIASES,
        extra: Mapping[str, Iterable[str]] | None = None,
    ) -> "AliasTable":
        """The table restricted to a universe: ``base`` entries, plus ``extra`` (configured
        aliases, added to the base ones), plus the base ticker of symbols that have neither."""
        extra = extra or {}
        mapping: dict[str, list[str]] = {}
        for symbol in symbols:
            names = [*base.get(symbol, ()), *extra.get(symbol, ())]
            if not names and (ticker := base_ticker(symbol)) is not None:
                names = [ticker]
            mapping[symbol] = names
        return cls(mapping)

    # ------------------------------------------------------------------ use
    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(self._table)

    def names(self, symbol: str) -> tuple[str, ...]:
        """Every alias of ``symbol`` (the symbol first)."""
        return self._table[symbol]

    def match(self, text: str) -> list[str]:
        """The symbols ``text`` mentions, sorted."""
        if self._pattern is None or not text:
            return []
        return sorted({self._owner_of(m.group(0)) for m in self._pattern.finditer(text)})

    def anonymise(self, text: str, symbol: str, token: str) -> str:
        """``text`` with every alias of ``symbol`` replaced by ``token`` (other assets' names stay)."""
        if self._pattern is None or symbol not in self._table:
            return text
        # The whole table's regex, so a longer alias of another asset ("Bitcoin Cash") stays intact.
        return self._pattern.sub(
            lambda m: token if self._owner_of(m.group(0)) == symbol else m.group(0), text
        )

    def as_config(self) -> dict[str, list[str]]:
        return {s: list(names[1:]) for s, names in self._table.items()}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AliasTable) and other._table == self._table

    def __repr__(self) -> str:
        return f"AliasTable({self.as_config()!r})"


def match_items(table: AliasTable, titles: Sequence[str], texts: Sequence[str]) -> list[list[str]]:
    """``table.match`` of each item's title and text."""
    return [table.match(f"{t}\n{x}") for t, x in zip(titles, texts)]
