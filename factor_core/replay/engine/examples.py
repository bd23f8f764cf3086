"""Two example strategies, written as documentation of the engine's API, not as claims of alpha.

* :class:`BookImbalanceTaker`: market orders, on book snapshots. It holds a long
  position while the top levels' bid size outweighs the ask size by more than
  ``threshold`` (order-book imbalance, Cont, Kukanov and Stoikov 2014 use its
  changes to predict short-term price moves), short while the asks outweigh
  the bids, flat otherwise.
* :class:`SimpleMarketMaker`: resting limit orders, cancels and timers. Every
  ``refresh_s`` seconds (and on each book snapshot) it quotes a bid and an ask
  ``half_spread_bps`` around the last price, skewed against its inventory
  (Avellaneda and Stoikov 2008, in its simplest linear form), one
  ``order_usd`` clip each side.
"""

from __future__ import annotations

from factor_core.replay.engine.strategy import Strategy, register


@register("book_imbalance_taker")
class BookImbalanceTaker(Strategy):
    defaults = {"levels": 5, "threshold": 0.3, "order_usd": 1_000.0, "min_trade_usd": 10.0}

    @staticmethod
    def imbalance(book, levels: int) -> float | None:
        """``(bid size - ask size) / (bid size + ask size)`` over the top ``levels`` of each side, in [-1, 1]."""
        bids = sum(amount for _, amount in book.bids[:levels])
        asks = sum(amount for _, amount in book.asks[:levels])
        total = bids + asks
        return None if total <= 0 else (bids - asks) / total

    def on_book(self, ctx, book):
        imbalance = self.imbalance(book, self.levels)
        if imbalance is None or book.mid is None:
            return
        unit = self.order_usd / book.mid
        target = unit if imbalance > self.threshold else (-unit if imbalance < -self.threshold else 0.0)
        change = target - ctx.position(book.symbol)
        if abs(change) * book.mid < self.min_trade_usd:
            return
        if change > 0:
            ctx.buy(book.symbol, change)
        else:
            ctx.sell(book.symbol, -change)


@register("simple_market_maker")
class SimpleMarketMaker(Strategy):
    defaults = {"half_spread_bps": 5.0, "skew_bps": 2.0, "order_usd": 500.0, "refresh_s": 10.0}

    def on_start(self, ctx):
        ctx.schedule(every_us=int(self.refresh_s * 1_000_000), name="requote")

    def on_timer(self, ctx, timer):
        for symbol in sorted(ctx.symbols):
            self.quote(ctx, symbol)

    def on_book(self, ctx, book):
        self.quote(ctx, book.symbol)

    def quote(self, ctx, symbol: str) -> None:
        book = ctx.book(symbol)
        reference = ctx.last_price(symbol) or (book.mid if book is not None else None)
        if reference is None:
            return
        ctx.cancel_all(symbol)
        inventory = ctx.position(symbol) * reference / self.order_usd  # in clips, + long
        bid = reference * (1 - (self.half_spread_bps + self.skew_bps * inventory) / 1e4)
        ask = reference * (1 + (self.half_spread_bps - self.skew_bps * inventory) / 1e4)
        size = self.order_usd / reference
        ctx.buy(symbol, size, limit=bid)
        ctx.sell(symbol, size, limit=ask)
