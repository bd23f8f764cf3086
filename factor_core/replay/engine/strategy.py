"""What a strategy is: handlers for trades, book snapshots, timers and fills, and its configuration.

Write a strategy by subclassing :class:`Strategy` and overriding the handlers
it needs; every handler gets the :class:`~factor_core.replay.engine.engine.StrategyContext`
(clock, market state, portfolio, order entry, timers)::

    class Chaser(Strategy):
        defaults = {"order_usd": 500.0}

        def on_trade(self, ctx, trade):
            if ctx.position(trade.symbol) == 0:
                ctx.buy(trade.symbol, self.order_usd / trade.price)

Parameters: ``defaults`` names every parameter and its default; a spec's
``params`` override them and become attributes (an unknown name is refused).
A strategy sees only the events of its own symbols, in stream order; a value it
computes at time ``t`` can use nothing after ``t`` because nothing after ``t``
has been delivered yet.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from factor_core.schemas import validate_symbol

if TYPE_CHECKING:
    from factor_core.replay.engine.engine import StrategyContext
    from factor_core.replay.engine.events import BookSnapshot, Timer, Trade
    from factor_core.replay.engine.orders import Fill


class StrategyConfigError(ValueError):
    """A strategy spec that cannot be used; the message names the strategy and the field."""


class Strategy:
    """Base class: override the handlers you need (each is a no-op here)."""

    defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, name: str = "", **params: Any):
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            raise StrategyConfigError(
                f"strategy {name or type(self).__name__!r}: unknown parameter(s) {unknown} for "
                f"{type(self).__name__}; its parameters are {sorted(self.defaults)}"
            )
        self.name = name or type(self).__name__
        for key, default in self.defaults.items():
            value = params.get(key, default)
            if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if default is not None and not isinstance(value, type(default)):
                raise StrategyConfigError(
                    f"strategy {self.name!r}: parameter {key!r} = {value!r} should be a {type(default).__name__}"
                )
            setattr(self, key, value)

    def on_start(self, ctx: StrategyContext) -> None: ...

    def on_trade(self, ctx: StrategyContext, trade: Trade) -> None: ...

    def on_book(self, ctx: StrategyContext, book: BookSnapshot) -> None: ...

    def on_timer(self, ctx: StrategyContext, timer: Timer) -> None: ...

    def on_fill(self, ctx: StrategyContext, fill: Fill) -> None: ...


#: Strategies known by name; ``kind`` may also be ``package.module:ClassName``.
STRATEGY_KINDS: dict[str, type[Strategy]] = {}


def register(kind: str):
    def decorate(cls: type[Strategy]) -> type[Strategy]:
        STRATEGY_KINDS[kind] = cls
        return cls

    return decorate


def strategy_class(kind: str, *, strategy: str) -> type[Strategy]:
    if kind in STRATEGY_KINDS:
        return STRATEGY_KINDS[kind]
    if ":" in kind:
        module, _, attr = kind.partition(":")
        try:
            cls = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise StrategyConfigError(f"strategy {strategy!r}: kind {kind!r} cannot be imported ({exc})") from exc
        if isinstance(cls, type) and issubclass(cls, Strategy):
            return cls
        raise StrategyConfigError(f"strategy {strategy!r}: {kind!r} is not a Strategy subclass")
    raise StrategyConfigError(
        f"strategy {strategy!r}: unknown kind {kind!r}; known: {sorted(STRATEGY_KINDS)} (or package.module:ClassName)"
    )


@dataclass(frozen=True)
class StrategySpec:
    """One configured strategy (plain fields, mirrored 1:1 by the Dagster ``Config`` of ``strategy_runs``).

    * ``kind``: a registered strategy (``book_imbalance_taker``, ``simple_market_maker``) or
      ``package.module:ClassName``; ``params`` override its ``defaults``;
    * ``symbols``: what it trades (it sees only their events); empty = every symbol of the run;
    * ``taker_fee_bps`` / ``maker_fee_bps``: fees on the notional of taker / maker fills
      (a negative maker fee is a rebate);
    * ``max_position_usd``: inventory limit per symbol, checked when an order is placed at its
      reference price, counting every open order of the same side as if it filled; an order that
      could breach it is rejected (None = no limit);
    * ``initial_cash_usd``: the cash a run starts with (positions start flat).
    """

    name: str
    kind: str
    symbols: tuple[str, ...] = ()
    params: Mapping[str, Any] = field(default_factory=dict)
    taker_fee_bps: float = 5.0
    maker_fee_bps: float = 2.0
    max_position_usd: float | None = 10_000.0
    initial_cash_usd: float = 100_000.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "symbols", tuple(self.symbols))
        object.__setattr__(self, "params", dict(self.params))
        for symbol in self.symbols:
            try:
                validate_symbol(symbol)
            except ValueError as exc:
                raise StrategyConfigError(f"strategy {self.name!r}: symbols: {exc}") from None
        for name in ("taker_fee_bps", "maker_fee_bps", "initial_cash_usd"):
            if not isinstance(getattr(self, name), int | float):
                raise StrategyConfigError(f"strategy {self.name!r}: {name} must be a number, got {getattr(self, name)!r}")
        if self.max_position_usd is not None and not self.max_position_usd > 0:
            raise StrategyConfigError(f"strategy {self.name!r}: max_position_usd must be > 0 or null, got {self.max_position_usd!r}")
        if not self.initial_cash_usd > 0:
            raise StrategyConfigError(f"strategy {self.name!r}: initial_cash_usd must be > 0")

    def build(self) -> Strategy:
        return strategy_class(self.kind, strategy=self.name)(self.name, **self.params)

    def with_symbols(self, symbols: tuple[str, ...]) -> StrategySpec:
        return StrategySpec(self.name, self.kind, symbols, self.params, self.taker_fee_bps, self.maker_fee_bps,
                            self.max_position_usd, self.initial_cash_usd)
