"""What a landed file is, from its path alone: dataset, symbol, the UTC days it covers, format.

Accepted names (see ``docs/landing.md``)::

    <SYMBOL>-1m-<YYYY-MM-DD>.zip|.csv            klines, one day
    <SYMBOL>-1m-<YYYY-MM>.zip|.csv               klines, a month (split into days)
    <SYMBOL>-aggTrades-<YYYY-MM-DD>.zip|.csv     trades
    <SYMBOL>-bookDepth-<YYYY-MM-DD>.zip|.csv     book (depth bands)
    <SYMBOL>-bookTicker-<YYYY-MM-DD>.zip|.csv    quotes
    <SYMBOL>-fundingRate-<YYYY-MM>.zip|.csv      funding, a month
    <exchange>_<data type>_<YYYY-MM-DD>_<SYMBOL>.csv.gz    Tardis.dev (trades, book_snapshot_5,
                                                 book_snapshot_25, derivative_ticker, quotes)
    <dataset>/<SYMBOL>/<YYYY-MM-DD>.parquet      canonical Parquet in the raw schemas

A name that looks like one of these but is wrong in a part (symbol, date,
kind) is a :class:`LandingFileError` saying which part and what to do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import PurePosixPath

from factor_core.schemas import SYMBOL_PATTERN

#: The pipeline datasets a landed file can fill.
DATASETS = ("klines", "trades", "book", "funding", "quotes")

#: Binance archive kind in the name -> (dataset, periods accepted).
BINANCE_KINDS = {
    "1m": ("klines", ("daily", "monthly")),
    "aggTrades": ("trades", ("daily",)),
    "bookDepth": ("book", ("daily",)),
    "bookTicker": ("quotes", ("daily",)),
    "fundingRate": ("funding", ("monthly",)),
}

#: Tardis.dev CSV data type -> dataset.
TARDIS_TYPES = {
    "trades": "trades",
    "book_snapshot_25": "book",
    "book_snapshot_5": "book",
    "derivative_ticker": "funding",
    "quotes": "quotes",
}

_BINANCE = re.compile(
    r"^(?P<symbol>.*?)-(?P<kind>[A-Za-z0-9]+)-(?P<period>\d{4}-\d{2}(?:-\d{2})?)\.(?P<ext>zip|csv)$"
)
_TARDIS = re.compile(
    r"^(?P<exchange>[a-z0-9-]+)_(?P<type>[A-Za-z0-9_]+?)_(?P<day>\d{4}-\d{2}-\d{2})_(?P<symbol>.+)\.csv\.gz$"
)
_PARQUET_DAY = re.compile(r"^(?P<day>\d{4}-\d{2}-\d{2})\.parquet$")


class LandingFileError(ValueError):
    """A landed file that cannot be used: ``path`` (relative to the landing root) and ``reason``,
    which says what is wrong and what to do about it."""

    def __init__(self, path: str, reason: str):
        self.path, self.reason = str(path), reason
        super().__init__(f"{self.path}: {reason}")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LandingFileError) and (self.path, self.reason) == (other.path, other.reason)

    def __hash__(self) -> int:
        return hash((self.path, self.reason))


@dataclass(frozen=True)
class FileName:
    """What the path says: enough to know which partitions a file covers without opening it."""

    dataset: str
    symbol: str
    format: str  # "binance-zip" | "binance-csv" | "tardis-csv-gz" | "parquet"
    period: str  # "daily" | "monthly"
    first_day: date
    kind: str  # Binance kind (1m, aggTrades, ...), Tardis data type, or the dataset for Parquet
    exchange: str | None = None  # Tardis only


def _symbol(path: str, symbol: str, example: str) -> str:
    if not SYMBOL_PATTERN.fullmatch(symbol):
        raise LandingFileError(
            path,
            f"invalid symbol {symbol!r} in the file name: symbols must match {SYMBOL_PATTERN.pattern} "
            f"(2-30 upper-case letters or digits); rename the file, e.g. to {example}",
        )
    return symbol


def _day(path: str, text: str, what: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise LandingFileError(path, f"{what} {text!r} in the file name is not a calendar date; "
                                     "rename the file with a valid YYYY-MM-DD date") from None


def _binance(path: str, m: re.Match) -> FileName:
    kind, period_text, ext = m["kind"], m["period"], m["ext"]
    if kind not in BINANCE_KINDS:
        raise LandingFileError(
            path, f"unknown Binance archive kind {kind!r}; accepted: {sorted(BINANCE_KINDS)} "
                  "(klines must be 1-minute, '1m')")
    dataset, periods = BINANCE_KINDS[kind]
    period = "monthly" if len(period_text) == 7 else "daily"
    if period not in periods:
        accepted = " or ".join("YYYY-MM-DD" if p == "daily" else "YYYY-MM" for p in periods)
        raise LandingFileError(path, f"{kind} files are {'/'.join(periods)}: name it "
                                     f"<SYMBOL>-{kind}-{accepted}.{ext}")
    first = _day(path, period_text + ("-01" if period == "monthly" else ""), "date")
    symbol = _symbol(path, m["symbol"], f"BTCUSDT-{kind}-{period_text}.{ext}")
    return FileName(dataset, symbol, f"binance-{ext}", period, first, kind)


def _tardis(path: str, m: re.Match) -> FileName:
    data_type = m["type"]
    if data_type not in TARDIS_TYPES:
        raise LandingFileError(
            path, f"unknown Tardis data type {data_type!r}; known: {sorted(TARDIS_TYPES)} "
                  "(other Tardis datasets have no raw asset here: leave them out of the landing folder)")
    day = _day(path, m["day"], "date")
    symbol = _symbol(path, m["symbol"], f"{m['exchange']}_{data_type}_{m['day']}_BTCUSDT.csv.gz")
    return FileName(TARDIS_TYPES[data_type], symbol, "tardis-csv-gz", "daily", day, data_type, m["exchange"])


def _parquet(path: str, parts: tuple[str, ...]) -> FileName:
    expected = "<dataset>/<SYMBOL>/<YYYY-MM-DD>.parquet"
    if len(parts) != 3:
        raise LandingFileError(path, f"canonical Parquet files must be laid out as {expected} "
                                     f"(dataset one of {list(DATASETS)}); move the file there")
    dataset, symbol, name = parts
    if dataset not in DATASETS:
        raise LandingFileError(path, f"unknown dataset folder {dataset!r}; expected one of {list(DATASETS)} "
                                     f"({expected})")
    m = _PARQUET_DAY.match(name)
    if not m:
        raise LandingFileError(path, f"canonical Parquet file name must be <YYYY-MM-DD>.parquet ({expected})")
    day = _day(path, m["day"], "date")
    return FileName(dataset, _symbol(path, symbol, f"{dataset}/BTCUSDT/{m['day']}.parquet"), "parquet",
                    "daily", day, dataset)


def parse_name(relative_path: str) -> FileName:
    """Classify a path relative to the landing root, or raise :class:`LandingFileError`."""
    parts = PurePosixPath(relative_path).parts
    name = parts[-1]
    if name.endswith(".parquet"):
        return _parquet(relative_path, parts)
    if m := _TARDIS.match(name):
        return _tardis(relative_path, m)
    if m := _BINANCE.match(name):
        return _binance(relative_path, m)
    raise LandingFileError(
        relative_path,
        "unrecognised file name; expected a Binance archive name (BTCUSDT-1m-2024-01-01.zip, "
        "BTCUSDT-aggTrades-2024-01-01.csv, BTCUSDT-fundingRate-2024-01.zip, ...), a Tardis.dev name "
        "(binance_trades_2024-01-01_BTCUSDT.csv.gz) or <dataset>/<SYMBOL>/<YYYY-MM-DD>.parquet; "
        "see docs/landing.md",
    )
