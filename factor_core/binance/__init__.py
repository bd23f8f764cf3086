"""Binance data source: public archive (data.binance.vision) and REST API clients.

Pure code (no Dagster). See ``docs/binance.md`` for URLs, units, rate limits
and failure modes. Base URLs default to the real hosts; the Dagster layer
passes ``BINANCE_ARCHIVE_URL`` / ``BINANCE_API_URL`` / ``BINANCE_FAPI_URL``
(see :func:`urls_from_env`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

from .archive import (
    DATASETS,
    DEFAULT_ARCHIVE_URL,
    ArchiveClient,
    archive_url,
    fetch_day,
    fetch_day_sync,
    fetch_days_sync,
    fetch_funding_day_sync,
    fetch_funding_month,
    fetch_funding_month_sync,
    parse_csv,
    parse_info,
    parse_zip,
    split_by_day,
)
from .errors import (
    ApiError,
    BinanceError,
    ChecksumError,
    ChecksumMismatch,
    ChecksumMissing,
    CorruptArchive,
    IPBanned,
    MalformedResponse,
    NotAvailableYet,
    ParseError,
    RateLimited,
    RequestFailed,
    UnknownSymbol,
)
from .rest import (
    DEFAULT_API_URL,
    DEFAULT_FAPI_URL,
    RestClient,
    WeightLimiter,
    fetch_depth_snapshot_sync,
    fetch_exchange_info_sync,
    fetch_funding_history_sync,
    fetch_klines_day_sync,
)


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


__all__ = [
    "ApiError", "ArchiveClient", "BinanceError", "BinanceUrls", "ChecksumError", "ChecksumMismatch",
    "ChecksumMissing", "CorruptArchive", "DATASETS", "DEFAULT_API_URL", "DEFAULT_ARCHIVE_URL",
    "DEFAULT_FAPI_URL", "IPBanned", "MalformedResponse", "NotAvailableYet", "ParseError",
    "RateLimited", "RequestFailed", "RestClient", "UnknownSymbol", "WeightLimiter", "archive_url",
    "fetch_day", "fetch_day_sync", "fetch_days_sync", "fetch_depth_snapshot_sync",
    "fetch_exchange_info_sync", "fetch_funding_day_sync", "fetch_funding_history_sync",
    "fetch_funding_month", "fetch_funding_month_sync", "fetch_klines_day_sync", "parse_csv",
    "parse_info", "parse_zip", "split_by_day", "urls_from_env",
]  # fmt: skip
