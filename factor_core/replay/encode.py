"""Normalized tardis-machine messages, encoded a block at a time, framed for HTTP or WebSocket.

Message shapes (tardis-machine's normalized ``trade`` and ``book_snapshot``,
field order included)::

    {"type":"trade","symbol":"BTCUSDT","exchange":"binance","id":"2557000000000","price":34878.61,
     "amount":0.26051,"side":"sell","timestamp":"2024-01-02T00:00:00.082264Z","localTimestamp":"..."}
    {"type":"book_snapshot","symbol":"BTCUSDT","exchange":"binance","name":"book_snapshot_10_0ms","depth":10,
     "interval":0,"bids":[{"price":34878.6,"amount":1.2},...],"asks":[...],"timestamp":"...","localTimestamp":"..."}

* ``id`` is the stored ``trade_id`` as a string (tardis-machine's type for ids);
* ``side`` is the aggressor (``is_buyer_maker`` True -> ``sell``), ``unknown`` if not stored;
* ``price`` / ``amount`` parse back to the stored float64 exactly, so a client recovers
  the stored value bit for bit: the fixed-point decimal with the fewest decimals (at most
  15) that does, else Arrow's shortest round-trip text (``1e-20``); NaN / infinite -> ``null``;
* ``timestamp`` is the stored time floored to the microsecond (ISO 8601, ``Z``);
  ``localTimestamp`` equals it: stored partitions keep no arrival time;
* ``bids`` best first (highest price), ``asks`` best first (lowest price), at most ``depth`` each;
  ``interval`` in milliseconds, as tardis-machine reports it.

The JSON text is written by the Numba kernels of
:mod:`factor_core.replay.text_kernels`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from factor_core.replay import text_kernels as tk
from factor_core.replay.blocks import BookBlock, Source, TradeBlock
from factor_core.replay.merge import MergedBatch

NDJSON, WEBSOCKET = tk.NDJSON, tk.WEBSOCKET


@dataclass
class EncodedBlock:
    """Framed message ``i`` is ``data[offsets[i]:offsets[i+1]]``, stamped ``ts[i]`` (ns)."""

    ts: np.ndarray
    data: np.ndarray
    offsets: np.ndarray
    mode: int

    def __len__(self) -> int:
        return len(self.ts)

    def slice(self, a: int, b: int) -> EncodedBlock:
        first, last = self.offsets[a], self.offsets[b]
        return EncodedBlock(self.ts[a:b], self.data[first:last], self.offsets[a : b + 1] - first, self.mode)

    @staticmethod
    def concat(blocks: Sequence[EncodedBlock]) -> EncodedBlock:
        shifts = np.cumsum([0] + [int(b.offsets[-1]) for b in blocks[:-1]])
        offsets = np.concatenate([np.zeros(1, np.int64)] + [b.offsets[1:] + s for b, s in zip(blocks, shifts, strict=True)])
        data = np.concatenate([b.data for b in blocks])
        return EncodedBlock(np.concatenate([b.ts for b in blocks]), data, offsets, blocks[0].mode)


def unframe(data: bytes | np.ndarray, mode: int) -> list[str]:
    """The JSON texts of framed messages (for tests and tools; clients use their own parser)."""
    raw = bytes(data)
    if mode == NDJSON:
        return raw.decode().splitlines()
    out, pos = [], 0
    while pos < len(raw):
        size, pos = raw[pos + 1] & 0x7F, pos + 2
        if size == 126:
            size, pos = int.from_bytes(raw[pos : pos + 2], "big"), pos + 2
        elif size == 127:
            size, pos = int.from_bytes(raw[pos : pos + 8], "big"), pos + 8
        out.append(raw[pos : pos + size].decode())
        pos += size
    return out


@dataclass
class Numbers:
    """Float64 values ready for the text kernels: ``mantissa / 10**decimals``, or Arrow text where that fails."""

    mantissa: np.ndarray
    decimals: np.ndarray  # >= 0, or tk.FALLBACK (text in offsets/data), or tk.NULL
    offsets: np.ndarray  # value i's fallback text is data[offsets[i]:offsets[i+1]] (empty unless FALLBACK)
    data: np.ndarray

    @staticmethod
    def of(values: np.ndarray) -> Numbers:
        values = np.ascontiguousarray(values, dtype=np.float64)
        mantissa, decimals = tk.decimal_parts(values)
        offsets = np.zeros(len(values) + 1, np.int64)
        data = np.zeros(0, np.uint8)
        fallback = np.flatnonzero(decimals == tk.FALLBACK)
        if len(fallback):
            text = pc.cast(pa.array(values[fallback], pa.float64()), pa.string())
            _, text_offsets, text_data = text.buffers()
            ends = np.frombuffer(text_offsets, np.int32, count=len(text) + 1, offset=text.offset * 4).astype(np.int64)
            lengths = np.zeros(len(values), np.int64)
            lengths[fallback] = np.diff(ends)
            offsets[1:] = np.cumsum(lengths)
            data = np.frombuffer(text_data, np.uint8)[ends[0]:ends[-1]]
        return Numbers(mantissa, decimals, offsets, data)

    def args(self) -> tuple:
        return self.mantissa, self.decimals, self.offsets, self.data


def encode_trades(block: TradeBlock, symbol: str, exchange: str, mode: int) -> EncodedBlock:
    prefix = tk.text(f'{{"type":"trade","symbol":"{symbol}","exchange":"{exchange}","id":"')
    out, offsets = tk.encode_trades(mode, prefix, block.ts, block.trade_id, *Numbers.of(block.price).args(),
                                    *Numbers.of(block.amount).args(), block.side, *tk.TRADE_PIECES, tk.P10,
                                    tk.day_cache())
    return EncodedBlock(block.ts, out, offsets, mode)


def encode_books(block: BookBlock, symbol: str, exchange: str, name: str, depth: int, interval_ms: int,
                 mode: int) -> EncodedBlock:
    prefix = tk.text(
        f'{{"type":"book_snapshot","symbol":"{symbol}","exchange":"{exchange}","name":"{name}",'
        f'"depth":{depth},"interval":{interval_ms},"bids":['
    )
    out, offsets = tk.encode_books(mode, prefix, block.ts, block.lo, block.n_bids, *Numbers.of(block.price).args(),
                                   *Numbers.of(block.amount).args(), *tk.BOOK_PIECES, tk.P10, tk.day_cache())
    return EncodedBlock(block.ts, out, offsets, mode)


class EncodingSource:
    """A :class:`Source` whose blocks come out as framed messages."""

    def __init__(self, source: Source, exchange: str, mode: int):
        self.source = source
        t = source.data_type
        if t.is_book:
            self._encode = lambda b: encode_books(b, source.symbol, exchange, t.name, t.depth, t.interval_ms, mode)
        else:
            self._encode = lambda b: encode_trades(b, source.symbol, exchange, mode)

    def next_block(self) -> EncodedBlock | None:
        block = self.source.next_block()
        return None if block is None else self._encode(block)

    @property
    def rows_read(self) -> int:
        return self.source.rows_read

    def close(self) -> None:
        self.source.close()


@dataclass
class FramedChunk:
    """Framed messages ready to write: message ``i`` ends at byte ``ends[i]``, its timestamp is ``ts[i]`` (ns)."""

    data: np.ndarray
    ends: np.ndarray
    ts: np.ndarray

    def __len__(self) -> int:
        return len(self.ts)


def chunk_of(batch: MergedBatch[EncodedBlock]) -> FramedChunk:
    """A merged round as one buffer; a round from a single source is passed on without a copy."""
    if batch.order is None:
        part = batch.parts[0]
        return FramedChunk(part.data, part.offsets[1:], batch.ts)
    merged = EncodedBlock.concat(batch.parts)
    data, ends = tk.gather(merged.data, merged.offsets, batch.order.astype(np.int64))
    return FramedChunk(data, ends, batch.ts)
