"""The instrument universe and its history of listings and delistings (point-in-time membership).

A symbol is a member of the universe from its listing day through its
delisting day, both inclusive. Where do the dates come from?

* a **universe file** (``UNIVERSE_FILE``, CSV ``symbol,listed_on,delisted_on``,
  dates optional) states them: it is the way to describe a survivorship-free
  universe, and the way tests and the simulator declare listings;
* otherwise they are **observed**: the exchange only tells what trades *now*,
  so a symbol that appears after the first observation is listed on the day
  it was first seen trading, and a symbol is delisted on the day it was first
  seen not trading (or vanished). Symbols present at the very first
  observation were listed before observation began: ``listed_on`` is empty,
  which means "a member since the start of history".

Symbols are never dropped from the table (or from the partitions): a delisted
symbol keeps its history, so cross-sections of the past are built from what
was tradable then, not from today's survivors.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from datetime import date
from pathlib import Path

import pandas as pd

from factor_core.schemas import validate_symbol

TRADING = "TRADING"
DELISTED = "DELISTED"
COLUMNS = ("symbol", "status", "base_asset", "quote_asset", "listed_on", "delisted_on", "last_seen")
#: ``{symbol: (listed_on, delisted_on)}``, ISO days or None (None = before observation began / still listed).
Listings = dict[str, tuple[str | None, str | None]]


class UniverseFileError(ValueError):
    """A universe file that cannot be used; names the file, line and field."""


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


def _file_day(path: Path, line: int, field: str, value: str) -> str | None:
    value = (value or "").strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError as exc:
        raise UniverseFileError(f"{path}, line {line}: {field} {value!r} is not a YYYY-MM-DD day") from exc


def from_file(path: str | Path, today: date) -> dict[str, dict]:
    """A universe file (CSV with a header: ``symbol`` and optional ``listed_on``, ``delisted_on``)."""
    path = Path(path)
    if not path.is_file():
        raise UniverseFileError(f"universe file {path} does not exist (UNIVERSE_FILE)")
    out: dict[str, dict] = {}
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or "symbol" not in reader.fieldnames:
            raise UniverseFileError(f"{path}: the header must name a 'symbol' column (got {reader.fieldnames})")
        for line, row in enumerate(reader, start=2):
            try:
                symbol = validate_symbol((row.get("symbol") or "").strip())
            except ValueError as exc:
                raise UniverseFileError(f"{path}, line {line}: {exc}") from exc
            listed = _file_day(path, line, "listed_on", row.get("listed_on", ""))
            delisted = _file_day(path, line, "delisted_on", row.get("delisted_on", ""))
            if listed and delisted and delisted < listed:
                raise UniverseFileError(f"{path}, line {line}: {symbol} is delisted ({delisted}) before it is listed ({listed})")
            active = (listed is None or listed <= today.isoformat()) and (delisted is None or delisted >= today.isoformat())
            out[symbol] = {"status": TRADING if active else DELISTED, "base_asset": "", "quote_asset": "",
                           "listed_on": listed, "delisted_on": delisted, "explicit": True}
    return out


def trading(current: Mapping[str, Mapping]) -> list[str]:
    return sorted(s for s, info in current.items() if info["status"] == TRADING)


def with_history(current: Mapping[str, Mapping]) -> list[str]:
    """Symbols that have (or will have) partitions: trading now, or listed with explicit dates."""
    return sorted(s for s, info in current.items() if info["status"] == TRADING or info.get("explicit"))


def update_universe(previous: pd.DataFrame | None, current: Mapping[str, Mapping], today: date) -> pd.DataFrame:
    """Merge today's observation into the universe table (one row per symbol ever seen)."""
    rows: dict[str, dict] = {}
    first_observation = previous is None or previous.empty
    if not first_observation:
        for record in previous[list(COLUMNS)].to_dict("records"):
            rows[record["symbol"]] = {k: (None if isinstance(v, float) and pd.isna(v) else v) for k, v in record.items()}
    day = today.isoformat()
    for symbol, info in current.items():
        is_trading = info["status"] == TRADING
        row = rows.get(symbol)
        if row is None:
            row = {"symbol": symbol, "listed_on": None if first_observation or not is_trading else day, "delisted_on": None}
        row.update(status=info["status"], base_asset=info["base_asset"], quote_asset=info["quote_asset"], last_seen=day)
        if info.get("explicit"):
            row["listed_on"], row["delisted_on"] = info.get("listed_on"), info.get("delisted_on")
        elif is_trading:
            row["delisted_on"] = None  # (re)listed
        elif not row.get("delisted_on"):
            row["delisted_on"] = day
        rows[symbol] = row
    for symbol, row in rows.items():
        if symbol not in current and not row.get("delisted_on"):
            row.update(status="REMOVED", delisted_on=day)  # vanished from the observation
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


def members(listings: Listings, symbols: Iterable[str], day: str) -> list[str]:
    """The symbols of ``symbols`` listed on ``day``, in their given order."""
    return [s for s in symbols if is_listed(listings, s, day)]


def listings_of(table: pd.DataFrame) -> Listings:
    """The listing intervals of a ``symbol_universe`` table."""

    def iso(value) -> str | None:
        if value is None or (not isinstance(value, str) and pd.isna(value)):
            return None
        return str(value)[:10]

    return {row.symbol: (iso(row.listed_on), iso(row.delisted_on)) for row in table.itertuples(index=False)}
