"""The fill model: how a strategy's orders meet the replayed market.

* **Market orders** fill at once against the book in force at the time of the
  order (the latest book snapshot of the symbol at or before it), walking the
  levels from the best one, one fill per level, as deep as the order needs and
  the snapshot shows. What the snapshot cannot fill is cancelled (immediate or
  cancel). Taker fee. A strategy's own fills consume the snapshot: a second
  order before the next snapshot meets only what the first one left.
* **Limit orders** that are marketable when placed (a buy at or above the best
  ask) fill like a market order down to their limit price (taker fee); the rest
  rests. A resting limit order fills when a later trade of the symbol prints
  *through* its price: a buy when a trade prints strictly below its limit, a
  sell strictly above, at the limit price, for at most that trade's amount
  (shared among the strategy's resting orders by price, then time priority).
  A trade at exactly the limit price does not fill it: the queue ahead of the
  order is unknown, so the model does not assume it was reached. Maker fee.
* Orders act with no latency; strategies running side by side do not see or
  consume each other's orders (each trades as if alone in the market).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from factor_core.replay.engine.events import BookSnapshot, Trade
from factor_core.replay.engine.orders import BUY, SELL, Order


@dataclass
class BookView:
    """A strategy's view of one symbol's latest snapshot, minus what its own fills took from it."""

    snapshot: BookSnapshot | None = None
    taken: dict[tuple[str, int], float] = field(default_factory=dict)  # (side, level index) -> base units

    def update(self, snapshot: BookSnapshot) -> None:
        self.snapshot, self.taken = snapshot, {}

    def touch(self, side: str) -> float | None:
        """The price an order of ``side`` would meet first (best ask for a buy, best bid for a sell)."""
        for price, _ in self.available(side):
            return price
        return None

    def available(self, side: str):
        """``(price, amount left)`` of the levels a ``side`` order walks, best first."""
        if self.snapshot is None:
            return
        levels, book_side = (self.snapshot.asks, "ask") if side == BUY else (self.snapshot.bids, "bid")
        for i, (price, amount) in enumerate(levels):
            left = amount - self.taken.get((book_side, i), 0.0)
            if left > 0:
                yield price, left

    def take(self, side: str, qty: float, limit: float | None) -> list[tuple[float, float]]:
        """Walk the book for ``qty`` (not past ``limit``); returns the (price, qty) taken, marks them consumed."""
        if self.snapshot is None:
            return []
        levels, book_side = (self.snapshot.asks, "ask") if side == BUY else (self.snapshot.bids, "bid")
        out = []
        remaining = qty
        for i, (price, amount) in enumerate(levels):
            if remaining <= 0:
                break
            if limit is not None and (price > limit if side == BUY else price < limit):
                break
            left = amount - self.taken.get((book_side, i), 0.0)
            if left <= 0:
                continue
            size = min(left, remaining)
            self.taken[(book_side, i)] = self.taken.get((book_side, i), 0.0) + size
            out.append((price, size))
            remaining -= size
        return out


def prints_through(side: str, limit_price: float, trade_price: float) -> bool:
    """Does a trade at ``trade_price`` fill a resting ``side`` order at ``limit_price``? (strictly through it)"""
    return trade_price < limit_price if side == BUY else trade_price > limit_price


def crosses(order: Order, trade: Trade) -> bool:
    return prints_through(order.side, order.limit_price, trade.price)


def priority(order: Order) -> tuple[float, int]:
    """Price, then time priority: highest buy / lowest sell first, then the earliest order."""
    return (-order.limit_price if order.side == BUY else order.limit_price, order.id)


def resting_fills(orders: list[Order], trade: Trade) -> list[tuple[Order, float]]:
    """(order, qty) that ``trade`` fills among resting ``orders`` of its symbol, at most its amount in total."""
    left = trade.amount
    out = []
    for order in sorted((o for o in orders if o.is_open and crosses(o, trade)), key=priority):
        if left <= 0:
            break
        size = min(order.remaining, left)
        if size > 0:
            out.append((order, size))
            left -= size
    return out


__all__ = ["BookView", "crosses", "prints_through", "resting_fills", "BUY", "SELL"]
