"""The pipeline's four raw datasets from Binance, for many (symbol, day) partitions at once.

One run of a raw asset calls :func:`fetch_partitions` once: every archive
download of the run shares one aiohttp session (bounded concurrency), every
REST call one ``RestClient`` (one weight limiter). Per dataset:

| dataset | primary | fallback when the archive has not published the day |
| --- | --- | --- |
| klines  | spot 1m klines archive (checksum verified) | REST ``/api/v3/klines``, paginated |
| trades  | spot aggTrades archive (checksum verified) | none: "not available yet" |
| book    | USD-M futures bookDepth archive (depth bands) | none; or, with ``book_source="collector"``, the live snapshots collected from ``/api/v3/depth`` |
| funding | USD-M monthly fundingRate archive, cut into days | REST ``/fapi/v1/fundingRate`` |

Any failure fails the whole batch with every failing partition named, so a
run either stores all of its partitions or none.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone

import pyarrow as pa

from factor_core.binance import BinanceUrls
from factor_core.binance.archive import ArchiveClient, parse_info, split_by_day
from factor_core.binance.errors import BinanceError, NotAvailableYet
from factor_core.binance.rest import RestClient
from factor_core.book_landing import load_collected_book, write_snapshot
from factor_core.schemas import FUNDING, validate_symbol

ARCHIVE_DATASET = {"klines": "klines", "trades": "aggTrades", "book": "bookDepth"}
BOOK_SOURCES = ("futures_depth", "collector")


@dataclass(frozen=True)
class Fetched:
    """One partition's canonical table and where it came from (goes into metadata)."""

    table: pa.Table
    provenance: dict[str, str] = field(default_factory=dict)

    @property
    def checksum_verified(self) -> bool | None:
        """True for a verified archive file, None where the source publishes no checksum."""
        value = self.provenance.get("checksum_verified")
        return None if value == "n/a" else value == "true"


@dataclass(frozen=True)
class BinanceSourceConfig:
    urls: BinanceUrls = BinanceUrls()
    book_source: str = "futures_depth"
    landing_root: str | None = None
    book_interval_s: int = 60
    max_concurrency: int = 8
    max_wait_s: float = 120.0

    def __post_init__(self) -> None:
        if self.book_source not in BOOK_SOURCES:
            raise ValueError(f"book_source {self.book_source!r}: expected one of {BOOK_SOURCES}")


class PartitionFetchError(BinanceError):
    """Some partitions of a batch could not be fetched; names each with its cause."""

    def __init__(self, dataset: str, failures: dict[tuple[str, date], BaseException]):
        self.failures = failures
        lines = [f"{day.isoformat()}|{symbol}: {exc}" for (symbol, day), exc in sorted(failures.items())]
        super().__init__(
            f"{dataset}: {len(failures)} partition(s) could not be fetched; nothing was stored:\n  "
            + "\n  ".join(lines)
        )


def _archive_provenance(table: pa.Table) -> dict[str, str]:
    info = parse_info(table)
    return {
        "source": "binance archive",
        "url": info.get("source", ""),
        "sha256": info.get("sha256", ""),
        "checksum_verified": "true" if info.get("sha256") else "false",
        "time_unit": info.get("time_unit", ""),
        "duplicates_dropped": info.get("duplicates_dropped", "0"),
    }


def _rest_provenance(table: pa.Table, endpoint: str) -> dict[str, str]:
    return {"source": "binance REST", "url": endpoint, "checksum_verified": "n/a"}


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), tzinfo=timezone.utc)
    return start, start + timedelta(days=1)


async def _fetch_one(dataset: str, symbol: str, day: date, archive: ArchiveClient, rest: RestClient,
                     config: BinanceSourceConfig) -> Fetched:
    if dataset == "book" and config.book_source == "collector":
        if not config.landing_root:
            raise ValueError("book_source='collector' needs a landing_root")
        table, completeness = load_collected_book(config.landing_root, symbol, day, config.book_interval_s)
        return Fetched(table, {"source": "live collector", "checksum_verified": "n/a", **completeness})
    try:
        table = await archive.fetch_day(ARCHIVE_DATASET[dataset], symbol, day)
        return Fetched(table, _archive_provenance(table))
    except NotAvailableYet as exc:
        if dataset != "klines":
            raise
        table = await rest.klines_day(symbol, day)
        if table.num_rows == 0:
            raise NotAvailableYet(f"{exc.args[0] if exc.args else exc}; REST klines returned no closed bar") from exc
        return Fetched(table, _rest_provenance(table, f"{rest.api_url}/api/v3/klines"))


async def _fetch_funding(pairs: list[tuple[str, date]], archive: ArchiveClient, rest: RestClient,
                         results: dict, failures: dict) -> None:
    """Monthly files cover many day partitions: fetch each (symbol, month) once."""
    by_month: dict[tuple[str, int, int], list[date]] = defaultdict(list)
    for symbol, day in pairs:
        by_month[(symbol, day.year, day.month)].append(day)

    async def month(symbol: str, year: int, month_: int, days: list[date]) -> None:
        try:
            table = await archive.fetch_month("fundingRate", symbol, year, month_)
            per_day = split_by_day(table)
            provenance = _archive_provenance(table)
            for day in days:
                piece = per_day.get(day, FUNDING.empty_table())
                results[(symbol, day)] = Fetched(piece, provenance)
        except NotAvailableYet:
            for day in days:  # the month's file appears early next month: ask the API
                try:
                    start, end = _day_bounds(day)
                    table = await rest.funding_history(symbol, start, end)
                    results[(symbol, day)] = Fetched(table, _rest_provenance(table, f"{rest.fapi_url}/fapi/v1/fundingRate"))
                except Exception as exc:  # noqa: BLE001 - collected and reported per partition
                    failures[(symbol, day)] = exc
        except Exception as exc:  # noqa: BLE001
            for day in days:
                failures[(symbol, day)] = exc

    await asyncio.gather(*(month(s, y, m, d) for (s, y, m), d in by_month.items()))


async def fetch_partitions_async(dataset: str, pairs: list[tuple[str, date]],
                                 config: BinanceSourceConfig) -> dict[tuple[str, date], Fetched]:
    for symbol, _ in pairs:
        validate_symbol(symbol)
    results: dict[tuple[str, date], Fetched] = {}
    failures: dict[tuple[str, date], BaseException] = {}
    async with ArchiveClient(config.urls.archive, max_concurrency=config.max_concurrency) as archive, \
            RestClient(config.urls.api, config.urls.fapi, max_wait_s=config.max_wait_s) as rest:
        if dataset == "funding":
            await _fetch_funding(pairs, archive, rest, results, failures)
        else:
            outcomes = await asyncio.gather(
                *(_fetch_one(dataset, s, d, archive, rest, config) for s, d in pairs), return_exceptions=True
            )
            for pair, outcome in zip(pairs, outcomes, strict=True):
                if isinstance(outcome, BaseException):
                    if not isinstance(outcome, Exception):
                        raise outcome
                    failures[pair] = outcome
                else:
                    results[pair] = outcome
    if failures:
        raise PartitionFetchError(dataset, failures)
    return results


def fetch_partitions(dataset: str, pairs: list[tuple[str, date]],
                     config: BinanceSourceConfig) -> dict[tuple[str, date], Fetched]:
    """Synchronous entry point for a Dagster step (runs its own event loop)."""
    if dataset not in ("klines", "trades", "book", "funding"):
        raise ValueError(f"unknown dataset {dataset!r}")
    return asyncio.run(fetch_partitions_async(dataset, pairs, config))


async def _collect(api_url: str, symbols: list[str], levels: int, landing_root: str,
                   max_wait_s: float) -> dict[str, str | BaseException]:
    async with RestClient(api_url, max_wait_s=max_wait_s) as rest:
        snapshots = await asyncio.gather(*(rest.depth(s, levels) for s in symbols), return_exceptions=True)
    results: dict[str, str | BaseException] = {}
    for symbol, snapshot in zip(symbols, snapshots, strict=True):
        if isinstance(snapshot, BaseException):
            results[symbol] = snapshot
        else:
            results[symbol] = str(write_snapshot(landing_root, symbol, snapshot))
    return results


def collect_book_snapshots(api_url: str, symbols: list[str], *, levels: int, landing_root: str,
                           max_wait_s: float = 30.0) -> dict[str, str | BaseException]:
    """Snapshot ``/api/v3/depth`` for every symbol (one session, one rate limiter) into the landing area.

    Returns, per symbol, the landed file or the error that prevented it: one
    symbol's failure does not lose the others' snapshots.
    """
    for symbol in symbols:
        validate_symbol(symbol)
    return asyncio.run(_collect(api_url, symbols, levels, landing_root, max_wait_s))
