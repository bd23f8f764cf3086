"""Market-data sources behind one interface: every raw dataset of many (symbol, day) partitions at once.

A source is a small picklable object (so chunk workers in other processes get
a copy) with one method, :meth:`MarketSource.fetch`, returning canonical
tables (``factor_core.schemas``) with provenance. The Dagster layer chooses
one per code location (``resources/market_data.py``); nothing here imports
Dagster.

* :class:`SimulatorSource`: the deterministic simulator; one simulation per
  partition yields all of its datasets. Safe to run in several processes.
* :class:`BinanceSource`: the public archive and REST API
  (``factor_core.binance``), every dataset of a chunk fetched concurrently in
  one session; network-bound, so a step runs it in one process.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import pyarrow as pa

from factor_core import schemas
from factor_core.binance.source import BinanceSourceConfig, fetch_datasets
from factor_core import landing
from factor_core.partition_data import PartitionData
from factor_core.simulator import SimulatorConfig, simulate_day

#: Raw datasets and the asset that stores each.
DATASET_ASSETS: dict[str, str] = {
    "klines": "raw_klines",
    "trades": "raw_trades",
    "book": "raw_book",
    "funding": "raw_funding",
    "quotes": "raw_quotes",
}
DATASET_SCHEMAS: dict[str, pa.Schema] = {d: schemas.RAW_SCHEMAS[a] for d, a in DATASET_ASSETS.items()}

Pair = tuple[str, dt.date]
Fetched = dict[str, dict[Pair, PartitionData]]


class MarketSource(Protocol):
    name: str

    @property
    def parallel_safe(self) -> bool:
        """True when several processes may fetch at once (no shared rate limit)."""

    def fetch(self, datasets: Sequence[str], pairs: Sequence[Pair]) -> Fetched:
        """``{dataset: {(symbol, day): PartitionData}}`` for every requested dataset and pair, or an error
        naming every partition that failed (then nothing is returned)."""


def conform(dataset: str, symbol: str, day: dt.date, data: PartitionData, source: str) -> PartitionData:
    """``data`` cast to the dataset's canonical schema, with an error naming the partition if it cannot be."""
    what = f"{dataset} {day.isoformat()}|{symbol} ({source})"
    return PartitionData(schemas.conform(data.table, DATASET_SCHEMAS[dataset], what=what), data.provenance)


def check_request(datasets: Sequence[str], pairs: Sequence[Pair]) -> None:
    unknown = [d for d in datasets if d not in DATASET_ASSETS]
    if unknown:
        raise ValueError(f"unknown dataset(s) {unknown}; expected some of {sorted(DATASET_ASSETS)}")
    for symbol, _ in pairs:
        schemas.validate_symbol(symbol)


@dataclass(frozen=True)
class SimulatorSource:
    config: SimulatorConfig = SimulatorConfig()
    name: str = "synthetic"

    @property
    def parallel_safe(self) -> bool:
        return True

    def fetch(self, datasets: Sequence[str], pairs: Sequence[Pair]) -> Fetched:
        check_request(datasets, pairs)
        out: Fetched = {d: {} for d in datasets}
        provenance = {"source": "synthetic", "seed": str(self.config.seed), "signal_ic": str(self.config.signal_ic)}
        for symbol, day in pairs:
            simulated = simulate_day(symbol, day, self.config)  # once per partition, for every dataset
            for dataset in datasets:
                frame = getattr(simulated, dataset, None)
                if frame is None:  # a dataset this simulator version does not produce
                    table = DATASET_SCHEMAS[dataset].empty_table()
                    record = {**provenance, "note": f"the simulator produces no {dataset}"}
                else:
                    table = pa.Table.from_pandas(frame, schema=DATASET_SCHEMAS[dataset], preserve_index=False)
                    record = provenance
                out[dataset][(symbol, day)] = PartitionData(table, record)
        return out


@dataclass(frozen=True)
class BinanceSource:
    """Binance archive + REST (see ``factor_core.binance.source``)."""

    config: BinanceSourceConfig
    name: str = "binance"

    @property
    def parallel_safe(self) -> bool:
        return False  # one per-IP weight limit: one process, concurrent requests inside it

    def fetch(self, datasets: Sequence[str], pairs: Sequence[Pair]) -> Fetched:
        check_request(datasets, pairs)
        return fetch_datasets(datasets, pairs, self.config)


class LandingFetchError(ValueError):
    """Partitions the landing folder cannot provide, each with its file and reason."""


@dataclass(frozen=True)
class LandingSource:
    """Files users dropped into the landing folder (``factor_core.landing``, formats in docs/landing.md).

    Bars are required (every layer is built on them); any other dataset with no
    landed file is an empty partition whose provenance says so, so a user with
    1-minute bars only gets every layer.
    """

    root: str
    name: str = "landing"

    @property
    def parallel_safe(self) -> bool:
        return True

    def fetch(self, datasets: Sequence[str], pairs: Sequence[Pair]) -> Fetched:
        check_request(datasets, pairs)
        files = landing.scan(self.root).files
        out: Fetched = {d: {} for d in datasets}
        failures: list[str] = []
        for dataset in datasets:
            for symbol, day in pairs:
                try:
                    out[dataset][(symbol, day)] = landing.read_partition(files, dataset, symbol, day)
                except landing.NoLandedFile as exc:
                    if dataset == "klines":
                        failures.append(f"{dataset} {day.isoformat()}|{symbol}: {exc}")
                        continue
                    note = {"source": "landing", "checksum_verified": "n/a",
                            "note": f"no {dataset} file landed for this partition (in {self.root})"}
                    out[dataset][(symbol, day)] = PartitionData(DATASET_SCHEMAS[dataset].empty_table(), note)
                except landing.LandingFileError as exc:
                    failures.append(f"{dataset} {day.isoformat()}|{symbol}: {exc}")
        if failures:
            raise LandingFetchError(
                f"{len(failures)} partition(s) cannot be read from the landing folder {self.root}; nothing was "
                "stored:\n  " + "\n  ".join(failures)
            )
        return out
