"""Shared helpers of the sentiment-layer Dagster tests: landing news files, the layer's assets, range runs."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
from dagster import materialize

from factor_assets.news import NEWS_ASSETS
from factor_assets.sentiment import build_sentiment_assets
from factor_assets.universe import UNIVERSE_ASSETS

DAY = "2024-01-02"
SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]  # registered in this (sorted) order
ASSETS = [*UNIVERSE_ASSETS, *NEWS_ASSETS, *build_sentiment_assets()]
BY_NAME = {key.path[-1]: a for a in ASSETS for key in a.keys}

#: The landing file of the LLM tests: BTC, ETH, both; nothing about SOL.
LANDED = [
    {"published_at": "2024-01-02T09:15:00Z", "source": "desk", "title": "Bitcoin ETF inflows accelerate",
     "text": "Traders cheer.", "url": "https://n.test/1"},
    {"published_at": "2024-01-02T10:30:00+00:00", "source": "desk", "title": "Ethereum upgrade delayed",
     "text": "Developers postpone the fork.", "url": "https://n.test/2"},
    {"published_at": "2024-01-02T11:00:00Z", "title": "BTC and ETH slide together", "text": ""},
]
#: What the scorer is sent (anonymised: the scored asset's names become ASSET), per symbol.
SENT_TITLES = {
    "BTCUSDT": ["ASSET ETF inflows accelerate", "ASSET and ETH slide together"],
    "ETHUSDT": ["ASSET upgrade delayed", "BTC and ASSET slide together"],
}


def land_news(landing: Path, lines, name: str = "desk.jsonl") -> Path:
    folder = landing / "news"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


def run(instance, resources, assets: list[str], *, days=(DAY,), symbols=SYMBOLS, raise_on_error=True):
    """One run of ``assets`` (all daily, or all day x symbol) over ``days`` (x ``symbols``)."""
    daily = {"news_items", "llm_cost"}
    per_symbol = not set(assets) <= daily
    first, last = days[0], days[-1]
    tags = ({"dagster/asset_partition_range_start": f"{first}|{symbols[0]}",
             "dagster/asset_partition_range_end": f"{last}|{symbols[-1]}"} if per_symbol else
            {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last})
    return materialize(ASSETS, selection=[BY_NAME[a] for a in assets], instance=instance, resources=resources,
                       tags=tags, raise_on_error=raise_on_error)


def stored(root: Path, asset: str, day: str = DAY, symbol: str | None = None) -> pd.DataFrame:
    """A stored partition read back with pyarrow (not through the IO manager)."""
    folder = root / asset / (f"symbol={symbol}" if symbol else "") / f"date={day}"
    return pq.read_table(folder / "part-0.parquet").to_pandas()


def partition_file(root: Path, asset: str, day: str = DAY, symbol: str | None = None) -> Path:
    return root / asset / (f"symbol={symbol}" if symbol else "") / f"date={day}" / "part-0.parquet"


def failure_text(result) -> str:
    """Every step failure of a run as text (message, stack, causes)."""
    return "\n".join(e.step_failure_data.error.to_string() for e in result.get_step_failure_events())
