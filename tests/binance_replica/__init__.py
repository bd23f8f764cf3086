"""Test helpers for the Binance data layer: the replica server, the archive formats, and blocking
calls of the async clients (tests run them with ``asyncio.run``; the package API has no sync wrappers)."""

from .formats import (
    AGG_TRADES_HEADER,
    BOOK_DEPTH_HEADER,
    BOOK_TICKER_HEADER,
    FUNDING_HEADER,
    KLINES_HEADER,
    agg_trade_rows,
    agg_trades_csv,
    archive_path,
    book_depth_csv,
    book_depth_rows,
    book_ticker_csv,
    book_ticker_rows,
    checksum_text,
    day_start_ms,
    funding_csv,
    funding_rows,
    kline_rows,
    klines_csv,
    make_zip,
    rest_klines,
    to_csv,
)
from .run import archive_day, archive_days, archive_month, rest_call
from .server import BinanceReplica, FakeClock, Fault, RequestRecord

__all__ = [
    "AGG_TRADES_HEADER", "BOOK_DEPTH_HEADER", "BOOK_TICKER_HEADER", "FUNDING_HEADER", "KLINES_HEADER",
    "BinanceReplica", "FakeClock", "Fault", "RequestRecord", "agg_trade_rows", "agg_trades_csv",
    "archive_day", "archive_days", "archive_month", "archive_path", "book_depth_csv", "book_depth_rows",
    "book_ticker_csv", "book_ticker_rows", "checksum_text", "day_start_ms", "funding_csv",
    "funding_rows", "kline_rows", "klines_csv", "make_zip", "rest_call", "rest_klines", "to_csv",
]  # fmt: skip
