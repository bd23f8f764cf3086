"""Binance data source: public archive (data.binance.vision) and REST API clients. Pure code, no Dagster.

| module | concern |
| --- | --- |
| ``datasets`` | registry of archive datasets: layout, columns, types, output schema |
| ``urls`` | base URLs (``urls_from_env``) and the archive's URL layout |
| ``checksum`` | ``.CHECKSUM`` verification |
| ``zipmember`` | the one CSV member of a zip, inflated (ISA-L) and streamed |
| ``csvread`` | pyarrow CSV reading, header detection, line-exact diagnosis |
| ``columns``, ``dedupe``, ``builders`` | unit detection and checks, duplicate policy, per-dataset tables |
| ``parse`` | ``parse_zip`` / ``parse_csv`` / ``split_by_day``: one file -> canonical table |
| ``http``, ``client`` | shared HTTP plumbing; ``ArchiveClient`` (verified downloads) |
| ``limiter``, ``rest`` | weight limiter; ``RestClient`` (spot + USD-M futures endpoints) |
| ``source`` | ``fetch_datasets``: every raw dataset of a run, for the Dagster glue |
| ``errors`` | exception types (all subclass ``BinanceError``) |

See ``docs/binance.md`` for URLs, units, rate limits and failure modes.
"""

from __future__ import annotations

from .client import ArchiveClient, fetch_day, fetch_funding_month
from .datasets import DATASETS, Dataset, get_dataset
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
from .limiter import WeightLimiter
from .parse import parse_csv, parse_info, parse_zip, split_by_day
from .rest import RestClient, fetch_exchange_info_sync
from .urls import (
    DEFAULT_API_URL,
    DEFAULT_ARCHIVE_URL,
    DEFAULT_FAPI_URL,
    BinanceUrls,
    archive_filename,
    archive_url,
    urls_from_env,
)

__all__ = [
    "ApiError", "ArchiveClient", "BinanceError", "BinanceUrls", "ChecksumError", "ChecksumMismatch",
    "ChecksumMissing", "CorruptArchive", "DATASETS", "DEFAULT_API_URL", "DEFAULT_ARCHIVE_URL",
    "DEFAULT_FAPI_URL", "Dataset", "IPBanned", "MalformedResponse", "NotAvailableYet", "ParseError",
    "RateLimited", "RequestFailed", "RestClient", "UnknownSymbol", "WeightLimiter", "archive_filename",
    "archive_url", "fetch_day", "fetch_exchange_info_sync", "fetch_funding_month", "get_dataset",
    "parse_csv", "parse_info", "parse_zip", "split_by_day", "urls_from_env",
]  # fmt: skip
