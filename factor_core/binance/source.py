"""The pipeline's raw datasets from Binance, for every (dataset, symbol, day) of a run at once.

One run calls :func:`fetch_datasets` once: every download and REST call of the
run shares one aiohttp session (archive downloads bounded by
``max_concurrency``) and one ``RestClient`` (one weight limiter per host).

| dataset | primary | when the archive has no file for the day |
| --- | --- | --- |
| klines  | spot 1m klines archive (checksum verified) | REST ``/api/v3/klines``, paginated |
| trades  | spot aggTrades archive (checksum verified) | none: "not published yet" |
| book    | USD-M futures bookDepth archive (depth bands) | none; or, with ``book_source="collector"``, the live snapshots collected from ``/api/v3/depth`` |
| funding | USD-M monthly fundingRate archive, fetched once per (symbol, month), cut into days | REST ``/fapi/v1/fundingRate`` |
| quotes  | USD-M futures bookTicker archive (best bid/ask updates) | an empty ``QUOTES`` table whose provenance says why: spot has no top-of-book history |

Any failure fails the whole batch with every failing (dataset, partition)
named, so a run either stores all of its partitions or none.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from typing import Iterable, Mapping

import aiohttp
import pyarrow as pa

from factor_core.book_landing import load_collected_book, write_snapshot
from factor_core.partition_data import PartitionData
from factor_core.schemas import FUNDING, QUOTES, validate_symbol
from factor_core.timeutil import day_bounds

from .client import ArchiveClient
from .errors import BinanceError, NotAvailableYet
from .parse import parse_info, split_by_day
from .rest import RestClient
from .urls import BinanceUrls

#: The pipeline datasets this source serves, and the archive dataset behind each daily one.
DATASETS = ("klines", "trades", "book", "funding", "quotes")
ARCHIVE_DATASET = {"klines": "klines", "trades": "aggTrades", "book": "bookDepth", "quotes": "bookTicker"}
BOOK_SOURCES = ("futures_depth", "collector")

Pair = tuple[str, date]


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
    """Some partitions of a batch could not be fetched; names each with its cause.

    ``failures`` is keyed ``(dataset, symbol, day)``.
    """

    def __init__(self, failures: Mapping[tuple, BaseException]):
        self.failures = dict(failures)
        lines = [
            f"{dataset} {day.isoformat()}|{symbol}: {exc}"
            for (dataset, symbol, day), exc in sorted(self.failures.items(), key=lambda item: tuple(map(str, item[0])))
        ]
        what = ", ".join(sorted({key[0] for key in self.failures}))
        super().__init__(
            f"{what}: {len(self.failures)} partition(s) could not be fetched; nothing was stored:\n  "
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


def _rest_provenance(endpoint: str) -> dict[str, str]:
    return {"source": "binance REST", "url": endpoint, "checksum_verified": "n/a"}


def _no_quotes(symbol: str, day: date, exc: NotAvailableYet) -> PartitionData:
    return PartitionData(QUOTES.empty_table(), {
        "source": "none",
        "checksum_verified": "n/a",
        "rows": "0",
        "reason": (
            f"no top-of-book history for {symbol} on {day.isoformat()}: Binance publishes none for "
            f"spot, and the USD-M futures bookTicker archive has no file ({exc.url}, HTTP 404)"
        ),
    })


class _Run:
    """The clients and result maps of one :func:`fetch_datasets` call."""

    def __init__(self, archive: ArchiveClient, rest: RestClient, config: BinanceSourceConfig):
        self.archive, self.rest, self.config = archive, rest, config
        self.results: dict[str, dict[Pair, PartitionData]] = defaultdict(dict)
        self.failures: dict[tuple[str, str, date], BaseException] = {}

    async def daily(self, dataset: str, symbol: str, day: date) -> None:
        try:
            self.results[dataset][(symbol, day)] = await self._daily(dataset, symbol, day)
        except Exception as exc:  # noqa: BLE001 - collected and reported per partition
            self.failures[(dataset, symbol, day)] = exc

    async def _daily(self, dataset: str, symbol: str, day: date) -> PartitionData:
        if dataset == "book" and self.config.book_source == "collector":
            if not self.config.landing_root:
                raise ValueError("book_source='collector' needs a landing_root")
            table, completeness = load_collected_book(
                self.config.landing_root, symbol, day, self.config.book_interval_s)
            return PartitionData(table, {"source": "live collector", "checksum_verified": "n/a", **completeness})
        try:
            table = await self.archive.fetch_day(ARCHIVE_DATASET[dataset], symbol, day)
            return PartitionData(table, _archive_provenance(table))
        except NotAvailableYet as exc:
            if dataset == "quotes":
                return _no_quotes(symbol, day, exc)
            if dataset != "klines":
                raise
            table = await self.rest.klines_day(symbol, day)
            if table.num_rows == 0:
                raise NotAvailableYet(f"{exc.url}; REST klines returned no closed bar") from exc
            return PartitionData(table, _rest_provenance(f"{self.rest.api_url}/api/v3/klines"))

    async def funding_month(self, symbol: str, year: int, month: int, days: list[date]) -> None:
        """Monthly files cover many day partitions: one download per (symbol, month)."""
        try:
            table = await self.archive.fetch_month("fundingRate", symbol, year, month)
        except NotAvailableYet:
            # the month's file appears early next month: ask the API, day by day
            await asyncio.gather(*(self._funding_rest(symbol, day) for day in days))
            return
        except Exception as exc:  # noqa: BLE001
            for day in days:
                self.failures[("funding", symbol, day)] = exc
            return
        per_day = split_by_day(table)
        provenance = _archive_provenance(table)
        for day in days:
            piece = per_day.get(day, FUNDING.empty_table())
            self.results["funding"][(symbol, day)] = PartitionData(piece, provenance)

    async def _funding_rest(self, symbol: str, day: date) -> None:
        try:
            table = await self.rest.funding_history(symbol, *day_bounds(day))
            endpoint = f"{self.rest.fapi_url}/fapi/v1/fundingRate"
            self.results["funding"][(symbol, day)] = PartitionData(table, _rest_provenance(endpoint))
        except Exception as exc:  # noqa: BLE001
            self.failures[("funding", symbol, day)] = exc


async def fetch_datasets_async(datasets: Iterable[str], pairs: Iterable[Pair],
                               config: BinanceSourceConfig) -> dict[str, dict[Pair, PartitionData]]:
    """See :func:`fetch_datasets`."""
    datasets, pairs = list(dict.fromkeys(datasets)), list(dict.fromkeys(pairs))
    unknown = [d for d in datasets if d not in DATASETS]
    if unknown:
        raise ValueError(f"unknown dataset(s) {unknown}; the Binance source serves {list(DATASETS)}")
    for symbol, _ in pairs:
        validate_symbol(symbol)
    async with aiohttp.ClientSession() as session:
        archive = ArchiveClient(config.urls.archive, session=session, max_concurrency=config.max_concurrency)
        rest = RestClient(config.urls.api, config.urls.fapi, session=session, max_wait_s=config.max_wait_s)
        run = _Run(archive, rest, config)
        jobs = [run.daily(d, s, day) for d in datasets if d != "funding" for s, day in pairs]
        if "funding" in datasets:
            months: dict[tuple[str, int, int], list[date]] = defaultdict(list)
            for symbol, day in pairs:
                months[(symbol, day.year, day.month)].append(day)
            jobs += [run.funding_month(s, y, m, days) for (s, y, m), days in months.items()]
        await asyncio.gather(*jobs)
    if run.failures:
        raise PartitionFetchError(run.failures)
    return {d: dict(run.results[d]) for d in datasets}


def fetch_datasets(datasets: Iterable[str], pairs: Iterable[Pair],
                   config: BinanceSourceConfig) -> dict[str, dict[Pair, PartitionData]]:
    """Every dataset of every (symbol, day) of a run, concurrently -> ``{dataset: {(symbol, day): data}}``.

    ``datasets`` are names of :data:`DATASETS`. Raises :class:`PartitionFetchError`
    naming every failing (dataset, partition) with its cause; nothing is returned
    (so nothing gets stored) when any partition fails. Runs its own event loop:
    call it from a Dagster step, not from inside a running loop.
    """
    return asyncio.run(fetch_datasets_async(datasets, pairs, config))


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


async def _published(archive_url: str, symbols: list[str], day: date, max_concurrency: int) -> dict[str, bool | BaseException]:
    async with ArchiveClient(archive_url, max_concurrency=max_concurrency) as archive:
        outcomes = await asyncio.gather(*(archive.published("klines", s, day) for s in symbols), return_exceptions=True)
    return dict(zip(symbols, outcomes, strict=True))


def published_symbols(archive_url: str, symbols: list[str], day: date, *,
                      max_concurrency: int = 4) -> dict[str, bool | BaseException]:
    """Which symbols' 1-minute klines of ``day`` the archive has published (a CHECKSUM probe each).

    Klines are the dataset every layer needs; the archive publishes a day's
    datasets together. Per symbol: True, False (404: not yet) or the error.
    """
    for symbol in symbols:
        validate_symbol(symbol)
    return asyncio.run(_published(archive_url, symbols, day, max_concurrency))
