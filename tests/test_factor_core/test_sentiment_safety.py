"""The API key never appears in anything a run wrote: files, cache, logs, metadata, errors.

The run: news from a landing folder, scored for two symbols through the fake
server with the real ``openai`` client (DEBUG logging of every logger on),
stored as Parquet with the metadata beside it, the day's cost summary, the
SQLite cache with its WAL, and a second run with a refused key whose error
and full traceback are written out too. Then every byte is searched.
"""

from __future__ import annotations

import json
import logging
import traceback
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from factor_core.news import AliasTable, build_news_items
from factor_core.news.items import to_arrow as news_to_arrow
from factor_core.sentiment import (
    ApiKeyRefused,
    ScoreCache,
    daily_cost_summary,
    default_cache_path,
    score_symbol_day,
    select_scorer,
)
from factor_core.sentiment.prompt import PromptSettings
from factor_core.sentiment.score import to_arrow as sentiment_to_arrow
from tests.fake_openai import FakeOpenAI
from tests.test_factor_core.news_helpers import DAY

KEY = "sk-proj-SAFETY-TEST-KEY-0f9e8d7c6b5a"
WRONG_KEY = "sk-proj-WRONG-KEY-1a2b3c4d"


def write_landing(landing: Path) -> None:
    (landing / "news").mkdir(parents=True)
    lines = [
        {"published_at": "2024-01-02T09:15:00Z", "source": "desk", "title": "Bitcoin ETF inflows accelerate",
         "text": "Traders cheer.", "url": "https://n.test/1"},
        {"published_at": "2024-01-02T10:30:00+00:00", "source": "desk", "title": "Ethereum upgrade delayed",
         "text": "Developers postpone the fork.", "url": "https://n.test/2"},
        {"published_at": "2024-01-02T11:00:00Z", "title": "BTC and ETH slide together", "text": ""},
    ]
    (landing / "news" / "day.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")


def test_the_api_key_is_absent_from_everything_a_run_wrote(tmp_path, caplog):
    data_root, landing = tmp_path / "data", tmp_path / "landing"
    write_landing(landing)
    aliases = AliasTable.for_symbols(["BTCUSDT", "ETHUSDT"])
    cache = ScoreCache(default_cache_path(data_root))
    with caplog.at_level(logging.DEBUG), FakeOpenAI(api_key=KEY) as server:
        frame = build_news_items(DAY, aliases, landing_dir=landing).frame
        pq.write_table(news_to_arrow(frame), data_root / "news_items.parquet")
        frames = []
        for symbol in ("BTCUSDT", "ETHUSDT"):
            scorer = select_scorer(api_key=KEY, model="gpt-4o-mini", base_url=server.url, aliases=aliases)
            result = score_symbol_day(frame, day=DAY, symbol=symbol, scorer=scorer, cache=cache)
            out = data_root / "llm_sentiment" / f"symbol={symbol}" / "date=2024-01-02"
            out.mkdir(parents=True)
            pq.write_table(sentiment_to_arrow(result.frame), out / "part-0.parquet")
            (out / "metadata.json").write_text(json.dumps(result.metadata, default=str))
            (out / "repr.txt").write_text(repr(scorer) + "\n" + repr(vars(scorer)))
            frames.append(result.frame.assign(symbol=symbol))
        assert server.calls == 4  # BTC: items 1 and 3; ETH: items 2 and 3 (scored once per symbol)
        daily_cost_summary(frames).to_parquet(data_root / "llm_cost.parquet")

        # a new prompt version, so the cache does not answer and the refused key is really sent
        refused = select_scorer(api_key=WRONG_KEY, model="gpt-4o-mini", base_url=server.url, aliases=aliases,
                                prompt=PromptSettings(prompt_version="news-sentiment-refused"))
        with pytest.raises(ApiKeyRefused) as info:
            score_symbol_day(frame, day=DAY, symbol="BTCUSDT", scorer=refused, cache=cache)
        (data_root / "error.txt").write_text("".join(traceback.format_exception(info.value)))
    (data_root / "log.txt").write_text(caplog.text)

    written = [p for p in tmp_path.rglob("*") if p.is_file() and not p.is_relative_to(landing)]
    assert any(p.name.endswith(".sqlite") for p in written) and any(p.suffix == ".parquet" for p in written)
    assert caplog.records, "DEBUG logging captured nothing: the search would prove nothing"
    for path in written:
        blob = path.read_bytes()
        for secret in (KEY, WRONG_KEY):
            assert secret.encode() not in blob, f"{secret[:12]}... found in {path}"
