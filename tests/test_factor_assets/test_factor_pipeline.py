"""The liquidity layer and factor_bars through Dagster: lineage, stored values, no look-ahead, range == day by day."""

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import talib
from dagster import AssetKey, materialize

from factor_assets import defs
from factor_assets.factors import factor_bars
from factor_assets.liquidity import LIQUIDITY_ASSETS
from factor_assets.raw import build_raw_assets
from factor_core import factors as F
from factor_core import liquidity as L
from partitions import DAY_SYMBOL, register_symbols
from tests.conftest import partition_metadata

SYMBOLS = ["BTCUSDT", "ETHUSDT"]
START = dt.date(2024, 1, 1)
RAW = build_raw_assets("synthetic")
ALL_ASSETS = [RAW, *LIQUIDITY_ASSETS, factor_bars]
LIQD = [s.name for s in F.FACTORS if s.name.startswith("liqd_")]
LIQ = [s.name for s in F.FACTORS if s.name.startswith("liq_")]


def _day(i: int) -> str:
    return (START + dt.timedelta(days=i)).isoformat()


@pytest.fixture
def resources(pipeline_resources):
    return pipeline_resources()


def _run_range(instance, resources, first: str, last: str, symbols=SYMBOLS):
    """One run over days first..last x symbols (a rectangle of partitions)."""
    result = materialize(
        ALL_ASSETS,
        instance=instance,
        resources=resources,
        tags={
            "dagster/asset_partition_range_start": f"{first}|{symbols[0]}",
            "dagster/asset_partition_range_end": f"{last}|{symbols[-1]}",
        },
    )
    assert result.success
    return result


def _read(root: Path, asset: str, symbol: str, days: list[str] | None = None) -> pd.DataFrame:
    """Stored partitions of one symbol read back with pyarrow (not through the IO manager), time-sorted."""
    base = root / asset / f"symbol={symbol}"
    paths = sorted(base.glob("date=*/part-0.parquet")) if days is None else [base / f"date={d}" / "part-0.parquet" for d in days]
    assert paths, f"nothing stored for {asset} {symbol}"
    frames = []
    for path in paths:
        frame = pq.read_table(path).to_pandas()
        frames.append(frame.assign(date=path.parent.name.removeprefix("date=")))
    out = pd.concat(frames, ignore_index=True)
    time_col = "open_time" if "open_time" in out.columns else "ts"
    return out.sort_values(time_col, kind="stable").reset_index(drop=True)


def _raw_day(root: Path, asset: str, symbol: str, day: str) -> pd.DataFrame:
    return pq.read_table(root / asset / f"symbol={symbol}" / f"date={day}" / "part-0.parquet").to_pandas()


def _close(actual, expected, *, rtol: float, atol: float = 0.0, what: str = "") -> None:
    actual = np.asarray(actual, dtype=float)
    expected = np.asarray(expected, dtype=float)
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected), err_msg=f"{what}: NaN pattern")
    m = ~np.isnan(expected)
    np.testing.assert_allclose(actual[m], expected[m], rtol=rtol, atol=atol, err_msg=what)


# --------------------------------------------------------------------------- lineage


def _upstream_keys(instance, child: str, parent: str, key: str) -> list[str]:
    """The partitions of ``parent`` that partition ``key`` of ``child`` loads, as the asset graph maps them."""
    graph = defs.resolve_asset_graph()
    mapping = graph.get_partition_mapping(AssetKey(child), AssetKey(parent))
    subset = DAY_SYMBOL.empty_subset().with_partition_keys([key])
    result = mapping.get_upstream_mapped_partitions_result_for_partitions(
        subset, DAY_SYMBOL, DAY_SYMBOL, dynamic_partitions_store=instance
    )
    return sorted(str(k) for k in result.partitions_subset.get_partition_keys())


def test_factor_bars_reads_same_day_minutes_and_only_the_previous_days_summary(instance):
    register_symbols(instance, SYMBOLS)
    graph = defs.resolve_asset_graph()

    def parents(name):
        return sorted(k.to_user_string() for k in graph.get(AssetKey(name)).parent_keys)

    # One step computes both liquidity outputs from the same four raw inputs.
    assert parents("liquidity_metrics") == ["raw_book", "raw_klines", "raw_quotes", "raw_trades"]
    assert parents("liquidity_daily") == ["raw_book", "raw_klines", "raw_quotes", "raw_trades"]
    assert parents("factor_bars") == ["liquidity_daily", "liquidity_metrics", "raw_funding", "raw_klines"]
    key = "2024-01-05|ETHUSDT"
    assert _upstream_keys(instance, "factor_bars", "liquidity_metrics", key) == [key]
    assert _upstream_keys(instance, "factor_bars", "liquidity_daily", key) == ["2024-01-04|ETHUSDT"]  # d-1, never d
    assert _upstream_keys(instance, "factor_bars", "raw_funding", key) == ["2024-01-04|ETHUSDT", key]  # never d+1
    assert _upstream_keys(instance, "factor_bars", "liquidity_daily", "2024-01-01|ETHUSDT") == []  # calendar start
    # The rolling VPIN window: the trades of d-1, the bars of d-6..d; book and quotes of the day only.
    window = {"raw_book": [key], "raw_quotes": [key], "raw_trades": ["2024-01-04|ETHUSDT", key],
              "raw_klines": [f"2024-01-0{d}|ETHUSDT" for d in range(1, 6)]}  # d-6 is before the calendar: clipped
    for child in ("liquidity_metrics", "liquidity_daily"):
        for parent in parents(child):
            assert _upstream_keys(instance, child, parent, key) == window[parent], (child, parent)


# --------------------------------------------------------------------------- liquidity assets


def test_liquidity_assets_store_finite_metrics_and_feed_factor_bars(instance, resources, data_root):
    register_symbols(instance, SYMBOLS)
    days = [_day(i) for i in range(3)]
    result = _run_range(instance, resources, days[0], days[-1])

    meta = partition_metadata(result, "liquidity_metrics")
    assert sorted(meta) == sorted(f"{d}|{s}" for d in days for s in SYMBOLS)  # one event per partition
    for key, values in meta.items():
        assert values["rows"] == 1440 and values["minutes_with_book"] == 1.0, key
        assert 0 < values["mean_quoted_spread_bps"] < 100, key

    for symbol in SYMBOLS:
        minute = _read(data_root, "liquidity_metrics", symbol)
        assert len(minute) == 3 * 1440 and list(minute.columns) == [*L.MINUTE_COLUMNS, "date"]
        for col in ("quoted_spread_bps", "depth_10bps_usd", "depth_50bps_usd", "mid"):
            values = minute[col].to_numpy(float)
            assert np.isfinite(values).all() and (values > 0).all(), col
        # Every trade prints at the quote in force, so every minute with trades has an effective spread.
        assert np.isfinite(minute.loc[minute["n_trades"] > 0, "effective_spread_bps"]).all()
        assert minute["depth_imbalance"].between(-1, 1).all()

        daily = _read(data_root, "liquidity_daily", symbol)
        assert list(daily["date"]) == days and len(daily) == 3
        assert (daily["ts"] == pd.to_datetime(days).tz_localize("UTC")).all()
        assert (daily["known_at"] - daily["ts"] == pd.Timedelta("1D")).all()
        for i, day in enumerate(days):
            # the asset's glue against factor_core directly on the raw partitions (the VPIN window read by hand)
            raw = {a: _raw_day(data_root, a, symbol, day) for a in ("raw_book", "raw_trades", "raw_klines", "raw_quotes")}
            date = dt.date.fromisoformat(day)
            bars = {dt.date.fromisoformat(d): _raw_day(data_root, "raw_klines", symbol, d) for d in days[:i]}
            trades_before = _raw_day(data_root, "raw_trades", symbol, days[i - 1]) if i else None
            expected_minute = L.minute_liquidity(raw["raw_book"], raw["raw_trades"], raw["raw_klines"], raw["raw_quotes"])
            stored_minute = minute[minute["date"] == day].drop(columns="date").reset_index(drop=True)
            pd.testing.assert_frame_equal(stored_minute, expected_minute, check_dtype=False)
            state = L.rolling_vpin_state(date, klines_by_day=bars, trades_previous=trades_before)
            expected = L.compute_daily(date, klines=raw["raw_klines"], trades=raw["raw_trades"],
                                       book=raw["raw_book"], quotes=raw["raw_quotes"], previous=state)
            row = daily[daily["date"] == day].iloc[0]
            for key in L.DAILY_KEYS:
                _close([row[key]], [expected.values[key]], rtol=1e-12, what=f"{symbol} {day} {key}")
            for key in ("quoted_spread_bps", "effective_spread_bps", "depth_50bps_usd", "kyle_lambda_bps_per_sqrt_usd",
                        "amihud_per_musd", "cs_spread_bps"):
                assert np.isfinite(row[key]), key
            assert row["quoted_spread_bps"] > 0 and row["depth_50bps_usd"] > 0
        first = daily.iloc[0]
        assert np.isnan(first["vpin"])  # no previous day to size the buckets: null, never the day's own volume
        assert 0 <= daily.iloc[-1]["vpin"] <= 1  # the buckets rolled across midnight

        bars = _read(data_root, "factor_bars", symbol)
        assert len(bars) == 3 * 24
        assert bars[LIQ].notna().all().all()  # the liq_* columns are populated on every bar
        first = bars["date"] == days[0]
        assert bars.loc[first, LIQD].isna().all().all()  # no previous day before the first day of history
        # Roll is undefined on some days by design; VPIN needs a previous day to size its buckets.
        populated = [c for c in LIQD if c not in ("liqd_roll_spread_bps", "liqd_vpin")]
        assert bars.loc[~first, populated].notna().all().all()

    fb_meta = partition_metadata(result, "factor_bars")
    noted = sorted(k for k, v in fb_meta.items() if "no liquidity_daily for the previous day" in v.get("note", ""))
    assert noted == sorted(f"{days[0]}|{s}" for s in SYMBOLS)


def test_factor_bars_refuses_to_run_without_the_days_liquidity_metrics(instance, resources):
    register_symbols(instance, SYMBOLS)
    key = f"{_day(0)}|{SYMBOLS[0]}"
    materialize([RAW], instance=instance, resources=resources, partition_key=key)
    with pytest.raises(Exception, match=r"liquidity_metrics partition .* has not been materialized"):
        materialize(ALL_ASSETS, instance=instance, resources=resources, partition_key=key, selection=[factor_bars])


# --------------------------------------------------------------------------- no look-ahead


def _write_stored(root: Path, asset: str, symbol: str, day: str, frame: pd.DataFrame) -> None:
    path = root / asset / f"symbol={symbol}" / f"date={day}" / "part-0.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)


def test_daily_liquidity_join_has_no_look_ahead(instance, resources, data_root):
    symbol = SYMBOLS[1]
    register_symbols(instance, [symbol])
    days = [_day(i) for i in range(3)]
    _run_range(instance, resources, days[0], days[-1], symbols=[symbol])
    daily = _read(data_root, "liquidity_daily", symbol).set_index("date")
    bars = _read(data_root, "factor_bars", symbol)
    for i, day in enumerate(days[1:], start=1):
        on_day = bars[bars["date"] == day]
        for name in LIQD:
            key = name.removeprefix("liqd_")
            previous = daily.loc[days[i - 1], key]
            if np.isnan(previous):
                assert on_day[name].isna().all(), (day, name)
            else:
                assert (on_day[name] == previous).all(), (day, name)  # d-1 on every bar of d
        # ...and not the same day's summary (which is only known at the day's end)
        assert daily.loc[day, "vpin"] != daily.loc[days[i - 1], "vpin"]
        assert (on_day["liqd_vpin"] != daily.loc[day, "vpin"]).all()

    # Tamper with the stored summary of day d itself: factor_bars of d must not move. Tampering with
    # d-1 must (the control), which also proves the re-run really re-read its inputs.
    target = days[2]
    key = f"{target}|{symbol}"
    before = _read(data_root, "factor_bars", symbol, [target])
    stored_d = pq.read_table(data_root / "liquidity_daily" / f"symbol={symbol}" / f"date={target}" / "part-0.parquet").to_pandas()
    _write_stored(data_root, "liquidity_daily", symbol, target, stored_d.assign(vpin=0.999, kyle_lambda_bps_per_sqrt_usd=-1e9))
    materialize(ALL_ASSETS, instance=instance, resources=resources, partition_key=key, selection=[factor_bars])
    pd.testing.assert_frame_equal(_read(data_root, "factor_bars", symbol, [target]), before, check_exact=True)

    previous_day = days[1]
    stored_prev = pq.read_table(data_root / "liquidity_daily" / f"symbol={symbol}" / f"date={previous_day}" / "part-0.parquet").to_pandas()
    _write_stored(data_root, "liquidity_daily", symbol, previous_day, stored_prev.assign(vpin=0.999))
    materialize(ALL_ASSETS, instance=instance, resources=resources, partition_key=key, selection=[factor_bars])
    after = _read(data_root, "factor_bars", symbol, [target])
    assert (after["liqd_vpin"] == 0.999).all()
    pd.testing.assert_frame_equal(after.drop(columns="liqd_vpin"), before.drop(columns="liqd_vpin"), check_exact=True)


# --------------------------------------------------------------------------- multi-week run


def _hourly_from_raw_klines(root: Path, symbol: str) -> pd.DataFrame:
    """Hourly OHLCV rebuilt independently from the stored 1-minute partitions, with pandas."""
    k = _read(root, "raw_klines", symbol).set_index("open_time")
    g = k.resample("1h")
    return pd.DataFrame({"high": g["high"].max(), "low": g["low"].min(), "close": g["close"].last(),
                         "volume": g["volume"].sum()})


@pytest.mark.slow
def test_multi_week_range_runs_match_talib_one_pass_and_day_by_day(instance, resources, data_root):
    n_days = F.WARMUP_DAYS + 4
    days = [_day(i) for i in range(n_days)]
    register_symbols(instance, SYMBOLS)
    # two range runs (each one run for all of its days x symbols); the second one's look-backs cross into the first
    half = n_days // 2
    _run_range(instance, resources, days[0], days[half - 1])
    _run_range(instance, resources, days[half], days[-1])
    assert len(instance.get_runs()) == 2

    kept = pd.Timestamp(days[F.WARMUP_DAYS], tz="UTC")  # first day with a full warm-up before it
    stored_by_symbol = {}
    for symbol in SYMBOLS:
        stored = _read(data_root, "factor_bars", symbol)
        assert list(stored["date"].unique()) == days and len(stored) == 24 * n_days
        assert (stored["ts"].diff().iloc[1:] == pd.Timedelta("1h")).all()
        stored_by_symbol[symbol] = stored

        # (a) TA-Lib and NumPy on hourly closes rebuilt from raw_klines with pandas
        hourly = _hourly_from_raw_klines(data_root, symbol)
        assert (hourly.index == pd.DatetimeIndex(stored["ts"])).all()
        c, h, lo = (hourly[x].to_numpy(float) for x in ("close", "high", "low"))
        np.testing.assert_array_equal(stored["close"].to_numpy(float), c)
        _close(stored["log_ret_1"], np.r_[np.nan, np.log(c[1:] / c[:-1])], rtol=1e-12, what="log_ret_1")
        _close(stored["rsi_14"], talib.RSI(c, 14), rtol=1e-9, what="rsi_14")
        _close(stored["rsi_28"], talib.RSI(c, 28), rtol=1e-9, what="rsi_28")
        _close(stored["atr_14"], talib.ATR(h, lo, c, 14), rtol=1e-9, what="atr_14")
        up, mid, low_band = talib.BBANDS(c, 20, nbdevup=2, nbdevdn=2, matype=0)
        _close(stored["bb_mid_20"], mid, rtol=1e-9, what="bb_mid_20")
        _close(stored["bb_upper_20"], up, rtol=1e-9, what="bb_upper_20")
        _close(stored["bb_lower_20"], low_band, rtol=1e-9, what="bb_lower_20")
        line = talib.EMA(c, 12) - talib.EMA(c, 26)
        valid = ~np.isnan(line)
        signal = np.full_like(line, np.nan)
        signal[valid] = talib.EMA(line[valid], 9)
        scale = np.nanmax(np.abs(line))
        _close(stored["macd_12_26"], line, rtol=1e-9, atol=1e-12 * scale, what="macd_12_26")
        _close(stored["macd_signal_9"], signal, rtol=1e-9, atol=1e-12 * scale, what="macd_signal_9")

        # (b) one pass of compute_factor_bars over the whole concatenated history
        one = F.compute_factor_bars(
            _read(data_root, "raw_klines", symbol).drop(columns="date"),
            funding=_read(data_root, "raw_funding", symbol).drop(columns="date"),
            liquidity=_read(data_root, "liquidity_metrics", symbol).drop(columns="date"),
            liquidity_daily=_read(data_root, "liquidity_daily", symbol).drop(columns="date"),
        )
        assert (one["ts"] == stored["ts"]).all()
        past = (stored["ts"] >= kept).to_numpy()
        for spec in F.FACTORS:
            if not spec.start_invariant:
                continue  # obv: cumulative from the start of its input (documented)
            got, exp = stored[spec.name].to_numpy(float)[past], one[spec.name].to_numpy(float)[past]
            floor = 1e-9 * (np.nanmax(np.abs(one[spec.name].to_numpy(float))) if one[spec.name].notna().any() else 0.0)
            _close(got, exp, rtol=1e-6, atol=floor, what=spec.name)
        assert stored.loc[past, ["funding_rate", *LIQ, *LIQD]].drop(columns="liqd_roll_spread_bps").notna().all().all()

    # Day by day, in no particular order, on the same stored inputs: the same values as the range run.
    # Days in the middle of the range: the next day's funding (00:00 settlement) exists in storage.
    check_days = [days[-2], days[-4], days[-3]]
    for symbol in SYMBOLS:
        for day in check_days:
            materialize(ALL_ASSETS, instance=instance, resources=resources, partition_key=f"{day}|{symbol}",
                        selection=[factor_bars])
    exact = ["funding_rate", *LIQ, *LIQD, *F.BAR_COLUMNS]
    for symbol in SYMBOLS:
        range_run = stored_by_symbol[symbol]
        for day in check_days:
            single = _read(data_root, "factor_bars", symbol, [day])
            ref = range_run[range_run["date"] == day].reset_index(drop=True)
            # joins and bars: identical (the funding settlement at the 23:00 bar's close_time lives in the
            # next day's partition, and is deliberately not used)
            pd.testing.assert_frame_equal(single[exact], ref[exact], check_exact=True)
            for spec in F.FACTORS:
                if spec.name in exact:
                    continue
                got, exp = single[spec.name].to_numpy(float), ref[spec.name].to_numpy(float)
                if not spec.start_invariant:
                    off = got - exp  # obv: a constant offset per run
                    np.testing.assert_allclose(off, off[0], rtol=0, atol=1e-9 * np.abs(exp).max())
                    continue
                floor = 1e-9 * np.nanmax(np.abs(range_run[spec.name].to_numpy(float)))
                _close(got, exp, rtol=1e-6, atol=floor, what=f"{symbol} {day} {spec.name}")
    assert len(instance.get_runs()) == 2 + len(SYMBOLS) * len(check_days)
