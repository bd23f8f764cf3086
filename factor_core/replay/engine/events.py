"""The events a strategy sees, and how they are built from replay messages or straight from merged blocks.

Both builders give equal events for the same stored rows: times are
microseconds since the epoch (the stored nanoseconds floored, as the server
stamps messages), trade ids strings, prices and amounts the stored float64
values (the server's JSON numbers parse back to them exactly), book levels
``(price, amount)`` tuples best first. Events are named tuples: immutable,
compared by value, and cheap to create (a frozen dataclass costs ~4x more).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

from factor_core.replay.blocks import SIDE_BUY, SIDE_SELL, BookBlock, TradeBlock
from factor_core.replay.merge import MergedBatch

Level = tuple[float, float]
_SIDE_NAMES = {SIDE_BUY: "buy", SIDE_SELL: "sell", 0: "unknown"}


class Trade(NamedTuple):
    ts_us: int
    symbol: str
    id: str
    price: float
    amount: float  # base units
    side: str  # aggressor: "buy", "sell" or "unknown"


class BookSnapshot(NamedTuple):
    ts_us: int
    symbol: str
    name: str  # the data type it came from, e.g. "book_snapshot_10_0ms"
    bids: tuple[Level, ...]  # best (highest) first
    asks: tuple[Level, ...]  # best (lowest) first

    @property
    def best_bid(self) -> float | None:
        return self.bids[0][0] if self.bids else None

    @property
    def best_ask(self) -> float | None:
        return self.asks[0][0] if self.asks else None

    @property
    def mid(self) -> float | None:
        if not self.bids or not self.asks:
            return None
        return (self.bids[0][0] + self.asks[0][0]) / 2.0


class Timer(NamedTuple):
    ts_us: int
    name: str


Event = Trade | BookSnapshot


class _IsoParser:
    """``2024-01-02T00:00:00.082264Z`` -> microseconds, the date part cached (it rarely changes)."""

    def __init__(self) -> None:
        self._date, self._day_us = "", 0

    def __call__(self, text: str) -> int:
        date = text[:10]
        if date != self._date:
            day = dt.date.fromisoformat(date)
            self._date, self._day_us = date, (day - dt.date(1970, 1, 1)).days * 86_400_000_000
        frac = text[20:26] if len(text) > 20 and text[19] == "." else "0"
        seconds = int(text[11:13]) * 3600 + int(text[14:16]) * 60 + int(text[17:19])
        return self._day_us + seconds * 1_000_000 + int(frac.ljust(6, "0"))


class MessageDecoder:
    """Replay messages (parsed JSON) -> events; other message types are refused by name."""

    def __init__(self) -> None:
        self._iso = _IsoParser()

    def __call__(self, message: Mapping) -> Event:
        kind = message.get("type")
        if kind == "trade":
            return Trade(self._iso(message["timestamp"]), message["symbol"], str(message["id"]),
                         float(message["price"]), float(message["amount"]), message["side"])
        if kind == "book_snapshot":
            return BookSnapshot(
                self._iso(message["timestamp"]), message["symbol"], message["name"],
                tuple((float(level["price"]), float(level["amount"])) for level in message["bids"]),
                tuple((float(level["price"]), float(level["amount"])) for level in message["asks"]),
            )
        raise ValueError(f"replay message of type {kind!r} is not an engine event (expected trade or book_snapshot)")


def _trade_events(block: TradeBlock, symbol: str) -> list[Trade]:
    ts = (block.ts // 1000).tolist()
    ids = block.trade_id.tolist()
    price, amount, side = block.price.tolist(), block.amount.tolist(), block.side.tolist()
    return [Trade(ts[i], symbol, str(ids[i]), price[i], amount[i], _SIDE_NAMES[side[i]]) for i in range(len(ts))]


def _book_events(block: BookBlock, symbol: str, name: str) -> list[BookSnapshot]:
    ts = (block.ts // 1000).tolist()
    lo, n_bids = block.lo.tolist(), block.n_bids.tolist()
    levels = list(zip(block.price.tolist(), block.amount.tolist(), strict=True))
    out = []
    for i in range(len(ts)):
        first, split, last = lo[i], lo[i] + n_bids[i], lo[i + 1]
        out.append(BookSnapshot(ts[i], symbol, name, tuple(levels[first:split]), tuple(levels[split:last])))
    return out


def batch_events(batch: MergedBatch, sources) -> list[Event]:
    """The events of a merged round of raw blocks, in merged order (``sources``: the plan's sources)."""
    per_part = []
    for index, part in zip(batch.sources, batch.parts, strict=True):
        source = sources[index]
        if source.data_type.is_book:
            per_part.append(_book_events(part, source.symbol, source.data_type.name))
        else:
            per_part.append(_trade_events(part, source.symbol))
    if batch.order is None:
        return per_part[0]
    flat = [event for events in per_part for event in events]
    return [flat[i] for i in np.asarray(batch.order).tolist()]
