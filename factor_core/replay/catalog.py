"""What the server can replay: registered symbols and stored partitions, checked before a stream starts.

:meth:`ReplayCatalog.plan` turns a :class:`ReplayRequest` into a
:class:`ReplayPlan` (the day files of every source), or refuses it *before*
anything is streamed, naming what is wrong:

* an exchange other than the one served, a symbol that is not registered
  (``factor-pipeline symbols add``): :class:`ReplayNotFoundError`;
* partitions of the range that were never materialized, all of them listed with
  the command that builds them: :class:`ReplayNotFoundError`;
* stored partitions that cannot be replayed: quarantined by a failed blocking
  quality check, columns of the wrong type, or a ``raw_book`` holding depth
  bands (futures ``bookDepth``) instead of price levels: :class:`StoredDataError`.

Only Parquet footers are read here, so planning a long range is cheap; the rows
themselves are checked as they are streamed (``factor_core.replay.blocks``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from factor_core.partition_store import PartitionStore, failed_checks, partition_label
from factor_core.replay.blocks import BATCH_ROWS, DayFile, Source
from factor_core.replay.errors import ReplayNotFoundError, StoredDataError
from factor_core.replay.merge import MergeCursor
from factor_core.replay.options import DataType, ReplayRequest
from factor_core.schemas import STORED_COLUMNS

DEFAULT_EXCHANGE = "binance"
_SHOWN = 12


def stored_symbols(store: PartitionStore) -> list[str]:
    """Symbols with at least one stored ``raw_trades`` or ``raw_book`` partition folder."""
    found = set()
    for asset in ("raw_trades", "raw_book"):
        folder = Path(store.root) / asset
        if folder.is_dir():
            found |= {p.name.split("=", 1)[1] for p in folder.glob("symbol=*") if p.is_dir()}
    return sorted(found)


@dataclass(frozen=True)
class PlannedSource:
    symbol: str
    data_type: DataType
    files: tuple[DayFile, ...]


@dataclass(frozen=True)
class ReplayPlan:
    """A request the catalog accepted: its sources in tie-rule order (symbol, then data type)."""

    request: ReplayRequest
    exchange: str
    sources: tuple[PlannedSource, ...]

    def open(self, batch_rows: int = BATCH_ROWS, wrap: Callable[[Source], object] | None = None) -> MergeCursor:
        """A merged cursor over every source (``wrap`` may turn each into another block source, e.g. an encoder).

        Close it when done: it holds open files.
        """
        request = self.request
        sources = [Source(s.symbol, s.data_type, s.files, request.start_ns, request.end_ns, batch_rows) for s in self.sources]
        return MergeCursor([wrap(s) if wrap else s for s in sources], _concat)


def _concat(blocks):
    return type(blocks[0]).concat(blocks)


def _footer_problem(path: Path, asset: str) -> str | None:
    try:
        schema = pq.read_schema(path)
    except (pa.ArrowInvalid, OSError) as exc:
        return f"file {path} is not a readable Parquet file ({exc})"
    failures = failed_checks(schema)
    if failures:
        return f"it failed blocking quality check(s) {failures} when it was materialized"
    for name, expected in STORED_COLUMNS[asset].items():
        if name not in schema.names:
            return f"file {path} has no column {name!r} (found {schema.names})"
        found = schema.field(name).type
        if not (found.equals(expected) or (pa.types.is_string(expected) and pa.types.is_large_string(found))):
            return f"file {path}: column {name!r} has type {found}, expected {expected}"
    if asset == "raw_book":
        meta = pq.read_metadata(path)
        price = schema.get_field_index("price")
        nulls = sum((meta.row_group(i).column(price).statistics or _NoStats).null_count for i in range(meta.num_row_groups))
        if meta.num_rows and nulls == meta.num_rows:
            return ("it holds depth bands (band_pct, e.g. Binance futures bookDepth), not price levels: book snapshots "
                    "need top-N levels (BINANCE_BOOK_SOURCE=collector, a Tardis book_snapshot file, or the simulator)")
    return None


class _NoStats:
    null_count = 0


@dataclass
class ReplayCatalog:
    """The replayable data under ``store``.

    ``registered_symbols`` returns the symbols a request may name (the CLI
    passes the Dagster instance's dynamic partitions; called per request, so
    symbols registered while the server runs are seen). None = the symbols
    that have stored raw_trades / raw_book partitions.
    """

    store: PartitionStore
    registered_symbols: Callable[[], Iterable[str]] | None = None
    exchange: str = DEFAULT_EXCHANGE
    _checked: dict = field(default_factory=dict, repr=False)  # path -> (mtime_ns, size, problem)

    def symbols(self) -> list[str]:
        if self.registered_symbols is None:
            return stored_symbols(self.store)
        return sorted(set(self.registered_symbols()))

    def _problem(self, path: Path, asset: str) -> str | None:
        stat = path.stat()
        key = (stat.st_mtime_ns, stat.st_size)
        cached = self._checked.get(path)
        if cached is None or cached[0] != key:
            cached = (key, _footer_problem(path, asset))
            self._checked[path] = cached
        return cached[1]

    def plan(self, request: ReplayRequest) -> ReplayPlan:
        if request.exchange is not None and request.exchange.lower() != self.exchange.lower():
            raise ReplayNotFoundError(
                f"options.exchange {request.exchange!r}: this server replays the stored {self.exchange!r} data "
                f"(set it with `factor-pipeline replay serve --exchange`), or leave exchange out"
            )
        known = set(self.symbols())
        unknown = [s for s in request.symbols if s not in known]
        if unknown:
            shown = ", ".join(sorted(known)[:20]) or "none"
            raise ReplayNotFoundError(
                f"symbol(s) {unknown} are not registered (registered: {shown}); register them with "
                f"`factor-pipeline symbols add {' '.join(unknown)}` and materialize raw_trades / raw_book for the range"
            )
        days = request.days
        missing: dict[str, list[str]] = {}
        unusable: list[str] = []
        sources = []
        for symbol in request.symbols:
            for data_type in request.data_types:
                files = []
                for day in days:
                    dims = {"date": day, "symbol": symbol}
                    path = self.store.path(data_type.asset, dims)
                    if not path.exists():
                        missing.setdefault(data_type.asset, []).append(partition_label(dims))
                        continue
                    problem = self._problem(path, data_type.asset)
                    if problem:
                        unusable.append(f"{data_type.asset} partition {partition_label(dims)}: {problem}")
                    files.append(DayFile(data_type.asset, symbol, day, path))
                sources.append(PlannedSource(symbol, data_type, tuple(files)))
        if missing:
            raise ReplayNotFoundError(self._missing_message(missing))
        if unusable:
            more = f" (and {len(unusable) - 3} more)" if len(unusable) > 3 else ""
            raise StoredDataError(
                "; ".join(dict.fromkeys(unusable[:3])) + more
                + ". Fix the source data and re-materialize those partitions before replaying them"
            )
        return ReplayPlan(request, self.exchange, tuple(sources))

    @staticmethod
    def _missing_message(missing: dict[str, list[str]]) -> str:
        parts = []
        for asset, labels in missing.items():
            unique = sorted(set(labels))
            shown = ", ".join(unique[:_SHOWN]) + (f" and {len(unique) - _SHOWN} more" if len(unique) > _SHOWN else "")
            parts.append(f"{asset}: {shown}")
        assets = ",".join(missing)
        first = sorted({label for labels in missing.values() for label in labels})
        return (
            "the range includes partitions that were never materialized: " + "; ".join(parts)
            + f". Materialize them first, e.g. `dagster asset materialize -m factor_assets --select {assets} "
            f'--partition "{first[0]}"` (or --partition-range), then replay'
        )


__all__ = ["DEFAULT_EXCHANGE", "PlannedSource", "ReplayCatalog", "ReplayPlan", "stored_symbols"]
