"""Canonical column schemas of the raw layer: the data contract every source meets.

Whatever produces a raw partition (the simulator, the Binance archive, the REST
API, a landing folder) must hand over a frame with exactly these columns and
types. Partition columns (``symbol``, ``date``) are *not* part of the stored
schema: they live in the hive path and the IO manager adds them on load.

All timestamps are UTC, nanosecond resolution, and stamp the *start* of the
interval they describe (a bar's open time, a trade's execution time, a
snapshot's capture time, a funding event's settlement time).
"""

from __future__ import annotations

import re

import pyarrow as pa

TS = pa.timestamp("ns", tz="UTC")

#: 1-minute OHLCV bars, 1440 rows per complete UTC day, labelled by open time.
KLINES = pa.schema(
    [
        ("open_time", TS),
        ("open", pa.float64()),
        ("high", pa.float64()),
        ("low", pa.float64()),
        ("close", pa.float64()),
        ("volume", pa.float64()),  # base asset units
        ("quote_volume", pa.float64()),  # quote asset units (USDT)
        ("trade_count", pa.int64()),
        ("taker_buy_volume", pa.float64()),  # base units bought by aggressive buyers
        ("taker_buy_quote_volume", pa.float64()),
    ]
)

#: Every (aggregate) trade. ``is_buyer_maker`` True means the seller was the
#: aggressor (a market sell hit the bid), as in Binance's own convention.
TRADES = pa.schema(
    [
        ("trade_id", pa.int64()),
        ("ts", TS),
        ("price", pa.float64()),
        ("qty", pa.float64()),  # base units
        ("is_buyer_maker", pa.bool_()),
    ]
)

#: Order-book observations in long form. Two shapes share the schema:
#: * top-N snapshots: one row per (ts, side, level) with ``price`` and ``qty``
#:   of that level, ``band_pct`` null, ``notional`` = price * qty;
#: * depth bands (futures ``bookDepth``): one row per (ts, side, band) with
#:   ``band_pct`` the band edge in percent from mid (positive magnitude),
#:   ``qty`` the cumulative base depth within the band, ``notional`` its quote
#:   value, ``price`` null and ``level`` the band's rank from the mid (1 = nearest).
BOOK = pa.schema(
    [
        ("ts", TS),
        ("side", pa.string()),  # "bid" or "ask"
        ("level", pa.int16()),
        ("price", pa.float64()),
        ("qty", pa.float64()),
        ("band_pct", pa.float64()),
        ("notional", pa.float64()),
    ]
)

#: Perpetual funding events (Binance settles every 8 hours by default).
FUNDING = pa.schema(
    [
        ("ts", TS),
        ("funding_rate", pa.float64()),  # fraction per interval, e.g. 0.0001 = 1 bp
        ("funding_interval_hours", pa.int16()),
    ]
)

#: Top of book: one row per change of the best bid or ask (Binance ``bookTicker``,
#: Tardis ``quotes``, the simulator's quote stream). ``ts`` is when the new
#: quote took effect; it is in force until the next row's ``ts``.
QUOTES = pa.schema(
    [
        ("ts", TS),
        ("bid_price", pa.float64()),
        ("bid_qty", pa.float64()),  # base units
        ("ask_price", pa.float64()),
        ("ask_qty", pa.float64()),  # base units
    ]
)

RAW_SCHEMAS: dict[str, pa.Schema] = {
    "raw_klines": KLINES,
    "raw_trades": TRADES,
    "raw_book": BOOK,
    "raw_funding": FUNDING,
    "raw_quotes": QUOTES,
}

SYMBOL_PATTERN = re.compile(r"^[A-Z0-9]{2,30}$")


class InvalidSymbolError(ValueError):
    """A symbol that does not match ``^[A-Z0-9]{2,30}$``."""


def validate_symbol(symbol: object) -> str:
    """Return ``symbol`` unchanged if it is a valid exchange symbol, else raise.

    Symbols end up in file paths and SQL, so this runs before either is built.
    """
    if not isinstance(symbol, str) or not SYMBOL_PATTERN.fullmatch(symbol):
        raise InvalidSymbolError(
            f"invalid symbol {symbol!r}: symbols must match {SYMBOL_PATTERN.pattern} "
            "(2-30 upper-case letters or digits, e.g. BTCUSDT)"
        )
    return symbol


def conform(table: pa.Table, schema: pa.Schema, *, what: str) -> pa.Table:
    """Select and cast ``table``'s columns to ``schema``, naming what is wrong if it can't."""
    missing = [f.name for f in schema if f.name not in table.column_names]
    if missing:
        raise ValueError(f"{what}: missing column(s) {missing}; got {table.column_names}")
    columns = []
    for field in schema:
        column = table.column(field.name)
        if not column.type.equals(field.type):
            try:
                column = column.cast(field.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise ValueError(
                    f"{what}: column {field.name!r} of type {column.type} cannot be "
                    f"cast to {field.type}: {exc}"
                ) from exc
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=schema)


def _columns(schema: pa.Schema) -> dict[str, pa.DataType]:
    return {f.name: f.type for f in schema}


#: Columns (and types) a stored partition of each asset must have for its
#: consumers; checked on every read, so a foreign or stale file fails at the
#: boundary, naming the file and column, instead of deep inside a computation.
STORED_COLUMNS: dict[str, dict[str, pa.DataType]] = {
    **{asset: _columns(schema) for asset, schema in RAW_SCHEMAS.items()},
    "liquidity_metrics": {"ts": TS},
    "liquidity_daily": {"ts": TS, "known_at": TS},
    "factor_bars": {"ts": TS, "close_time": TS, "close": pa.float64()},
    # The sentiment layer (full schemas: factor_core.news.items / factor_core.sentiment; a test keeps them in step).
    "news_items": {"item_id": pa.string(), "published_at": TS, "title": pa.string(), "symbols": pa.list_(pa.string())},
    "llm_sentiment": {"status": pa.string(), "published_at": TS, "score": pa.float64(), "model": pa.string()},
    "sentiment_hourly": {"ts": TS, "close_time": TS, "sentiment_score": pa.float64(), "sentiment_items": pa.int64()},
    # The research layer (docs/research.md): the key columns each consumer joins on.
    "planted_signal": {"known_at": TS, "signal": pa.float64()},
    "hourly_closes": {"ts": TS, "symbol": pa.string(), "close": pa.float64()},
    "factor_panel": {"ts": TS, "close_time": TS, "symbol": pa.string(), "close": pa.float64()},
    "factor_ic": {"ts": TS, "factor": pa.string(), "horizon_h": pa.int64(), "rank_ic": pa.float64()},
    "factor_correlation": {"factor_a": pa.string(), "factor_b": pa.string(), "rank_corr": pa.float64(),
                           "n_hours": pa.int64()},
    "backtest_daily": {"strategy": pa.string(), "strategy_fingerprint": pa.string(), "net_return": pa.float64()},
    "backtest_hourly": {"strategy": pa.string(), "strategy_fingerprint": pa.string(), "ts": TS,
                        "net_return": pa.float64()},
}
