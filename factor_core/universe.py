"""The instrument universe and its history of listings and delistings.

The exchange only tells what trades *now*; listing and delisting dates are
therefore the days this pipeline first saw a symbol trading and first saw it
stop. Symbols are never dropped from the table (or from the partitions): a
delisted symbol keeps its history, so cross-sections of the past are built
from what was tradable then, not from today's survivors.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date

import pandas as pd

from factor_core.schemas import validate_symbol

TRADING = "TRADING"
#: ``{symbol: (listed_on, delisted_on)}``, ISO days or None (None = before observation began / still listed).
Listings = dict[str, tuple[str | None, str | None]]
COLUMNS = ("symbol", "status", "base_asset", "quote_asset", "listed_on", "delisted_on", "last_seen")


def from_exchange_info(symbols: Iterable[Mapping], quote_asset: str | None) -> dict[str, dict]:
    """``{symbol: {status, base_asset, quote_asset}}`` from ``/api/v3/exchangeInfo`` entries."""
    out = {}
    for entry in symbols:
        if quote_asset and entry.get("quoteAsset") != quote_asset:
            continue
        symbol = entry.get("symbol")
        try:
            validate_symbol(symbol)
        except ValueError:
            continue  # the exchange lists odd test symbols; they never become partitions
        out[symbol] = {
            "status": str(entry.get("status", "")),
            "base_asset": str(entry.get("baseAsset", "")),
            "quote_asset": str(entry.get("quoteAsset", "")),
        }
    return out


def from_fixed_list(symbols: Iterable[str]) -> dict[str, dict]:
    """A configured universe: every symbol is taken as trading."""
    return {validate_symbol(s): {"status": TRADING, "base_asset": "", "quote_asset": ""} for s in symbols}


def trading(current: Mapping[str, Mapping]) -> list[str]:
    return sorted(s for s, info in current.items() if info["status"] == TRADING)


def update_universe(previous: pd.DataFrame | None, current: Mapping[str, Mapping], today: date) -> pd.DataFrame:
    """Merge today's observation into the universe table (one row per symbol ever seen)."""
    rows: dict[str, dict] = {}
    if previous is not None and not previous.empty:
        for record in previous[list(COLUMNS)].to_dict("records"):
            rows[record["symbol"]] = record
    day = today.isoformat()
    for symbol, info in current.items():
        row = rows.get(symbol)
        is_trading = info["status"] == TRADING
        if row is None:
            row = {"symbol": symbol, "listed_on": day if is_trading else None, "delisted_on": None}
        row.update(status=info["status"], base_asset=info["base_asset"], quote_asset=info["quote_asset"], last_seen=day)
        if is_trading:
            row["listed_on"] = row.get("listed_on") or day
            row["delisted_on"] = None  # relisted
        elif row.get("listed_on") and not row.get("delisted_on"):
            row["delisted_on"] = day
        rows[symbol] = row
    for symbol, row in rows.items():
        if symbol not in current and row.get("listed_on") and not row.get("delisted_on"):
            row.update(status="REMOVED", delisted_on=day)  # vanished from exchangeInfo
    frame = pd.DataFrame(list(rows.values()), columns=list(COLUMNS))
    return frame.sort_values("symbol").reset_index(drop=True)


def is_listed(listings: Listings, symbol: str, day: str) -> bool:
    """Whether ``symbol`` was a member of the universe on ``day`` (ISO).

    A symbol is a member from its listing day through its delisting day, both
    inclusive (it traded on the day it was delisted). A symbol the table does
    not know, or one listed before observation began, is a member from the start.
    """
    listed_on, delisted_on = listings.get(symbol, (None, None))
    return (listed_on is None or day >= listed_on) and (delisted_on is None or day <= delisted_on)


def listings_of(table: pd.DataFrame) -> Listings:
    """The listing intervals of a ``symbol_universe`` table."""
    def iso(value) -> str | None:
        return None if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NaT else str(value)[:10]

    return {row.symbol: (iso(row.listed_on), iso(row.delisted_on)) for row in table.itertuples(index=False)}
