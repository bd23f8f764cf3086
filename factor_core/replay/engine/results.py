"""What a run leaves: per strategy its orders, fills, equity curve and summary; as frames and a picture.

Summary (per strategy, amounts in USD(T)):

* ``pnl_usd`` = final equity - initial cash = ``realized_pnl_usd + unrealized_pnl_usd - fees_usd``;
* ``turnover_usd``: the notional of every fill;
* ``max_drawdown_usd`` / ``max_drawdown_pct``: the largest fall of the equity curve from its
  running peak (on the sampled curve, ``equity_interval_us`` apart, plus the final value),
  in USD and as a fraction of that peak;
* ``fill_ratio``: the share of the ordered quantity that filled, weighted by each order's
  reference price (its limit, or the touch for a market order); rejected orders never reached
  the market and are not counted (``rejected_orders`` says how many there were);
* ``orders``, ``filled_orders`` (at least one fill), ``fills``, ``events`` (trades and books
  the strategy received).
"""

from __future__ import annotations

import base64
import io
import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from factor_core.replay.engine.engine import StrategyContext
    from factor_core.replay.engine.orders import Fill, Order

SUMMARY_COLUMNS = [
    "strategy", "kind", "symbols", "start", "end", "initial_cash_usd", "final_equity_usd", "pnl_usd",
    "realized_pnl_usd", "unrealized_pnl_usd", "fees_usd", "turnover_usd", "max_drawdown_usd", "max_drawdown_pct",
    "orders", "filled_orders", "rejected_orders", "fills", "fill_ratio", "events",
]


@dataclass(frozen=True)
class EquitySample:
    ts_us: int
    equity_usd: float
    cash_usd: float
    position_value_usd: float
    realized_pnl_usd: float
    unrealized_pnl_usd: float
    fees_usd: float


def max_drawdown(equity: np.ndarray) -> tuple[float, float]:
    """(USD, fraction of the running peak) of the deepest fall from a running peak; 0 for a rising curve."""
    if not len(equity):
        return 0.0, 0.0
    peak = np.maximum.accumulate(equity)
    fall = peak - equity
    i = int(np.argmax(fall))
    return float(fall[i]), float(fall[i] / peak[i]) if peak[i] > 0 else math.nan


@dataclass
class StrategyResult:
    name: str
    kind: str
    symbols: tuple[str, ...]
    start_us: int
    end_us: int
    initial_cash_usd: float
    orders: list[Order]
    fills: list[Fill]
    equity_curve: list[EquitySample]
    summary: dict

    @staticmethod
    def of(ctx: StrategyContext, marks: dict[str, float], start_us: int, end_us: int) -> StrategyResult:
        p = ctx.portfolio
        equity = np.array([s.equity_usd for s in ctx.equity_curve])
        dd_usd, dd_pct = max_drawdown(equity)
        counted = [o for o in ctx.orders if o.status != "rejected"]
        ordered = sum(o.qty * o.reference_price for o in counted)
        filled = sum(o.filled_qty * o.reference_price for o in counted)
        final = p.equity(marks)
        summary = {
            "strategy": ctx.name, "kind": ctx.spec.kind, "symbols": ",".join(sorted(ctx.symbols)),
            "start": pd.Timestamp(start_us, unit="us", tz="UTC"), "end": pd.Timestamp(end_us, unit="us", tz="UTC"),
            "initial_cash_usd": float(p.initial_cash_usd), "final_equity_usd": final,
            "pnl_usd": final - p.initial_cash_usd, "realized_pnl_usd": p.realized_pnl,
            "unrealized_pnl_usd": p.unrealized_pnl(marks), "fees_usd": p.fees_usd, "turnover_usd": p.turnover_usd,
            "max_drawdown_usd": dd_usd, "max_drawdown_pct": dd_pct,
            "orders": len(ctx.orders), "filled_orders": sum(1 for o in ctx.orders if o.filled_qty > 0),
            "rejected_orders": len(ctx.orders) - len(counted), "fills": len(ctx.fills),
            "fill_ratio": filled / ordered if ordered > 0 else math.nan, "events": ctx.events_seen,
        }
        return StrategyResult(ctx.name, ctx.spec.kind, tuple(sorted(ctx.symbols)), start_us, end_us,
                              float(p.initial_cash_usd), list(ctx.orders), list(ctx.fills), list(ctx.equity_curve),
                              summary)


def _utc(us: pd.Series) -> pd.Series:
    return pd.to_datetime(us.astype("int64"), unit="us", utc=True).astype("datetime64[ns, UTC]")


def fills_frame(results: list[StrategyResult]) -> pd.DataFrame:
    """One row per fill: strategy, ts (UTC), order_id, symbol, side, qty, price, notional_usd, fee_usd, liquidity, ..."""
    rows = [{"strategy": r.name, **asdict(f)} for r in results for f in r.fills]
    columns = ["strategy", "order_id", "ts_us", "symbol", "side", "qty", "price", "fee_usd", "liquidity",
               "position_after", "cash_after"]
    frame = pd.DataFrame(rows, columns=columns).astype({"qty": float, "price": float, "fee_usd": float,
                                                         "order_id": "int64", "ts_us": "int64"})
    frame.insert(1, "ts", _utc(frame.pop("ts_us")))
    frame.insert(frame.columns.get_loc("price") + 1, "notional_usd", frame["qty"] * frame["price"])
    return frame


def equity_frame(results: list[StrategyResult]) -> pd.DataFrame:
    """The sampled equity curve of every strategy: strategy, ts (UTC), equity_usd, cash_usd, ..."""
    rows = [{"strategy": r.name, **asdict(s)} for r in results for s in r.equity_curve]
    columns = ["strategy", "ts_us", "equity_usd", "cash_usd", "position_value_usd", "realized_pnl_usd",
               "unrealized_pnl_usd", "fees_usd"]
    frame = pd.DataFrame(rows, columns=columns).astype({"ts_us": "int64"})
    frame.insert(1, "ts", _utc(frame.pop("ts_us")))
    return frame


def summary_frame(results: list[StrategyResult]) -> pd.DataFrame:
    frame = pd.DataFrame([r.summary for r in results], columns=SUMMARY_COLUMNS)
    for column in ("start", "end"):
        frame[column] = frame[column].astype("datetime64[ns, UTC]")
    return frame


def equity_png(results: list[StrategyResult], *, title: str = "") -> bytes:
    """The equity curves (PnL in USD, one line per strategy) as a small PNG (matplotlib, Agg canvas)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 2.6), dpi=90)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    for r in results:
        ts = pd.to_datetime([s.ts_us for s in r.equity_curve], unit="us", utc=True)
        axes.plot(ts, [s.equity_usd - r.initial_cash_usd for s in r.equity_curve], label=r.name, linewidth=1.1)
    axes.axhline(0.0, color="0.6", linewidth=0.6)
    axes.set_ylabel("PnL after fees (USD)")
    axes.set_title(title or "equity curves", fontsize=9)
    axes.tick_params(labelsize=7)
    if results:
        axes.legend(fontsize=7, loc="best")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def equity_markdown(png: bytes) -> str:
    """The picture as Markdown the Dagster UI renders inline."""
    return f"![equity](data:image/png;base64,{base64.b64encode(png).decode()})"
