"""LLM cost accounting: a configurable price table, token allocation to items, the daily summary.

Prices are USD per million tokens, prompt and completion separately, as
providers publish them. A model missing from the table is not an error (any
OpenAI-compatible endpoint may serve any model name): its tokens are
recorded and its cost is null ("unpriced"), never a guessed zero.

Cost of a stored score is the cost of the call that produced it, attributed
to its items (prompt tokens in proportion to each item's share of the text
sent, completion tokens evenly); a later cache hit carries that same
attributed cost and ``cache_hit = True``. So ``llm_cost`` -- the sum over a
day's rows -- is what the day's scores cost, stable across re-runs, while
each partition's metadata says what *this* run spent (zero when everything
came from the cache).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa


@dataclass(frozen=True)
class ModelPrice:
    prompt_usd_per_mtok: float
    completion_usd_per_mtok: float

    def __post_init__(self) -> None:
        for name in ("prompt_usd_per_mtok", "completion_usd_per_mtok"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ValueError(f"price {name} must be a finite number >= 0, got {value!r}")

    def cost_usd(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.prompt_usd_per_mtok + completion_tokens * self.completion_usd_per_mtok) / 1e6


#: List prices (USD per 1M tokens) of a few common models; override with configuration.
DEFAULT_PRICES: Mapping[str, ModelPrice] = {
    "gpt-4o-mini": ModelPrice(0.15, 0.60),
    "gpt-4o": ModelPrice(2.50, 10.00),
    "gpt-4.1": ModelPrice(2.00, 8.00),
    "gpt-4.1-mini": ModelPrice(0.40, 1.60),
    "gpt-4.1-nano": ModelPrice(0.10, 0.40),
    "lexicon:vader": ModelPrice(0.0, 0.0),
    "synthetic:newswire": ModelPrice(0.0, 0.0),
}
_DATED_SUFFIX = re.compile(r"-\d{4}(-\d{2}-\d{2})?$")


class PriceTable:
    """``model -> ModelPrice``; a dated snapshot (``gpt-4o-mini-2024-07-18``) takes its family's price."""

    def __init__(self, prices: Mapping[str, ModelPrice] = DEFAULT_PRICES):
        self._prices = dict(prices)

    @classmethod
    def parse(cls, text: str, base: Mapping[str, ModelPrice] = DEFAULT_PRICES) -> "PriceTable":
        """``base`` updated from JSON: ``{"my-model": [0.15, 0.6]}`` or
        ``{"my-model": {"prompt_usd_per_mtok": 0.15, "completion_usd_per_mtok": 0.6}}``."""
        prices = dict(base)
        if not text.strip():
            return cls(prices)
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"price table is not valid JSON: {exc}") from None
        if not isinstance(raw, dict):
            raise ValueError('price table must be a JSON object: {"model": [prompt_usd_per_mtok, completion_usd_per_mtok]}')
        for model, value in raw.items():
            if isinstance(value, list) and len(value) == 2:
                prices[model] = ModelPrice(*value)
            elif isinstance(value, dict) and set(value) == {"prompt_usd_per_mtok", "completion_usd_per_mtok"}:
                prices[model] = ModelPrice(**value)
            else:
                raise ValueError(
                    f"price table entry {model!r}: {value!r} is not [prompt_usd_per_mtok, completion_usd_per_mtok]"
                )
        return cls(prices)

    def price(self, model: str) -> ModelPrice | None:
        if model in self._prices:
            return self._prices[model]
        family = _DATED_SUFFIX.sub("", model)
        return self._prices.get(family)

    def cost_usd(self, model: str, prompt_tokens: int | None, completion_tokens: int | None) -> float | None:
        price = self.price(model)
        if price is None or prompt_tokens is None or completion_tokens is None:
            return None
        return price.cost_usd(prompt_tokens, completion_tokens)


def allocate(total: int, weights: Sequence[float]) -> list[int]:
    """Split integer ``total`` in proportion to ``weights`` (largest remainder): parts sum to ``total``."""
    n = len(weights)
    if n == 0:
        return []
    w_sum = float(sum(weights))
    shares = [total * (w / w_sum) if w_sum > 0 else total / n for w in weights]
    parts = [int(math.floor(s)) for s in shares]
    by_remainder = sorted(range(n), key=lambda i: (-(shares[i] - parts[i]), i))
    for i in by_remainder[: total - sum(parts)]:
        parts[i] += 1
    return parts


COST_SUMMARY_COLUMNS = (
    "model", "prompt_version", "symbols", "items", "scored", "rejected", "no_news_rows", "cache_hits",
    "prompt_tokens", "completion_tokens", "cost_usd", "unpriced_items",
)
#: Stored schema of an ``llm_cost`` partition (one UTC day; ``date`` lives in the path).
LLM_COST_SCHEMA = pa.schema(
    [(c, pa.string() if c in ("model", "prompt_version") else pa.float64() if c == "cost_usd" else pa.int64())
     for c in COST_SUMMARY_COLUMNS]
)


def daily_cost_summary(frames: Iterable[pd.DataFrame] | pd.DataFrame) -> pd.DataFrame:
    """The ``llm_cost`` rows of one day: per (model, prompt version), summed over every
    ``llm_sentiment`` partition of the day (frames with or without a ``symbol`` column).

    ``cost_usd`` sums the priced items; ``unpriced_items`` counts scored or rejected
    items whose model has no price (their cost is unknown, not zero).
    """
    frame = frames if isinstance(frames, pd.DataFrame) else pd.concat(list(frames), ignore_index=True)
    if frame.empty:
        return pd.DataFrame({c: pd.Series(dtype="float64" if c == "cost_usd" else "int64") for c in COST_SUMMARY_COLUMNS}).astype(
            {"model": "string", "prompt_version": "string"}
        )
    rows = []
    for (model, version), group in frame.groupby(["model", "prompt_version"], sort=True, dropna=False):
        items = group[group["status"] != "no_news"]
        priced = items["cost_usd"].notna()
        rows.append(
            {
                "model": model,
                "prompt_version": version,
                "symbols": int(group["symbol"].nunique()) if "symbol" in group else 0,
                "items": len(items),
                "scored": int((items["status"] == "scored").sum()),
                "rejected": int((items["status"] == "rejected").sum()),
                "no_news_rows": int((group["status"] == "no_news").sum()),
                "cache_hits": int(items["cache_hit"].sum()),
                "prompt_tokens": int(items["prompt_tokens"].fillna(0).sum()),
                "completion_tokens": int(items["completion_tokens"].fillna(0).sum()),
                "cost_usd": float(items.loc[priced, "cost_usd"].sum()),
                "unpriced_items": int((~priced).sum()),
            }
        )
    out = pd.DataFrame(rows, columns=list(COST_SUMMARY_COLUMNS))
    return out.astype({"model": "string", "prompt_version": "string"})


def cost_to_arrow(summary: pd.DataFrame) -> pa.Table:
    """:func:`daily_cost_summary` rows as a table of ``LLM_COST_SCHEMA`` (stable types on a day without rows)."""
    return pa.Table.from_pandas(summary[list(COST_SUMMARY_COLUMNS)], schema=LLM_COST_SCHEMA, preserve_index=False)
