"""Orders, fills and the accounting of one strategy: positions, cash, realized and unrealized PnL, fees.

Accounting (average cost, all amounts in the quote currency, USD(T)):

* a fill of ``q`` base units at ``p`` with fee ``f`` moves cash by ``-(±q·p) - f``
  (``+`` for a buy) and the position by ``±q``;
* a fill that adds to the position (or opens one) moves its average cost to the
  quantity-weighted mean; one that reduces it realizes ``(p - avg) · closed``
  (sign of the position), and a fill through zero opens the rest at ``p``;
* unrealized PnL is ``position · (mark - avg)``; the mark is the symbol's last
  trade price (before the first trade, the book's mid);
* so equity ``= cash + Σ position · mark`` and
  ``equity - initial cash = realized + unrealized - fees`` (tested).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

BUY, SELL = "buy", "sell"
MARKET, LIMIT = "market", "limit"
TAKER, MAKER = "taker", "maker"


class OrderError(ValueError):
    """An order a strategy must not place (a symbol it does not trade, a bad quantity or price)."""


@dataclass
class Order:
    id: int
    symbol: str
    side: str
    kind: str  # market or limit
    qty: float  # base units
    limit_price: float | None
    placed_us: int
    reference_price: float  # limit price, or the touch for a market order (inventory checks, fill ratio)
    filled_qty: float = 0.0
    status: str = "open"  # open, filled, cancelled (market remainder, or by the strategy), rejected
    reason: str = ""

    @property
    def remaining(self) -> float:
        return self.qty - self.filled_qty

    @property
    def is_open(self) -> bool:
        return self.status == "open"


@dataclass(frozen=True)
class Fill:
    order_id: int
    ts_us: int
    symbol: str
    side: str
    qty: float
    price: float
    fee_usd: float
    liquidity: str  # taker or maker
    position_after: float
    cash_after: float


def check_quantity(strategy: str, qty: float) -> float:
    if not isinstance(qty, int | float) or not math.isfinite(qty) or qty <= 0:
        raise OrderError(f"strategy {strategy!r}: order quantity {qty!r} must be a finite number > 0 (base units)")
    return float(qty)


def check_price(strategy: str, price: float) -> float:
    if not isinstance(price, int | float) or not math.isfinite(price) or price <= 0:
        raise OrderError(f"strategy {strategy!r}: limit price {price!r} must be a finite number > 0")
    return float(price)


@dataclass
class Position:
    qty: float = 0.0
    avg_price: float = 0.0
    realized_pnl: float = 0.0

    def apply(self, signed_qty: float, price: float) -> None:
        if self.qty == 0 or (self.qty > 0) == (signed_qty > 0):
            total = abs(self.qty) + abs(signed_qty)
            self.avg_price = (self.avg_price * abs(self.qty) + price * abs(signed_qty)) / total
            self.qty += signed_qty
            return
        closed = min(abs(signed_qty), abs(self.qty))
        self.realized_pnl += closed * (price - self.avg_price) * (1.0 if self.qty > 0 else -1.0)
        self.qty += signed_qty
        if abs(self.qty) <= 1e-12 * closed:  # flat, up to the rounding of the quantities summed
            self.qty, self.avg_price = 0.0, 0.0
        elif (self.qty > 0) == (signed_qty > 0):  # through zero: the rest opens at this price
            self.avg_price = price


@dataclass
class Portfolio:
    initial_cash_usd: float
    cash: float = field(init=False)
    positions: dict[str, Position] = field(default_factory=dict)
    fees_usd: float = 0.0
    turnover_usd: float = 0.0

    def __post_init__(self) -> None:
        self.cash = float(self.initial_cash_usd)

    def position(self, symbol: str) -> Position:
        return self.positions.setdefault(symbol, Position())

    def apply_fill(self, symbol: str, side: str, qty: float, price: float, fee_usd: float) -> None:
        signed = qty if side == BUY else -qty
        self.cash -= signed * price + fee_usd
        self.fees_usd += fee_usd
        self.turnover_usd += qty * price
        self.position(symbol).apply(signed, price)

    @property
    def realized_pnl(self) -> float:
        return sum(p.realized_pnl for p in self.positions.values())

    def unrealized_pnl(self, marks: dict[str, float]) -> float:
        return sum(p.qty * (marks.get(s, p.avg_price) - p.avg_price) for s, p in self.positions.items() if p.qty)

    def position_value(self, marks: dict[str, float]) -> float:
        return sum(p.qty * marks.get(s, p.avg_price) for s, p in self.positions.items() if p.qty)

    def equity(self, marks: dict[str, float]) -> float:
        return self.cash + self.position_value(marks)
