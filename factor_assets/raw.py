"""Raw layer: 1-minute bars, trades, order book and funding per UTC day x symbol."""

import datetime as dt

import pandas as pd
from dagster import AssetExecutionContext, AssetsDefinition, BackfillPolicy, asset

from factor_assets.partition_keys import run_partitions
from partitions import DAY_SYMBOL
from resources.market_data import MarketDataSource

RAW_GROUP = "raw"

_RAW_DATASETS = {
    "raw_klines": ("klines", "1-minute OHLCV bars, 1440 rows per complete UTC day, labelled by open time."),
    "raw_trades": ("trades", "Every (aggregate) trade: id, time, price, quantity, aggressor side."),
    "raw_book": ("book", "Order-book snapshots (top-N levels) or depth bands, long form."),
    "raw_funding": ("funding", "Perpetual funding rate settlements (every 8 hours)."),
}


def _raw_asset(name: str, dataset: str, description: str) -> AssetsDefinition:
    @asset(
        name=name,
        group_name=RAW_GROUP,
        description=description,
        partitions_def=DAY_SYMBOL,
        backfill_policy=BackfillPolicy.single_run(),
        io_manager_key="parquet_io_manager",
        kinds={"parquet"},
    )
    def _fetch(context: AssetExecutionContext, market_data: MarketDataSource) -> pd.DataFrame:
        frames = []
        for day, symbol in run_partitions(context):
            frame = market_data.fetch(dataset, symbol, dt.date.fromisoformat(day))
            frames.append(frame.assign(date=day, symbol=symbol))
        context.log.info(f"{name}: fetched {len(frames)} partition(s) from {market_data.source}")
        return pd.concat(frames, ignore_index=True)

    return _fetch


raw_klines = _raw_asset("raw_klines", *_RAW_DATASETS["raw_klines"])
raw_trades = _raw_asset("raw_trades", *_RAW_DATASETS["raw_trades"])
raw_book = _raw_asset("raw_book", *_RAW_DATASETS["raw_book"])
raw_funding = _raw_asset("raw_funding", *_RAW_DATASETS["raw_funding"])

RAW_ASSETS = [raw_klines, raw_trades, raw_book, raw_funding]
