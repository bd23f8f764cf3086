"""Cost accounting: price table, token allocation, the daily llm_cost summary."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from factor_core.sentiment import ModelPrice, PriceTable, daily_cost_summary
from factor_core.sentiment.pricing import allocate
from factor_core.sentiment.score import sentiment_frame


@pytest.mark.parametrize(("total", "weights"), [(1001, [3, 1, 1]), (7, [1, 1, 1]), (0, [2, 5]), (5, [0, 0])])
def test_allocation_sums_to_the_total_and_follows_the_weights(total, weights):
    parts = allocate(total, weights)
    assert sum(parts) == total and all(p >= 0 for p in parts)
    exact = [total * w / sum(weights) if sum(weights) else total / len(weights) for w in weights]
    assert all(abs(p - e) < 1 for p, e in zip(parts, exact))


def test_a_dated_snapshot_takes_its_familys_price_and_unknown_models_have_none():
    table = PriceTable()
    assert table.price("gpt-4o-mini-2024-07-18") == table.price("gpt-4o-mini") == ModelPrice(0.15, 0.60)
    assert table.price("gpt-4o-mini-turbo") is None  # not a date suffix: no guess
    assert table.cost_usd("house-model", 10, 10) is None


def test_configured_prices_override_and_extend_the_defaults():
    table = PriceTable.parse('{"gpt-4o-mini": [1, 2], "house": {"prompt_usd_per_mtok": 0.5, "completion_usd_per_mtok": 0}}')
    assert table.cost_usd("gpt-4o-mini", 1_000_000, 500_000) == pytest.approx(2.0)
    assert table.cost_usd("house", 2_000_000, 9) == pytest.approx(1.0)


@pytest.mark.parametrize("text", ["[1, 2]", '{"m": [1]}', '{"m": [-1, 2]}', "{nope"])
def test_a_malformed_price_table_is_refused_with_what_to_write(text):
    with pytest.raises(ValueError, match="price"):
        PriceTable.parse(text)


def test_daily_summary_sums_each_models_rows_over_the_days_partitions():
    rng = np.random.default_rng(2)
    frames = []
    for symbol in ("BTCUSDT", "ETHUSDT", "SOLUSDT"):
        rows = []
        for k in range(int(rng.integers(1, 6))):
            model = ["gpt-4o-mini", "house"][k % 2]
            status = ["scored", "rejected"][int(rng.integers(0, 2))]
            pt, ct = int(rng.integers(10, 500)), int(rng.integers(5, 50))
            cost = PriceTable().cost_usd(model, pt, ct)
            rows.append({"status": status, "published_at": pd.Timestamp("2024-01-02T01:00Z") + pd.Timedelta(minutes=k),
                         "item_id": f"{symbol}{k}", "score": 0.1 if status == "scored" else None, "topics": "[]",
                         "model": model, "prompt_version": "v1", "anonymised": True, "prompt_tokens": pt,
                         "completion_tokens": ct, "cost_usd": cost, "cache_hit": bool(k % 3 == 0)})
        frames.append(sentiment_frame(rows).assign(symbol=symbol))
    frames.append(sentiment_frame([{"status": "no_news", "model": "gpt-4o-mini", "prompt_version": "v1",
                                    "anonymised": True, "topics": "[]", "prompt_tokens": 0, "completion_tokens": 0,
                                    "cost_usd": 0.0, "cache_hit": False}]).assign(symbol="XRPUSDT"))
    summary = daily_cost_summary(frames).set_index("model")
    everything = pd.concat(frames)
    for model in ("gpt-4o-mini", "house"):
        rows = everything[(everything["model"] == model) & (everything["status"] != "no_news")]
        assert summary.loc[model, "items"] == len(rows)
        assert summary.loc[model, "prompt_tokens"] == rows["prompt_tokens"].sum()
        assert summary.loc[model, "completion_tokens"] == rows["completion_tokens"].sum()
        assert summary.loc[model, "cache_hits"] == rows["cache_hit"].sum()
        assert summary.loc[model, "cost_usd"] == pytest.approx(rows["cost_usd"].dropna().sum())
        assert summary.loc[model, "unpriced_items"] == rows["cost_usd"].isna().sum()
    assert summary.loc["house", "unpriced_items"] == summary.loc["house", "items"] > 0
    assert summary.loc["gpt-4o-mini", "no_news_rows"] == 1 and summary.loc["gpt-4o-mini", "symbols"] == 4


def test_daily_summary_of_no_partitions_is_empty_with_its_columns():
    out = daily_cost_summary(pd.DataFrame())
    assert out.empty and "cost_usd" in out.columns
