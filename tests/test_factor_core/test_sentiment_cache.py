"""The answer cache: never pay twice, recompute when the question changes, many processes at once."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from factor_core.news.aliases import AliasTable
from factor_core.sentiment import OpenAIScorer, ScoreCache, ScoringFailed, default_cache_path, score_symbol_day
from factor_core.sentiment.cache import CachedAnswer
from factor_core.sentiment.prompt import PromptSettings
from factor_core.sentiment.schema import Verdict
from tests.fake_openai import FakeOpenAI, Reply
from tests.test_factor_core.news_helpers import DAY, news

REPO_ROOT = Path(__file__).resolve().parents[2]
ALIASES = AliasTable.for_symbols(["BTCUSDT", "ETHUSDT"])


async def no_sleep(_seconds: float) -> None:
    return None


@pytest.fixture
def server():
    with FakeOpenAI(api_key="sk-test-cache") as srv:
        yield srv


@pytest.fixture
def cache(tmp_path: Path) -> ScoreCache:
    return ScoreCache(default_cache_path(tmp_path / "data"))


def items(n: int = 4, prefix: str = "Bitcoin story") -> pd.DataFrame:
    return news(*[(f"{prefix} {i}", f"https://x.test/{prefix}/{i}", ["BTCUSDT"]) for i in range(n)])


def run(server, cache, frame, **options):
    scorer = OpenAIScorer(api_key=server.api_key, model="gpt-4o-mini", base_url=server.url, aliases=ALIASES,
                          sleep=no_sleep, **options)
    return score_symbol_day(frame, day=DAY, symbol="BTCUSDT", scorer=scorer, cache=cache)


def test_rescoring_unchanged_items_makes_zero_api_calls(server, cache):
    first = run(server, cache, items())
    assert server.calls == 4
    second = run(server, cache, items())
    assert server.calls == 4  # not one more
    assert second.metadata["calls_made"] == 0 and second.metadata["cache_hits"] == 4
    assert second.frame["cache_hit"].all() and not first.frame["cache_hit"].any()
    same = ["item_id", "score", "confidence", "topics", "rationale", "prompt_tokens", "completion_tokens", "cost_usd"]
    pd.testing.assert_frame_equal(first.frame[same], second.frame[same])
    assert second.metadata["cost_usd"] == 0.0  # nothing spent this run ...
    assert second.metadata["cost_usd_attributed"] == first.metadata["cost_usd_attributed"] > 0  # ... same cost of the scores


def test_a_new_prompt_version_recomputes(server, cache):
    run(server, cache, items())
    again = run(server, cache, items(), prompt=PromptSettings(prompt_version="news-sentiment-v2"))
    assert server.calls == 8 and again.metadata["cache_hits"] == 0
    assert set(again.frame["prompt_version"]) == {"news-sentiment-v2"}


def test_turning_anonymisation_off_recomputes(server, cache):
    run(server, cache, items())
    run(server, cache, items(), prompt=PromptSettings(anonymise=False))
    assert server.calls == 8


def test_another_model_recomputes(server, cache):
    run(server, cache, items(2))
    scorer = OpenAIScorer(api_key=server.api_key, model="gpt-4.1-mini", base_url=server.url, aliases=ALIASES)
    score_symbol_day(items(2), day=DAY, symbol="BTCUSDT", scorer=scorer, cache=cache)
    assert server.calls == 4


def test_an_edited_item_is_the_only_one_scored_again(server, cache):
    run(server, cache, items(3))
    edited = items(3)
    edited.loc[1, "title"] = "Bitcoin story 1, updated"
    result = run(server, cache, edited)
    assert server.calls == 4
    assert result.frame["cache_hit"].tolist() == [True, False, True]


def test_rejected_answers_are_cached_too(server, cache):
    server.script(Reply(content="not json"))
    run(server, cache, items(1))
    again = run(server, cache, items(1))
    assert server.calls == 1
    assert again.frame["status"].tolist() == ["rejected"] and "not JSON" in again.frame["rejected_reason"].iloc[0]


def test_answers_paid_before_a_failure_are_kept_and_not_bought_again(server, cache):
    # Requests go one at a time: items 0, 1 answered, item 2 fails three times, item 3 is then not sent.
    server.script(Reply(), Reply(), Reply(status=500), Reply(status=500), Reply(status=500))
    with pytest.raises(ScoringFailed, match="2024-01-02|BTCUSDT"):
        run(server, cache, items(4), max_concurrency=1, max_attempts=3)
    assert server.calls == 5 and len(cache) == 2
    result = run(server, cache, items(4))
    assert server.calls == 7  # only the items not answered before
    assert result.frame["cache_hit"].tolist() == [True, True, False, False]


def test_the_cache_survives_into_another_process(server, cache, tmp_path):
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(REPO_ROOT)!r})
        from factor_core.news.aliases import AliasTable
        from factor_core.sentiment import OpenAIScorer, ScoreCache, score_symbol_day
        from tests.test_factor_core.news_helpers import DAY, news
        frame = news(*[(f"Bitcoin story {{i}}", f"https://x.test/Bitcoin story/{{i}}", ["BTCUSDT"]) for i in range(4)])
        scorer = OpenAIScorer(api_key=sys.argv[1], model="gpt-4o-mini", base_url=sys.argv[2],
                              aliases=AliasTable.for_symbols(["BTCUSDT", "ETHUSDT"]))
        score_symbol_day(frame, day=DAY, symbol="BTCUSDT", scorer=scorer, cache=ScoreCache(sys.argv[3]))
    """)
    subprocess.run([sys.executable, "-c", script, server.api_key, server.url, str(cache.path)], check=True,
                   cwd=REPO_ROOT, timeout=120)
    assert server.calls == 4
    result = run(server, cache, items(4))
    assert server.calls == 4 and result.frame["cache_hit"].all()


def test_concurrent_processes_write_one_cache_without_losing_answers(tmp_path):
    path = tmp_path / "shared.sqlite"
    ScoreCache(path)
    writer = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(REPO_ROOT)!r})
        from factor_core.sentiment.cache import CachedAnswer, ScoreCache
        from factor_core.sentiment.schema import Verdict
        cache = ScoreCache(sys.argv[1])
        me = sys.argv[2]
        for batch in range(40):
            entries = [(f"{{me}}-{{batch}}-{{i}}", CachedAnswer(Verdict(0.1, 0.5), "m", "v", 1, 1, 0.0)) for i in range(5)]
            entries.append((f"shared-{{batch}}", CachedAnswer(Verdict(0.2, 0.5), "m", me, 1, 1, 0.0)))
            cache.put_many(entries)
    """)
    procs = [subprocess.Popen([sys.executable, "-c", writer, str(path), f"w{n}"], cwd=REPO_ROOT) for n in range(2)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    cache = ScoreCache(path)
    assert len(cache) == 2 * 40 * 5 + 40  # every private row, and each shared key exactly once
    shared = cache.get_many([f"shared-{b}" for b in range(40)])
    assert len(shared) == 40 and {a.prompt_version for a in shared.values()} <= {"w0", "w1"}


def test_the_first_answer_for_a_key_wins(tmp_path):
    cache = ScoreCache(tmp_path / "c.sqlite")
    assert cache.put_many([("k", CachedAnswer(Verdict(0.5, 0.5), "m", "v", 1, 1, 0.0))]) == 1
    assert cache.put_many([("k", CachedAnswer(Verdict(-0.5, 0.5), "m", "v", 1, 1, 0.0))]) == 0
    assert cache.get_many(["k"])["k"].verdict.score == 0.5
