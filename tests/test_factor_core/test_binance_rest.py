"""REST client + rate limiter against the local Binance replica (127.0.0.1 only)."""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime, timezone
from pathlib import Path

import aiohttp
import numpy as np
import pyarrow as pa
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from binance_replica import BinanceReplica, FakeClock, Fault, kline_rows, rest_call, rest_klines  # noqa: E402

from factor_core.binance import fetch_exchange_info_sync  # noqa: E402
from factor_core.binance.errors import (  # noqa: E402
    IPBanned,
    MalformedResponse,
    RateLimited,
    RequestFailed,
    UnknownSymbol,
)
from factor_core.binance.limiter import WeightLimiter  # noqa: E402
from factor_core.binance.rest import RestClient, depth_weight  # noqa: E402
from factor_core.retry import RetryPolicy  # noqa: E402
from factor_core.schemas import BOOK, FUNDING, KLINES, InvalidSymbolError  # noqa: E402

DAY = "2024-01-01"


def _fill(replica: BinanceReplica) -> None:
    rows = kline_rows(DAY, seed=11) + kline_rows("2024-01-02", n=30, seed=12)
    replica.klines["BTCUSDT"] = rest_klines(kline_rows("2023-12-31", n=1440, seed=10)[-30:] + rows)
    replica.depth["BTCUSDT"] = {
        "lastUpdateId": 987,
        "bids": [[f"{42000 - i:.2f}", f"{0.5 + i:.8f}"] for i in range(100)],
        "asks": [[f"{42001 + i:.2f}", f"{0.25 + i:.8f}"] for i in range(100)],
    }
    replica.symbols = [
        {"symbol": "BTCUSDT", "status": "TRADING", "baseAsset": "BTC", "quoteAsset": "USDT"},
        {"symbol": "ETHUSDT", "status": "TRADING", "baseAsset": "ETH", "quoteAsset": "USDT"},
        {"symbol": "OLDBTC", "status": "BREAK", "baseAsset": "OLD", "quoteAsset": "BTC"},
    ]
    t0 = int(datetime(2024, 1, 1, tzinfo=timezone.utc).timestamp() * 1000)
    replica.funding["BTCUSDT"] = [
        {"symbol": "BTCUSDT", "fundingTime": t0 + i * 8 * 3_600_000 + 3, "fundingRate": f"{0.0001 * (i % 5 - 2):.8f}",
         "markPrice": "42000.0"}
        for i in range(1500)  # > 1000: two pages
    ]


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def replica(clock):
    r = BinanceReplica(clock=clock.time)
    _fill(r)
    with r:
        yield r


def client(replica, clock, **kw) -> RestClient:
    kw.setdefault("retry", RetryPolicy(max_attempts=3, backoff_base_s=0.5, backoff_cap_s=2))
    return RestClient(replica.url, replica.url, clock=clock.time, sleep=clock.sleep, **kw)


def run(replica, clock, fn, **kw):
    async def go():
        async with client(replica, clock, **kw) as c:
            return await fn(c)

    return asyncio.run(go())


# --------------------------------------------------------------------------- endpoints


def test_klines_day_paginates_to_exactly_1440(replica, clock):
    t = rest_call(lambda c: c.klines_day("BTCUSDT", DAY), api_url=replica.url, clock=clock.time, sleep=clock.sleep)
    assert t.schema.equals(KLINES)
    assert t.num_rows == 1440
    ts = t.column("open_time").cast(pa.int64()).to_numpy()
    assert (np.diff(ts) == 60 * 10**9).all()  # no duplicates, no gaps
    assert t.column("open_time")[0].as_py() == datetime(2024, 1, 1, tzinfo=timezone.utc)
    calls = replica.requests_to("/api/v3/klines")
    assert len(calls) == 2 and all(c.query["limit"] == "1000" for c in calls)
    expected = kline_rows(DAY, seed=11)
    assert t.column("close").to_pylist() == [float(r[4]) for r in expected]
    assert t.column("trade_count").to_pylist() == [int(r[8]) for r in expected]


def test_depth_snapshot_top_n(replica, clock):
    t = run(replica, clock, lambda c: c.depth("BTCUSDT"))
    assert t.schema.equals(BOOK) and t.num_rows == 40
    rows = t.to_pylist()
    assert set(t.column("ts").cast(pa.int64()).to_pylist()) == {int(round(clock.now * 1e9))}
    assert rows[0] == {"ts": rows[0]["ts"], "side": "bid", "level": 1, "price": 42000.0, "qty": 0.5,
                       "band_pct": None, "notional": 42000.0 * 0.5}
    assert rows[20]["side"] == "ask" and rows[20]["level"] == 1 and rows[20]["price"] == 42001.0
    assert [r["level"] for r in rows[:20]] == list(range(1, 21))
    assert replica.requests_to("/api/v3/depth")[0].query["limit"] == "20"
    assert [depth_weight(n) for n in (20, 100, 500, 1000, 5000)] == [5, 5, 25, 50, 250]
    deep = rest_call(lambda c: c.depth("BTCUSDT", 100), api_url=replica.url)
    assert deep.num_rows == 200 and deep.column("level").to_pylist()[-1] == 100


def test_exchange_info(replica, clock):
    all_ = fetch_exchange_info_sync(api_url=replica.url)
    assert [s["symbol"] for s in all_] == ["BTCUSDT", "ETHUSDT", "OLDBTC"]
    trading = fetch_exchange_info_sync(api_url=replica.url, status="TRADING")
    assert [(s["symbol"], s["baseAsset"], s["quoteAsset"]) for s in trading] == [
        ("BTCUSDT", "BTC", "USDT"), ("ETHUSDT", "ETH", "USDT")]


def test_funding_history_two_pages(replica, clock):
    t = rest_call(lambda c: c.funding_history("BTCUSDT", "2024-01-01", "2025-01-01"), api_url=replica.url,
                  clock=clock.time, sleep=clock.sleep)
    assert t.schema.equals(FUNDING)
    assert t.num_rows == 366 * 3
    assert len(replica.requests_to("/fapi/v1/fundingRate")) == 2
    assert set(t.column("funding_interval_hours").to_pylist()) == {8}
    assert t.column("funding_rate")[:3].to_pylist() == [-0.0002, -0.0001, 0.0]


def test_unknown_symbol(replica, clock):
    with pytest.raises(UnknownSymbol, match="'NOSUCHUSDT'.*-1121 Invalid symbol"):
        run(replica, clock, lambda c: c.klines_day("NOSUCHUSDT", DAY))
    with pytest.raises(InvalidSymbolError):
        run(replica, clock, lambda c: c.depth("btc-usdt"))
    assert not replica.requests_to("/api/v3/depth")


def test_malformed_json(replica, clock):
    replica.inject("/api/v3/exchangeInfo", Fault(body=b'{"symbols": [ <html>oops'))
    with pytest.raises(MalformedResponse, match=r"/api/v3/exchangeInfo.*<html>oops"):
        run(replica, clock, lambda c: c.exchange_info())


# --------------------------------------------------------------------------- rate limits


def test_429_retry_after_then_success(replica, clock):
    replica.inject("/api/v3/exchangeInfo", Fault(status=429, retry_after=7))
    symbols = run(replica, clock, lambda c: c.exchange_info())
    assert len(symbols) == 3
    first, second = replica.requests_to("/api/v3/exchangeInfo")
    assert second.t - first.t >= 7
    assert clock.sleeps == [pytest.approx(7)]


def test_418_ban_is_honoured(replica, clock):
    replica.inject("/api/v3/exchangeInfo", Fault(status=418, retry_after=120))
    symbols = run(replica, clock, lambda c: c.exchange_info(), max_wait_s=300)
    assert len(symbols) == 3
    first, second = replica.requests_to("/api/v3/exchangeInfo")
    assert second.t - first.t >= 120  # nothing sent to the host before Retry-After passed
    assert sum(clock.sleeps) == pytest.approx(120)


def test_418_beyond_budget_fails_fast_and_blocks_host(replica, clock):
    replica.inject("/api/v3/exchangeInfo", Fault(status=418, retry_after=7200))

    async def go():
        async with client(replica, clock, max_wait_s=30) as c:
            with pytest.raises(IPBanned) as ei:
                await c.exchange_info()
            msg = str(ei.value)
            assert "HTTP 418" in msg and "Retry-After 7200s" in msg and "max_wait_s=30s" in msg
            sent = len(replica.requests)
            with pytest.raises(IPBanned, match="banned.*exceeds the max_wait_s=30s"):
                await c.depth("BTCUSDT")  # the ban covers every endpoint of the host
            assert len(replica.requests) == sent  # not even one request
        assert clock.sleeps == []  # failed without waiting

    asyncio.run(go())


def test_limiter_slows_down_with_tiny_limit(replica, clock):
    """weight_limit=10, margin 0.9 -> budget 9: 4 klines calls (weight 2) fit, the 5th waits."""

    async def go():
        async with client(replica, clock, weight_limit=10) as c:
            for _ in range(6):
                await c.klines("BTCUSDT", start_ms=0, limit=5)

    asyncio.run(go())
    calls = replica.requests_to("/api/v3/klines")
    windows = [int(c.t // 60) for c in calls]
    assert windows[:4] == [windows[0]] * 4
    assert windows[4] == windows[5] == windows[0] + 1
    assert len(clock.sleeps) == 1 and 0 < clock.sleeps[0] <= 61


def test_limiter_reads_server_weight_header(replica, clock):
    """Other processes used 5,990 of 6,000 this minute: the client waits for the next window."""
    replica.extra_weight = 5388  # 5388 + 20 (exchangeInfo) = 5408 > 0.9 * 6000 - 20

    async def go():
        async with client(replica, clock) as c:
            await c.exchange_info()
            replica.extra_weight = 0  # a new minute on the server
            await c.exchange_info()

    asyncio.run(go())
    first, second = replica.requests_to("/api/v3/exchangeInfo")
    assert int(second.t // 60) == int(first.t // 60) + 1
    assert len(clock.sleeps) == 1


def test_weight_wait_beyond_budget_fails_fast(replica, clock):
    replica.extra_weight = 5990
    async def go():
        async with client(replica, clock, max_wait_s=0.001) as c:
            await c.klines("BTCUSDT", limit=1)
            with pytest.raises(RateLimited, match="would exceed 5400 of 6000/min.*max_wait_s"):
                await c.klines("BTCUSDT", limit=1)
    # the first call may itself need to wait if the fake clock is at a minute edge: avoid that
    clock.now = (clock.now // 60) * 60 + 1
    asyncio.run(go())


def test_limiter_unit():
    now = [120.0]
    lim = WeightLimiter(100, safety_margin=0.5, clock=lambda: now[0])  # budget 50
    wait, _, w = lim.acquire_or_wait(30)
    assert wait == 0
    lim.settle(30, w, "45")  # server says 45 used (others share the IP)
    wait, reason, _ = lim.acquire_or_wait(10)
    assert wait == pytest.approx(60.25) and "exceed 50" in reason
    now[0] = 180.5  # next window: counter reset
    assert lim.acquire_or_wait(10)[0] == 0


# --------------------------------------------------------------------------- transport faults


def test_500_then_success(replica, clock):
    replica.inject("/api/v3/depth", Fault(status=500), Fault(status=502))
    t = run(replica, clock, lambda c: c.depth("BTCUSDT", 5))
    assert t.num_rows == 10
    assert len(replica.requests_to("/api/v3/depth")) == 3
    assert len(clock.sleeps) == 2 and all(0 <= s <= 2 for s in clock.sleeps)  # jittered backoff


def test_5xx_exhausted_reports_last_error(replica, clock):
    replica.inject("/api/v3/depth", *[Fault(status=503, body=b"upstream down")] * 3)
    with pytest.raises(RequestFailed, match="failed after 3 attempt.*HTTP 503: upstream down"):
        run(replica, clock, lambda c: c.depth("BTCUSDT"))


def test_connection_reset_then_success_and_exhausted(replica, clock):
    replica.inject("/api/v3/exchangeInfo", Fault(reset=True))
    assert len(run(replica, clock, lambda c: c.exchange_info())) == 3
    # aiohttp itself may retry once on a dropped keep-alive connection: inject plenty
    replica.inject("/api/v3/exchangeInfo", *[Fault(reset=True)] * 10)
    with pytest.raises(RequestFailed, match="exchangeInfo failed after 3 attempt") as ei:
        run(replica, clock, lambda c: c.exchange_info())
    assert isinstance(ei.value.last_error, (aiohttp.ClientError, ConnectionError))


def test_read_timeout_then_success(replica, clock):
    replica.inject("/api/v3/exchangeInfo", Fault(delay=1.5))
    symbols = run(replica, clock, lambda c: c.exchange_info(),
                  timeout=aiohttp.ClientTimeout(total=10, sock_read=0.4))
    assert len(symbols) == 3
    calls = replica.requests_to("/api/v3/exchangeInfo")
    assert calls[0].fault is not None and calls[0].fault.delay == 1.5 and len(calls) >= 2


def test_read_timeout_exhausted(replica, clock):
    replica.inject("/api/v3/exchangeInfo", *[Fault(delay=0.6)] * 2)
    with pytest.raises(RequestFailed, match="failed after 2 attempt.*Timeout"):
        run(replica, clock, lambda c: c.exchange_info(),
            timeout=aiohttp.ClientTimeout(total=5, sock_read=0.15),
            retry=RetryPolicy(max_attempts=2, backoff_base_s=0.01))
