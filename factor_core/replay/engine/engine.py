"""The event-driven engine: one stream of trades and book snapshots, several strategies side by side.

For each event, in stream order (the replay's merge order):

1. timers of every strategy due strictly before the event fire (a timer at
   ``t`` has seen every event stamped ``t`` or earlier); equity is sampled at
   every ``equity_interval_us`` boundary the same way;
2. the market state moves: the symbol's latest book (each strategy's view of it
   starts afresh) or last trade price (the mark for PnL);
3. for every strategy trading the symbol, in configuration order: a trade first
   fills its resting limit orders that it prints through (``matching``), then
   the strategy's handler runs and may place orders, which fill at once against
   the book where the fill model says so.

:meth:`Engine.finish` fires the timers due before ``end_us``, samples the final
equity at ``end_us`` and returns a :class:`~factor_core.replay.engine.results.StrategyResult`
per strategy. The engine holds no reference to where events came from, so the
same run over the stored files or over the WebSocket stream gives the same result.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import AsyncIterable, Iterable, Sequence

from factor_core.replay.engine.events import BookSnapshot, Event, Timer, Trade
from factor_core.replay.engine.matching import BookView, prints_through, resting_fills
from factor_core.replay.engine.orders import (
    BUY, LIMIT, MAKER, MARKET, SELL, TAKER, Fill, Order, OrderError, Portfolio, check_price, check_quantity,
)
from factor_core.replay.engine.results import EquitySample, StrategyResult
from factor_core.replay.engine.strategy import Strategy, StrategySpec

MINUTE_US = 60_000_000


class StrategyContext:
    """Everything a strategy may use: the clock, the market as of now, its portfolio, order entry, timers."""

    def __init__(self, engine: Engine, spec: StrategySpec, strategy: Strategy):
        self._engine, self.spec, self.strategy = engine, spec, strategy
        self.name = spec.name
        self.symbols = frozenset(spec.symbols)
        self.portfolio = Portfolio(spec.initial_cash_usd)
        self.books: dict[str, BookView] = {s: BookView() for s in spec.symbols}
        self.orders: list[Order] = []
        self.fills: list[Fill] = []
        self.resting: dict[str, list[Order]] = {s: [] for s in spec.symbols}
        self.equity_curve: list[EquitySample] = []
        self._thresholds: dict[str, tuple[float, float]] = {}
        self.events_seen = 0
        self._ids = itertools.count(1)

    # ---- clock and market ------------------------------------------------------------------------
    @property
    def now_us(self) -> int:
        return self._engine.now_us

    def book(self, symbol: str) -> BookSnapshot | None:
        """The latest book snapshot of ``symbol`` (at or before now), as the exchange showed it."""
        self._own(symbol)
        return self.books[symbol].snapshot

    def last_price(self, symbol: str) -> float | None:
        return self._engine.last_price.get(symbol)

    # ---- portfolio -------------------------------------------------------------------------------
    def position(self, symbol: str) -> float:
        position = self.portfolio.positions.get(symbol)
        return position.qty if position else 0.0

    @property
    def cash(self) -> float:
        return self.portfolio.cash

    def equity(self) -> float:
        return self.portfolio.equity(self._engine.marks())

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        symbols = [symbol] if symbol else list(self.resting)
        return [o for s in symbols for o in self.resting.get(s, []) if o.is_open]

    # ---- order entry -----------------------------------------------------------------------------
    def buy(self, symbol: str, qty: float, *, limit: float | None = None) -> Order:
        """A market buy of ``qty`` base units, or a limit buy at ``limit``."""
        return self._place(symbol, BUY, qty, limit)

    def sell(self, symbol: str, qty: float, *, limit: float | None = None) -> Order:
        return self._place(symbol, SELL, qty, limit)

    def cancel(self, order_id: int) -> bool:
        for orders in self.resting.values():
            for order in orders:
                if order.id == order_id and order.is_open:
                    order.status, order.reason = "cancelled", "cancelled by the strategy"
                    orders.remove(order)
                    self._thresholds.pop(order.symbol, None)
                    return True
        return False

    def cancel_all(self, symbol: str | None = None) -> int:
        cancelled = 0
        for order in self.open_orders(symbol):
            cancelled += self.cancel(order.id)
        return cancelled

    def schedule(self, at_us: int | None = None, *, every_us: int | None = None, name: str = "timer") -> None:
        """A timer at ``at_us`` (or ``every_us`` from now, repeating); ``on_timer`` gets it."""
        if every_us is not None and every_us <= 0:
            raise ValueError(f"strategy {self.name!r}: timer interval {every_us!r} must be > 0 microseconds")
        due = at_us if at_us is not None else self.now_us + (every_us or 0)
        if due < self.now_us:
            raise ValueError(f"strategy {self.name!r}: timer {name!r} at {due} is in the past (now {self.now_us})")
        self._engine.add_timer(due, self, name, every_us)

    # ---- internals -------------------------------------------------------------------------------
    def _own(self, symbol: str) -> None:
        if symbol not in self.symbols:
            raise OrderError(
                f"strategy {self.name!r} at {self.now_us} us: {symbol!r} is not one of the symbols it trades "
                f"{sorted(self.symbols)}; add it to the strategy's symbols"
            )

    def _place(self, symbol: str, side: str, qty: float, limit: float | None) -> Order:
        self._own(symbol)
        qty = check_quantity(self.name, qty)
        limit = None if limit is None else check_price(self.name, limit)
        view = self.books[symbol]
        touch = view.touch(side)
        reference = limit if limit is not None else touch
        order = Order(next(self._ids), symbol, side, LIMIT if limit is not None else MARKET, qty, limit, self.now_us,
                      reference if reference is not None else float("nan"))
        self.orders.append(order)
        if reference is None:
            return self._reject(order, f"no book snapshot of {symbol} yet: a market order has nothing to fill against")
        breach = self._breaches_limit(order)
        if breach:
            return self._reject(order, breach)
        if touch is not None and (limit is None or (touch <= limit if side == BUY else touch >= limit)):
            for price, size in view.take(side, qty, limit):
                self._fill(order, size, price, TAKER)
        if order.remaining <= 1e-12 * order.qty:
            order.status = "filled"
        elif order.kind == MARKET:
            order.status = "cancelled"
            order.reason = "the book snapshot had no more depth on that side (immediate or cancel)"
        else:
            self.resting[symbol].append(order)
            self._thresholds.pop(symbol, None)
        return order

    def _breaches_limit(self, order: Order) -> str:
        limit = self.spec.max_position_usd
        if limit is None:
            return ""
        same_side = sum(o.remaining for o in self.resting[order.symbol] if o.is_open and o.side == order.side)
        sign = 1.0 if order.side == BUY else -1.0
        worst = self.position(order.symbol) + sign * (same_side + order.qty)
        exposure = abs(worst) * order.reference_price
        if abs(worst) > abs(self.position(order.symbol)) and exposure > limit * (1 + 1e-12):
            return (f"inventory limit: {order.side} {order.qty:g} {order.symbol} could take the position to {worst:g} "
                    f"(${exposure:,.0f} at {order.reference_price:g}), above max_position_usd ${limit:,.0f}")
        return ""

    def _reject(self, order: Order, reason: str) -> Order:
        order.status, order.reason = "rejected", reason
        return order

    def _fill(self, order: Order, qty: float, price: float, liquidity: str) -> None:
        fee_bps = self.spec.taker_fee_bps if liquidity == TAKER else self.spec.maker_fee_bps
        fee = qty * price * fee_bps / 1e4
        self.portfolio.apply_fill(order.symbol, order.side, qty, price, fee)
        order.filled_qty += qty
        fill = Fill(order.id, self.now_us, order.symbol, order.side, qty, price, fee, liquidity,
                    self.position(order.symbol), self.portfolio.cash)
        self.fills.append(fill)
        self.strategy.on_fill(self, fill)

    def _limits(self, symbol: str) -> tuple[float, float]:
        """(highest resting buy limit, lowest resting sell limit) of ``symbol``: a trade between them fills nothing."""
        limits = self._thresholds.get(symbol)
        if limits is None:
            open_orders = [o for o in self.resting[symbol] if o.is_open]
            buys = [o.limit_price for o in open_orders if o.side == BUY]
            sells = [o.limit_price for o in open_orders if o.side == SELL]
            limits = (max(buys, default=-math.inf), min(sells, default=math.inf))
            self._thresholds[symbol] = limits
        return limits

    def _on_trade(self, trade: Trade) -> None:
        highest_buy, lowest_sell = self._limits(trade.symbol)
        if prints_through(BUY, highest_buy, trade.price) or prints_through(SELL, lowest_sell, trade.price):
            for order, qty in resting_fills(self.resting[trade.symbol], trade):
                self._fill(order, qty, order.limit_price, MAKER)
                if order.remaining <= 1e-12 * order.qty:
                    order.status = "filled"
            self.resting[trade.symbol] = [o for o in self.resting[trade.symbol] if o.is_open]
            self._thresholds.pop(trade.symbol, None)
        self.events_seen += 1
        self.strategy.on_trade(self, trade)

    def _on_book(self, book: BookSnapshot) -> None:
        self.books[book.symbol].update(book)
        self.events_seen += 1
        self.strategy.on_book(self, book)


class Engine:
    """Runs ``specs`` side by side over one event stream covering ``[start_us, end_us)``."""

    def __init__(self, specs: Sequence[StrategySpec], *, start_us: int, end_us: int,
                 equity_interval_us: int = MINUTE_US):
        if equity_interval_us <= 0:
            raise ValueError(f"equity_interval_us must be > 0, got {equity_interval_us}")
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"strategy names must be unique, got {names}")
        self.start_us, self.end_us, self.interval_us = start_us, end_us, equity_interval_us
        self.now_us = start_us
        self.last_price: dict[str, float] = {}
        self._mids: dict[str, float] = {}
        self.contexts = [StrategyContext(self, spec, spec.build()) for spec in specs]
        self._by_symbol: dict[str, list[StrategyContext]] = {}
        for ctx in self.contexts:
            for symbol in ctx.symbols:
                self._by_symbol.setdefault(symbol, []).append(ctx)
        self._timers: list = []
        self._timer_seq = itertools.count()
        self._next_sample = start_us
        self._started = False

    def marks(self) -> dict[str, float]:
        return {**self._mids, **self.last_price}

    def add_timer(self, due_us: int, ctx: StrategyContext, name: str, every_us: int | None) -> None:
        heapq.heappush(self._timers, (due_us, next(self._timer_seq), ctx, name, every_us))

    def _start(self) -> None:
        self._started = True
        for ctx in self.contexts:
            ctx.strategy.on_start(ctx)

    def _advance(self, until_us: int, *, inclusive: bool) -> None:
        """Fire timers and take equity samples due before ``until_us`` (or at it, if ``inclusive``)."""
        while True:
            timer_due = self._timers[0][0] if self._timers else None
            sample_due = self._next_sample
            due = sample_due if timer_due is None else min(timer_due, sample_due)
            if due > until_us or (due == until_us and not inclusive):
                return
            self.now_us = due
            if sample_due <= (timer_due if timer_due is not None else sample_due):
                self._sample(due)
                self._next_sample = (due // self.interval_us + 1) * self.interval_us
                continue
            _, _, ctx, name, every = heapq.heappop(self._timers)
            if every:
                self.add_timer(due + every, ctx, name, every)
            ctx.strategy.on_timer(ctx, Timer(due, name))

    def _sample(self, ts_us: int) -> None:
        marks = self.marks()
        for ctx in self.contexts:
            p = ctx.portfolio
            ctx.equity_curve.append(EquitySample(ts_us, p.equity(marks), p.cash, p.position_value(marks),
                                                 p.realized_pnl, p.unrealized_pnl(marks), p.fees_usd))

    def on_event(self, event: Event) -> None:
        if not self._started:
            self._start()
        ts = event.ts_us
        if ts < self.now_us:
            raise ValueError(f"event at {ts} us arrives after {self.now_us} us: the stream is not in time order")
        if ts >= self.end_us:
            raise ValueError(f"event at {ts} us is at or after the end of the run ({self.end_us} us)")
        self._advance(ts, inclusive=False)
        self.now_us = ts
        if isinstance(event, Trade):
            self.last_price[event.symbol] = event.price
            for ctx in self._by_symbol.get(event.symbol, ()):
                ctx._on_trade(event)
        else:
            mid = event.mid
            if mid is not None:
                self._mids[event.symbol] = mid
            for ctx in self._by_symbol.get(event.symbol, ()):
                ctx._on_book(event)

    def run(self, events: Iterable[Event]) -> list[StrategyResult]:
        for event in events:
            self.on_event(event)
        return self.finish()

    async def run_async(self, events: AsyncIterable[Event]) -> list[StrategyResult]:
        async for event in events:
            self.on_event(event)
        return self.finish()

    def finish(self) -> list[StrategyResult]:
        if not self._started:
            self._start()
        self._advance(self.end_us, inclusive=False)
        self.now_us = self.end_us
        self._sample(self.end_us)
        marks = self.marks()
        return [StrategyResult.of(ctx, marks, self.start_us, self.end_us) for ctx in self.contexts]
