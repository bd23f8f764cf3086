"""Registry of the Binance archive datasets the pipeline reads: layout, columns, types, output schema.

| key | archive file | output |
| --- | --- | --- |
| ``klines``       | spot 1-minute klines, daily                | ``KLINES`` |
| ``um_klines``    | USD-M futures 1-minute klines, daily       | ``KLINES`` |
| ``aggTrades``    | spot aggregate trades, daily (8 columns)   | ``TRADES`` |
| ``um_aggTrades`` | USD-M aggregate trades, daily (7 columns)  | ``TRADES`` |
| ``bookDepth``    | USD-M futures depth bands, daily           | ``BOOK`` (depth-band shape) |
| ``bookTicker``   | USD-M futures best bid/ask updates, daily  | ``QUOTES`` |
| ``fundingRate``  | USD-M futures funding, monthly             | ``FUNDING`` |
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import pyarrow as pa

from factor_core.schemas import BOOK, FUNDING, KLINES, QUOTES, TRADES


@dataclass(frozen=True)
class Dataset:
    """How one archive dataset is laid out and parsed."""

    name: str
    market: str  # "spot" | "futures/um"
    period: str  # "daily" | "monthly"
    type: str  # URL path segment: klines, aggTrades, bookDepth, bookTicker, fundingRate
    interval: str | None  # "1m" for klines, else None
    columns: tuple[str, ...]  # internal names, in the order of headerless files
    types: Mapping[str, pa.DataType]  # columns that are converted (others are skipped)
    schema: pa.Schema  # canonical output schema
    time_column: str  # internal column holding the timestamp
    header_aliases: Mapping[str, str] = field(default_factory=dict)


_KLINE_COLUMNS = (
    "open_time", "open", "high", "low", "close", "volume", "close_time",
    "quote_volume", "trade_count", "taker_buy_volume", "taker_buy_quote_volume", "ignore",
)  # fmt: skip
_KLINE_TYPES = {
    "open_time": pa.int64(),
    "open": pa.float64(),
    "high": pa.float64(),
    "low": pa.float64(),
    "close": pa.float64(),
    "volume": pa.float64(),
    "quote_volume": pa.float64(),
    "trade_count": pa.int64(),
    "taker_buy_volume": pa.float64(),
    "taker_buy_quote_volume": pa.float64(),
}
_KLINE_ALIASES = {
    "open_time": "open_time", "open": "open", "high": "high", "low": "low", "close": "close",
    "volume": "volume", "close_time": "close_time", "quote_volume": "quote_volume",
    "quote_asset_volume": "quote_volume", "count": "trade_count", "number_of_trades": "trade_count",
    "trade_count": "trade_count", "taker_buy_volume": "taker_buy_volume",
    "taker_buy_base_volume": "taker_buy_volume", "taker_buy_base_asset_volume": "taker_buy_volume",
    "taker_buy_quote_volume": "taker_buy_quote_volume",
    "taker_buy_quote_asset_volume": "taker_buy_quote_volume", "ignore": "ignore",
}  # fmt: skip

_AGG_COLUMNS = (
    "trade_id", "price", "qty", "first_trade_id", "last_trade_id", "ts",
    "is_buyer_maker", "is_best_match",
)  # fmt: skip
_AGG_TYPES = {
    "trade_id": pa.int64(),
    "price": pa.float64(),
    "qty": pa.float64(),
    "ts": pa.int64(),
    "is_buyer_maker": pa.bool_(),
}
_AGG_ALIASES = {
    "agg_trade_id": "trade_id", "aggregate_trade_id": "trade_id", "trade_id": "trade_id",
    "id": "trade_id", "price": "price", "quantity": "qty", "qty": "qty",
    "first_trade_id": "first_trade_id", "last_trade_id": "last_trade_id",
    "transact_time": "ts", "timestamp": "ts", "time": "ts", "ts": "ts",
    "is_buyer_maker": "is_buyer_maker", "was_the_buyer_the_maker": "is_buyer_maker",
    "is_best_match": "is_best_match", "was_the_trade_the_best_price_match": "is_best_match",
}  # fmt: skip

_TICKER_COLUMNS = (
    "update_id", "best_bid_price", "best_bid_qty", "best_ask_price", "best_ask_qty",
    "transaction_time", "event_time",
)  # fmt: skip
_TICKER_TYPES = {
    "update_id": pa.int64(),
    "best_bid_price": pa.float64(),
    "best_bid_qty": pa.float64(),
    "best_ask_price": pa.float64(),
    "best_ask_qty": pa.float64(),
    "transaction_time": pa.int64(),
}

DATASETS: dict[str, Dataset] = {
    "klines": Dataset(
        "klines", "spot", "daily", "klines", "1m", _KLINE_COLUMNS, _KLINE_TYPES, KLINES,
        "open_time", _KLINE_ALIASES,
    ),
    "um_klines": Dataset(
        "um_klines", "futures/um", "daily", "klines", "1m", _KLINE_COLUMNS, _KLINE_TYPES,
        KLINES, "open_time", _KLINE_ALIASES,
    ),
    "aggTrades": Dataset(
        "aggTrades", "spot", "daily", "aggTrades", None, _AGG_COLUMNS, _AGG_TYPES, TRADES,
        "ts", _AGG_ALIASES,
    ),
    # futures aggTrades have no is_best_match column
    "um_aggTrades": Dataset(
        "um_aggTrades", "futures/um", "daily", "aggTrades", None, _AGG_COLUMNS[:7], _AGG_TYPES,
        TRADES, "ts", _AGG_ALIASES,
    ),
    "bookDepth": Dataset(
        "bookDepth", "futures/um", "daily", "bookDepth", None,
        ("timestamp", "percentage", "depth", "notional"),
        {"timestamp": pa.timestamp("s"), "percentage": pa.float64(), "depth": pa.float64(),
         "notional": pa.float64()},
        BOOK, "timestamp",
        {"timestamp": "timestamp", "percentage": "percentage", "depth": "depth",
         "notional": "notional"},
    ),
    "bookTicker": Dataset(
        "bookTicker", "futures/um", "daily", "bookTicker", None, _TICKER_COLUMNS, _TICKER_TYPES,
        QUOTES, "transaction_time", {name: name for name in _TICKER_COLUMNS},
    ),
    "fundingRate": Dataset(
        "fundingRate", "futures/um", "monthly", "fundingRate", None,
        ("calc_time", "funding_interval_hours", "last_funding_rate"),
        {"calc_time": pa.int64(), "funding_interval_hours": pa.int64(),
         "last_funding_rate": pa.float64()},
        FUNDING, "calc_time",
        {"calc_time": "calc_time", "funding_interval_hours": "funding_interval_hours",
         "last_funding_rate": "last_funding_rate", "funding_rate": "last_funding_rate"},
    ),
}  # fmt: skip


def get_dataset(dataset: str | Dataset) -> Dataset:
    """The registry entry for a key of :data:`DATASETS` (or the entry itself)."""
    if isinstance(dataset, Dataset):
        return dataset
    try:
        return DATASETS[dataset]
    except KeyError:
        raise ValueError(f"unknown Binance dataset {dataset!r}; known: {sorted(DATASETS)}") from None
