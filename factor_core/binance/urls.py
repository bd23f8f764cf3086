"""Base URLs of the Binance hosts, and the archive's URL layout.

``{base}/data/{spot|futures/um}/{daily|monthly}/{type}/{SYMBOL}/[{interval}/]{SYMBOL}-{type|interval}-{YYYY-MM-DD|YYYY-MM}.zip``
with the checksum at the same URL + ``.CHECKSUM``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import date
from typing import Mapping

from factor_core.schemas import validate_symbol
from factor_core.timeutil import as_date

from .datasets import Dataset, get_dataset

DEFAULT_ARCHIVE_URL = "https://data.binance.vision"
DEFAULT_API_URL = "https://api.binance.com"
DEFAULT_FAPI_URL = "https://fapi.binance.com"


@dataclass(frozen=True)
class BinanceUrls:
    archive: str = DEFAULT_ARCHIVE_URL
    api: str = DEFAULT_API_URL
    fapi: str = DEFAULT_FAPI_URL


def urls_from_env(environ: Mapping[str, str] | None = None) -> BinanceUrls:
    """Base URLs from ``BINANCE_ARCHIVE_URL`` / ``BINANCE_API_URL`` / ``BINANCE_FAPI_URL``
    (empty or unset -> the real Binance hosts)."""
    env = os.environ if environ is None else environ
    return BinanceUrls(
        archive=(env.get("BINANCE_ARCHIVE_URL") or DEFAULT_ARCHIVE_URL).rstrip("/"),
        api=(env.get("BINANCE_API_URL") or DEFAULT_API_URL).rstrip("/"),
        fapi=(env.get("BINANCE_FAPI_URL") or DEFAULT_FAPI_URL).rstrip("/"),
    )




def month_of(when: date | str | tuple[int, int]) -> tuple[int, int]:
    """``(year, month)`` of a date, a ``YYYY-MM[-DD]`` string or a ``(year, month)`` pair."""
    if isinstance(when, tuple):
        year, month = when
    elif isinstance(when, str) and re.fullmatch(r"\d{4}-\d{2}", when):
        year, month = int(when[:4]), int(when[5:])
    else:
        d = as_date(when)
        year, month = d.year, d.month
    if not 1 <= month <= 12:
        raise ValueError(f"invalid month {month} (expected 1..12)")
    return year, month


def period_label(dataset: str | Dataset, when: date | str | tuple[int, int]) -> str:
    """``YYYY-MM-DD`` for daily datasets, ``YYYY-MM`` for monthly ones."""
    ds = get_dataset(dataset)
    if ds.period == "monthly":
        year, month = month_of(when)
        return f"{year:04d}-{month:02d}"
    if isinstance(when, tuple):
        raise ValueError(f"{ds.name} is a daily dataset: pass a date, not {when!r}")
    return as_date(when).isoformat()


def archive_filename(dataset: str | Dataset, symbol: str, when) -> str:
    """``BTCUSDT-1m-2024-01-01.zip``, ``BTCUSDT-fundingRate-2024-01.zip``, ..."""
    ds = get_dataset(dataset)
    validate_symbol(symbol)
    return f"{symbol}-{ds.interval or ds.type}-{period_label(ds, when)}.zip"


def archive_url(dataset: str | Dataset, symbol: str, when, base_url: str = DEFAULT_ARCHIVE_URL) -> str:
    """Full URL of one archive zip, e.g.
    ``https://data.binance.vision/data/spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2024-01-01.zip``."""
    ds = get_dataset(dataset)
    validate_symbol(symbol)  # before any URL is built
    parts = [base_url.rstrip("/"), "data", ds.market, ds.period, ds.type, symbol]
    if ds.interval:
        parts.append(ds.interval)
    parts.append(archive_filename(ds, symbol, when))
    return "/".join(parts)
