"""Stored partitions read as a stream of small columnar blocks, checked on the way.

A *source* is one (symbol, data type) over the days of a replay: it opens the
day files one after the other and reads them batch by batch
(``pyarrow.parquet.ParquetFile.iter_batches`` over buffered page reads), skipping
row groups outside ``[start, end)`` by their statistics, so memory holds about
one batch per source whatever the range or the size of a row group. Each batch becomes a block:

* :class:`TradeBlock`: one row per trade (``ts`` ns, id, price, amount, side);
* :class:`BookBlock`: one row per book snapshot; the long-form ``raw_book``
  rows of a snapshot (``schemas.BOOK``) are gathered into best-first bid and
  ask levels, cut to the requested depth. A snapshot split across two batches
  is carried over until it is complete.

Checked while reading (a failure raises :class:`StoredDataError` naming the
partition, file, time and values, and how to fix it): timestamps in time
order, no null time / price / amount, sides ``bid`` / ``ask``, and in every
snapshot that is replayed: bid prices strictly falling and ask prices strictly
rising with the level, no level twice, and the best bid strictly below the best
ask (a crossed or locked book is reported, never replayed).

Book-snapshot interval (``book_snapshot_<levels>_<interval>``): a stored
snapshot is replayed when it is the first stored snapshot of its interval
bucket (``ts // interval``, UTC epoch-aligned, as tardis-machine buckets time);
interval 0 replays every stored snapshot. Snapshots are never synthesized
between stored ones.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from numba import njit

from factor_core.partition_store import partition_label, rematerialize_hint
from factor_core.replay.errors import StoredDataError
from factor_core.replay.options import DataType, format_time

#: Rows read from Parquet at a time per source (bounded memory per client).
BATCH_ROWS = 65_536
SIDE_BUY, SIDE_SELL, SIDE_UNKNOWN = 1, -1, 0
_TRADE_COLUMNS = ["trade_id", "ts", "price", "qty", "is_buyer_maker"]
_BOOK_COLUMNS = ["ts", "side", "level", "price", "qty"]


@dataclass(frozen=True)
class DayFile:
    """One stored partition of a source."""

    asset: str
    symbol: str
    day: str
    path: Path

    @property
    def label(self) -> str:
        return partition_label({"date": self.day, "symbol": self.symbol})

    def fail(self, problem: str) -> StoredDataError:
        return StoredDataError(
            f"{self.asset} partition {self.label} (file {self.path}): {problem}. Fix the source data and "
            f"re-materialize it: {rematerialize_hint(self.asset, {'date': self.day, 'symbol': self.symbol})}"
        )


@dataclass
class TradeBlock:
    ts: np.ndarray  # int64 ns since the epoch
    trade_id: np.ndarray  # int64
    price: np.ndarray  # float64
    amount: np.ndarray  # float64, base units
    side: np.ndarray  # int8: +1 buy aggressor, -1 sell aggressor, 0 unknown

    def __len__(self) -> int:
        return len(self.ts)

    def slice(self, a: int, b: int) -> TradeBlock:
        return TradeBlock(self.ts[a:b], self.trade_id[a:b], self.price[a:b], self.amount[a:b], self.side[a:b])

    @staticmethod
    def concat(blocks: Sequence[TradeBlock]) -> TradeBlock:
        return TradeBlock(*(np.concatenate([getattr(b, f) for b in blocks]) for f in ("ts", "trade_id", "price", "amount", "side")))


@dataclass
class BookBlock:
    """Snapshots ``i``: levels ``lo[i]:lo[i+1]`` of ``price`` / ``amount``, the first ``n_bids[i]`` bids (best first), then asks."""

    ts: np.ndarray
    lo: np.ndarray  # int64, len n + 1, lo[0] == 0
    n_bids: np.ndarray  # int32
    price: np.ndarray
    amount: np.ndarray

    def __len__(self) -> int:
        return len(self.ts)

    def slice(self, a: int, b: int) -> BookBlock:
        first, last = self.lo[a], self.lo[b]
        return BookBlock(self.ts[a:b], self.lo[a : b + 1] - first, self.n_bids[a:b], self.price[first:last], self.amount[first:last])

    @staticmethod
    def concat(blocks: Sequence[BookBlock]) -> BookBlock:
        shifts = np.cumsum([0] + [int(b.lo[-1]) for b in blocks[:-1]])
        lo = np.concatenate([np.zeros(1, np.int64)] + [b.lo[1:] + s for b, s in zip(blocks, shifts, strict=True)])
        return BookBlock(
            np.concatenate([b.ts for b in blocks]), lo, np.concatenate([b.n_bids for b in blocks]),
            np.concatenate([b.price for b in blocks]), np.concatenate([b.amount for b in blocks]),
        )


Block = TradeBlock | BookBlock

# Error codes of the book layout kernel.
_OK, _BIDS_ORDER, _ASKS_ORDER, _CROSSED, _DUPLICATE_LEVEL = 0, 1, 2, 3, 4


@njit(cache=True, nogil=True)
def _book_layout(ts, is_ask, level, price, qty, order, depth, interval_ns, last_bucket, start_ns, end_ns):
    """Group long-form rows (visited in ``order``: by ts, bids before asks, by level) into snapshots.

    Returns the snapshot arrays, counts, the last interval bucket, and an error
    (code, row of the offending level, row of the level it conflicts with).
    """
    n = len(order)
    snap_ts = np.empty(n, np.int64)
    lo = np.zeros(n + 1, np.int64)
    n_bids = np.empty(n, np.int32)
    lv_price = np.empty(n, np.float64)
    lv_qty = np.empty(n, np.float64)
    k = 0
    m = 0
    i = 0
    while i < n:
        t = ts[order[i]]
        j = i
        while j < n and ts[order[j]] == t:
            j += 1
        if t < start_ns or t >= end_ns:
            i = j
            continue
        if interval_ns > 0:
            bucket = t // interval_ns
            if bucket == last_bucket:
                i = j
                continue
            last_bucket = bucket
        first_bid = -1
        first_ask = -1
        prev = -1
        nb = 0
        na = 0
        for r in range(i, j):
            row = order[r]
            if prev >= 0 and is_ask[row] == is_ask[prev]:
                if level[row] == level[prev]:
                    return snap_ts, lo, n_bids, lv_price, lv_qty, k, m, last_bucket, _DUPLICATE_LEVEL, row, prev
                if not is_ask[row] and price[row] >= price[prev]:
                    return snap_ts, lo, n_bids, lv_price, lv_qty, k, m, last_bucket, _BIDS_ORDER, row, prev
                if is_ask[row] and price[row] <= price[prev]:
                    return snap_ts, lo, n_bids, lv_price, lv_qty, k, m, last_bucket, _ASKS_ORDER, row, prev
            if is_ask[row]:
                if first_ask < 0:
                    first_ask = row
                if na < depth:
                    lv_price[m] = price[row]
                    lv_qty[m] = qty[row]
                    m += 1
                    na += 1
            else:
                if first_bid < 0:
                    first_bid = row
                if nb < depth:
                    lv_price[m] = price[row]
                    lv_qty[m] = qty[row]
                    m += 1
                    nb += 1
            prev = row
        if first_bid >= 0 and first_ask >= 0 and price[first_bid] >= price[first_ask]:
            return snap_ts, lo, n_bids, lv_price, lv_qty, k, m, last_bucket, _CROSSED, first_bid, first_ask
        snap_ts[k] = t
        n_bids[k] = nb
        k += 1
        lo[k] = m
        i = j
    return snap_ts, lo, n_bids, lv_price, lv_qty, k, m, last_bucket, _OK, -1, -1


def _ns(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    return np.asarray(column.cast(pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)


def _no_nulls(batch: pa.RecordBatch, columns: Sequence[str], file: DayFile) -> None:
    for name in columns:
        nulls = batch.column(name).null_count
        if nulls:
            raise file.fail(f"column {name!r} has {nulls} null value(s); every row needs a {name}")


class Source:
    """One (symbol, data type) over its day files, as blocks; see the module docstring."""

    def __init__(self, symbol: str, data_type: DataType, files: Sequence[DayFile], start_ns: int, end_ns: int,
                 batch_rows: int = BATCH_ROWS):
        self.symbol, self.data_type, self.files = symbol, data_type, list(files)
        self.start_ns, self.end_ns, self.batch_rows = start_ns, end_ns, batch_rows
        self.rows_read = 0
        self._last_ts = np.iinfo(np.int64).min
        self._last_bucket = np.iinfo(np.int64).min
        self._blocks = self._iterate()
        self._open: pq.ParquetFile | None = None

    def next_block(self) -> Block | None:
        """The next non-empty block, or None when the source is exhausted."""
        return next(self._blocks, None)

    def close(self) -> None:
        self._blocks.close()
        if self._open is not None:
            self._open.close()
            self._open = None

    def _row_groups(self, parquet: pq.ParquetFile) -> list[int]:
        meta = parquet.metadata
        ts_index = meta.schema.to_arrow_schema().get_field_index("ts")
        keep = []
        for i in range(meta.num_row_groups):
            stats = meta.row_group(i).column(ts_index).statistics
            if stats is not None and stats.has_min_max and (stats.max_raw < self.start_ns or stats.min_raw >= self.end_ns):
                continue
            keep.append(i)
        return keep

    def _batches(self, file: DayFile, columns: list[str]) -> Iterator[pa.RecordBatch]:
        try:
            # Buffered reads without pre-buffering: pages are read as batches need them, so memory holds
            # about one batch per source instead of a whole row group (a day can be one row group).
            self._open = pq.ParquetFile(file.path, buffer_size=1 << 16, pre_buffer=False)
            groups = self._row_groups(self._open)
            if groups:
                yield from self._open.iter_batches(batch_size=self.batch_rows, row_groups=groups, columns=columns)
        except (pa.ArrowInvalid, OSError) as exc:
            raise file.fail(f"not a readable Parquet file ({exc})") from exc
        finally:
            if self._open is not None:
                self._open.close()
                self._open = None

    def _check_order(self, ts: np.ndarray, file: DayFile) -> None:
        if not len(ts):
            return
        previous = np.concatenate(([self._last_ts], ts[:-1]))
        bad = np.flatnonzero(ts < previous)
        if len(bad):
            i = int(bad[0])
            raise file.fail(
                f"rows are not in time order: row {self.rows_read + i} at {format_time(int(ts[i]))} comes after "
                f"{format_time(int(previous[i]))}; stored partitions must be sorted by ts"
            )
        self._last_ts = int(ts[-1])

    def _iterate(self) -> Iterator[Block]:
        for file in self.files:
            reader = self._book_blocks(file) if self.data_type.is_book else self._trade_blocks(file)
            for block in reader:
                if len(block):
                    yield block
            if self._last_ts >= self.end_ns:
                return

    def _trade_blocks(self, file: DayFile) -> Iterator[TradeBlock]:
        for batch in self._batches(file, _TRADE_COLUMNS):
            _no_nulls(batch, ("trade_id", "ts", "price", "qty"), file)
            ts = _ns(batch.column("ts"))
            self._check_order(ts, file)
            self.rows_read += len(ts)
            a, b = np.searchsorted(ts, [self.start_ns, self.end_ns], side="left")
            if a == b:
                if b < len(ts):
                    return  # past the end of the range
                continue
            maker = batch.column("is_buyer_maker").slice(a, b - a)
            side = np.where(pc.fill_null(maker, False).to_numpy(zero_copy_only=False), SIDE_SELL, SIDE_BUY).astype(np.int8)
            if maker.null_count:
                side[np.asarray(maker.is_null().to_numpy(zero_copy_only=False))] = SIDE_UNKNOWN
            yield TradeBlock(
                ts[a:b],
                np.asarray(batch.column("trade_id").slice(a, b - a).to_numpy(), np.int64),
                np.asarray(batch.column("price").slice(a, b - a).to_numpy(), np.float64),
                np.asarray(batch.column("qty").slice(a, b - a).to_numpy(), np.float64),
                side,
            )

    def _book_blocks(self, file: DayFile) -> Iterator[BookBlock]:
        carry: pa.Table | None = None  # rows of the last snapshot seen, which may continue in the next batch
        for batch in self._batches(file, _BOOK_COLUMNS):
            _no_nulls(batch, ("ts", "side", "level", "price", "qty"), file)
            ts = _ns(batch.column("ts"))
            self._check_order(ts, file)
            self.rows_read += len(ts)
            if ts[0] >= self.end_ns:
                break  # past the end of the range
            table = pa.Table.from_batches([batch])
            table = table if carry is None else pa.concat_tables([carry, table])
            ts_all = _ns(table.column("ts"))
            cut = int(np.searchsorted(ts_all, ts_all[-1], side="left"))
            carry, complete = table.slice(cut), table.slice(0, cut)
            if complete.num_rows:
                yield self._snapshots(complete, file)
        if carry is not None and carry.num_rows:
            yield self._snapshots(carry, file)

    def _snapshots(self, table: pa.Table, file: DayFile) -> BookBlock:
        ts = _ns(table.column("ts"))
        side = table.column("side")
        is_ask = pc.equal(side, "ask").to_numpy(zero_copy_only=False)
        is_bid = pc.equal(side, "bid").to_numpy(zero_copy_only=False)
        if not (is_ask | is_bid).all():
            row = int(np.flatnonzero(~(is_ask | is_bid))[0])
            raise file.fail(f"row at {format_time(int(ts[row]))} has side {side[row].as_py()!r}; sides are 'bid' or 'ask'")
        level = np.asarray(table.column("level").to_numpy(), np.int64)
        price = np.asarray(table.column("price").to_numpy(), np.float64)
        qty = np.asarray(table.column("qty").to_numpy(), np.float64)
        order = np.lexsort((level, is_ask, ts))
        interval_ns = self.data_type.interval_ms * 1_000_000
        out = _book_layout(ts, is_ask, level, price, qty, order, self.data_type.depth, interval_ns,
                           self._last_bucket, self.start_ns, self.end_ns)
        snap_ts, lo, n_bids, lv_price, lv_qty, k, m, self._last_bucket, code, row, other = out
        if code != _OK:
            raise file.fail(self._layout_problem(code, ts, is_ask, level, price, row, other))
        return BookBlock(snap_ts[:k], lo[: k + 1], n_bids[:k], lv_price[:m], lv_qty[:m])

    @staticmethod
    def _layout_problem(code, ts, is_ask, level, price, row, other) -> str:
        when = format_time(int(ts[row]))
        price = price.tolist()
        side = "ask" if is_ask[row] else "bid"
        if code == _CROSSED:
            return (f"the book snapshot at {when} is crossed: best bid {price[row]!r} >= best ask {price[other]!r}; "
                    "a crossed or locked book is not replayed")
        if code == _DUPLICATE_LEVEL:
            return f"the book snapshot at {when} has {side} level {int(level[row])} twice"
        direction = "fall" if code == _BIDS_ORDER else "rise"
        return (f"the book snapshot at {when} has crossed {side} levels: level {int(level[other])} at {price[other]!r}, "
                f"level {int(level[row])} at {price[row]!r} ({side} prices must strictly {direction} with the level)")
