"""Steps that call the exchange share one concurrency pool, across processes, through the real CLI."""

import time

import pytest

from tests.binance_replica import (
    BinanceReplica,
    Fault,
    agg_trade_rows,
    agg_trades_csv,
    book_depth_csv,
    book_depth_rows,
    funding_csv,
    funding_rows,
    kline_rows,
    klines_csv,
)
from tests.test_factor_assets.cli_runner import assert_ok, run_cli, start_cli

pytestmark = pytest.mark.slow

DELAY_S = 25.0  # longer than a CLI run takes to reach its first step, so without the pool the windows overlap
RAW = "raw_klines,raw_trades,raw_book,raw_funding,raw_quotes"


def test_raw_steps_of_two_runs_never_hit_the_exchange_at_the_same_time(dagster_home, data_root):
    """Two runs (one per symbol), the second launched while the first is talking to the exchange: the
    binance_api pool makes its raw step wait for the first one's slot.

    The second starts once the first has made its first request, not at the same instant: two steps claiming
    a pool's last slot within the same few milliseconds can both get it (Dagster's own claim checks, then
    updates; see docs/operations.md), which is not what this test is about."""
    with BinanceReplica() as replica:
        for symbol in ("BTCUSDT", "ETHUSDT"):
            for path in (
                replica.put_archive("spot", "daily", "klines", symbol, "2024-03-01", klines_csv(kline_rows("2024-03-01")), interval="1m"),
                replica.put_archive("spot", "daily", "aggTrades", symbol, "2024-03-01", agg_trades_csv(agg_trade_rows("2024-03-01", n=200))),
                replica.put_archive("futures/um", "daily", "bookDepth", symbol, "2024-03-01", book_depth_csv(book_depth_rows("2024-03-01"))),
                replica.put_archive("futures/um", "monthly", "fundingRate", symbol, "2024-03", funding_csv(funding_rows(2024, 3))),
            ):
                replica.inject(path, Fault(delay=DELAY_S))  # every step spends time talking to the exchange
        env = {
            "DAGSTER_HOME": str(dagster_home),
            "FACTOR_DATA_ROOT": str(data_root),
            "MARKET_DATA_SOURCE": "binance",
            "BINANCE_ARCHIVE_URL": replica.url,
            "BINANCE_API_URL": replica.url,
            "BINANCE_FAPI_URL": replica.url,
        }
        assert_ok(run_cli(["factor-pipeline", "symbols", "add", "BTCUSDT", "ETHUSDT"], env=env))
        def launch(symbol):
            return start_cli(["dagster", "asset", "materialize", "-m", "factor_assets", "--select", RAW,
                              "--partition", f"2024-03-01|{symbol}"], env=env)

        runs = [launch("BTCUSDT")]
        deadline = time.monotonic() + 300
        while not replica.requests:  # the first run's raw step holds the slot and is inside its first request
            assert runs[0].poll() is None and time.monotonic() < deadline, runs[0].communicate()[0][-3000:]
            time.sleep(0.1)
        runs.append(launch("ETHUSDT"))
        for run in runs:
            output = run.communicate(timeout=600)[0]
            assert run.returncode == 0, output[-5000:]
        windows = {}
        for record in replica.requests:
            symbol = "BTCUSDT" if "BTCUSDT" in record.path else "ETHUSDT"
            start, end = windows.get(symbol, (record.t, record.t))
            windows[symbol] = (min(start, record.t), max(end, record.t + DELAY_S))

    (first, (_, first_end)), (second, (second_start, _)) = sorted(windows.items(), key=lambda item: item[1][0])
    assert first_end <= second_start, f"the runs of {first} and {second} called the exchange at the same time: {windows}"
    for asset in RAW.split(","):
        assert len(list((data_root / asset).rglob("part-0.parquet"))) == 2, asset
