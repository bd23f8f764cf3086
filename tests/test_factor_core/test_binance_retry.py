"""The one retry policy (factor_core.retry): blocking and async use, counted at the replica, never timed."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from binance_replica import BinanceReplica, FakeClock, Fault, archive_day, kline_rows, klines_csv  # noqa: E402

from factor_core.binance import IPBanned, RateLimited, RequestFailed, RestClient  # noqa: E402
from factor_core.retry import RetryPolicy, retrying  # noqa: E402


class Locked(Exception):
    """Stands in for DuckDB's 'Could not set lock on file' IOException."""


class Flaky:
    def __init__(self, failures: int, exc: type[BaseException] = Locked):
        self.calls, self.failures, self.exc = 0, failures, exc

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.exc(f"attempt {self.calls}")
        return "connected"


def test_a_blocking_caller_is_retried_while_the_predicate_matches_with_jittered_exponential_waits():
    sleeps: list[float] = []
    connect = Flaky(failures=4)
    policy = retrying(lambda e: isinstance(e, Locked), deadline_s=60, backoff_base_s=0.1, backoff_cap_s=0.3,
                      sleep=sleeps.append)
    assert policy(connect) == "connected"
    assert connect.calls == 5 and len(sleeps) == 4
    for n, slept in enumerate(sleeps):  # full jitter: uniform(0, min(cap, base * 2**n))
        assert 0 <= slept <= min(0.3, 0.1 * 2**n)


def test_the_deadline_bounds_the_total_sleep_and_the_last_error_is_raised_unchanged():
    sleeps: list[float] = []
    connect = Flaky(failures=10**6)
    with pytest.raises(Locked, match=r"attempt \d+"):
        retrying(lambda e: isinstance(e, Locked), deadline_s=1.0, backoff_base_s=0.2, backoff_cap_s=0.5,
                 sleep=sleeps.append)(connect)
    assert sum(sleeps) <= 1.0 and connect.calls == len(sleeps) + 1 and connect.calls >= 3


def test_a_failure_the_predicate_does_not_match_is_raised_at_once():
    connect = Flaky(failures=1, exc=PermissionError)
    with pytest.raises(PermissionError):
        retrying(lambda e: isinstance(e, Locked), deadline_s=30, sleep=lambda s: None)(connect)
    assert connect.calls == 1


def test_max_attempts_counts_every_attempt_and_hinted_waits_are_used_verbatim_without_counting():
    sleeps: list[float] = []
    outcomes = iter([Locked("hint 2.5"), Locked("hint 4"), ValueError("x"), ValueError("y"), "ok"])

    def call():
        result = next(outcomes)
        if isinstance(result, BaseException):
            raise result
        return result

    def hint(exc):
        return float(str(exc).split()[1]) if isinstance(exc, Locked) else None

    policy = retrying(lambda e: isinstance(e, (Locked, ValueError)), max_attempts=3, backoff_base_s=0.01,
                      wait_hint=hint, sleep=sleeps.append)
    assert policy(call) == "ok"
    assert sleeps[:2] == [2.5, 4.0] and len(sleeps) == 4 and policy.stop.failures == 2
    with pytest.raises(ValueError, match="a retry policy needs max_attempts or deadline_s"):
        RetryPolicy(max_attempts=None, deadline_s=None)


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def replica(clock):
    with BinanceReplica(clock=clock.time) as server:
        server.symbols = [{"symbol": "BTCUSDT", "status": "TRADING", "baseAsset": "BTC", "quoteAsset": "USDT"}]
        yield server


def exchange_info(replica, clock, **kw):
    async def go():
        async with RestClient(replica.url, replica.url, clock=clock.time, sleep=clock.sleep, **kw) as rest:
            return await rest.exchange_info()

    return asyncio.run(go())


def test_rest_5xx_is_retried_exactly_max_attempts_times_at_the_replica(replica, clock):
    replica.inject("/api/v3/exchangeInfo", *[Fault(status=502)] * 10)
    with pytest.raises(RequestFailed, match="failed after 4 attempt"):
        exchange_info(replica, clock, retry=RetryPolicy(max_attempts=4, backoff_base_s=0.1, backoff_cap_s=1))
    assert len(replica.requests_to("/api/v3/exchangeInfo")) == 4 and len(clock.sleeps) == 3


def test_rest_429s_wait_retry_after_each_time_and_do_not_use_up_the_attempts(replica, clock):
    replica.inject("/api/v3/exchangeInfo", *[Fault(status=429, retry_after=5)] * 3)
    symbols = exchange_info(replica, clock, retry=RetryPolicy(max_attempts=2), max_wait_s=60)
    assert [s["symbol"] for s in symbols] == ["BTCUSDT"]
    assert len(replica.requests_to("/api/v3/exchangeInfo")) == 4 and clock.sleeps == [5, 5, 5]


def test_rest_rate_limit_waits_count_against_max_wait_s_and_stop_before_sleeping_past_it(replica, clock):
    replica.inject("/api/v3/exchangeInfo", *[Fault(status=429, retry_after=20)] * 3)
    with pytest.raises(RateLimited, match="exceeds the max_wait_s=50s budget .40.0s already waited") as raised:
        exchange_info(replica, clock, max_wait_s=50)
    assert not isinstance(raised.value, IPBanned) and raised.value.status == 429
    assert len(replica.requests_to("/api/v3/exchangeInfo")) == 3 and clock.sleeps == [20, 20]


def test_archive_5xx_is_retried_exactly_max_attempts_times_at_the_replica(replica):
    path = replica.put_archive("spot", "daily", "klines", "BTCUSDT", "2024-01-01",
                               klines_csv(kline_rows("2024-01-01")), interval="1m")
    replica.inject(path, *[Fault(status=500)] * 10)
    with pytest.raises(RequestFailed, match=r"failed after 3 attempt\(s\): HTTP 500"):
        archive_day(replica.url, "klines", "BTCUSDT", "2024-01-01",
                    retry=RetryPolicy(max_attempts=3, backoff_base_s=0.001, backoff_cap_s=0.002))
    assert len(replica.requests_to(path)) == 3
    assert len(replica.requests_to(path + ".CHECKSUM")) == 1  # the sibling was fine: asked once
