"""Benchmark: one day of spot aggTrades, zip bytes -> canonical Arrow table.

Generates a >= 2,000,000-row aggTrades zip (exact spot format: no header,
8 columns, 8-decimal prices, microsecond timestamps, True/False) in a temp
dir, then times (best of N each, same run):

* the project parser ``factor_core.binance.archive.parse_zip`` single-threaded
  (``use_threads=False``: the per-core figure) and multi-threaded;
* ``pandas.read_csv`` on the same zip bytes (C engine, explicit dtypes,
  timestamps converted to UTC) as the baseline.

Usage::

    .venv/bin/python bench/bench_parse.py [--rows 2000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from factor_core.binance.archive import parse_csv, parse_zip  # noqa: E402
from factor_core.schemas import TRADES  # noqa: E402

DAY = "2025-03-01"
DAY_START_US = 1_740_787_200_000_000  # 2025-03-01T00:00:00Z in µs


def _fixed8(units: np.ndarray) -> pa.Array:
    """Integers in 1e-8 units -> '12345.67800000' strings, vectorised in Arrow."""
    whole = pa.array(units // 100_000_000).cast(pa.string())
    frac = pc.utf8_lpad(pa.array(units % 100_000_000).cast(pa.string()), 8, "0")
    return pc.binary_join_element_wise(whole, frac, ".")


def make_agg_trades_csv(rows: int, seed: int = 7) -> bytes:
    rng = np.random.default_rng(seed)
    ids = np.arange(3_000_000_000, 3_000_000_000 + rows, dtype=np.int64)
    price = (9_000_000 + np.cumsum(rng.integers(-3, 4, rows))) * 1_000_000  # ~90000.00 USDT
    qty = rng.integers(1, 200_000_000, rows)  # up to 2 BTC, 8 decimals
    first = np.cumsum(rng.integers(1, 4, rows)) + 4_500_000_000
    last = first + rng.integers(0, 3, rows)
    ts = DAY_START_US + np.sort(rng.integers(0, 86_400_000_000, rows))
    maker = np.where(rng.random(rows) < 0.5, "True", "False")
    cols = [
        pa.array(ids).cast(pa.string()), _fixed8(price), _fixed8(qty),
        pa.array(first).cast(pa.string()), pa.array(last).cast(pa.string()),
        pa.array(ts).cast(pa.string()), pa.array(maker), pa.array(np.full(rows, "True")),
    ]
    lines = pc.binary_join_element_wise(*cols, ",")
    body = pc.binary_join_element_wise(lines, pa.scalar(""), "\n")  # append newline per row
    out = io.BytesIO()
    for chunk in body.chunks if isinstance(body, pa.ChunkedArray) else [body]:
        data = chunk.buffers()[2]
        offsets = chunk.buffers()[1]
        # the joined strings are contiguous in the data buffer
        n = len(chunk)
        end = np.frombuffer(offsets, dtype=np.int32, count=n + 1, offset=chunk.offset * 4)[-1]
        out.write(memoryview(data)[:end])
    return out.getvalue()


def best_of(fn, repeat: int, clock=time.perf_counter) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        t0 = clock()
        result = fn()
        best = min(best, clock() - t0)
    return best, result


def pandas_parse(zip_bytes: bytes) -> pd.DataFrame:
    return pandas_parse_csv(zip_bytes, compression="zip")


def pandas_parse_csv(data: bytes, compression: str | None = None) -> pd.DataFrame:
    df = pd.read_csv(
        io.BytesIO(data), compression=compression, header=None,
        names=["trade_id", "price", "qty", "first_trade_id", "last_trade_id", "ts",
               "is_buyer_maker", "is_best_match"],
        usecols=["trade_id", "price", "qty", "ts", "is_buyer_maker"],
        dtype={"trade_id": "int64", "price": "float64", "qty": "float64", "ts": "int64",
               "is_buyer_maker": "bool"},
    )
    df["ts"] = pd.to_datetime(df["ts"], unit="us", utc=True)
    return df[["trade_id", "ts", "price", "qty", "is_buyer_maker"]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    t0 = time.perf_counter()
    csv = make_agg_trades_csv(args.rows)
    with tempfile.TemporaryDirectory() as tmp:
        name = f"BTCUSDT-aggTrades-{DAY}"
        path = Path(tmp) / f"{name}.zip"
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(f"{name}.csv", csv)
        zip_bytes = path.read_bytes()
    print(f"generated {args.rows:,} rows: CSV {len(csv) / 1e6:.1f} MB, zip {len(zip_bytes) / 1e6:.1f} MB "
          f"in {time.perf_counter() - t0:.1f}s; cores: {os.cpu_count()}, pyarrow {pa.__version__}, "
          f"pandas {pd.__version__}")

    source = f"bench://{name}.zip"

    def ours(threads: bool):
        return lambda: parse_zip(zip_bytes, "aggTrades", source=source, day=DAY, use_threads=threads)

    t_inflate, _ = best_of(lambda: zipfile.ZipFile(io.BytesIO(zip_bytes)).read(f"{name}.csv"), args.repeat)
    t_single, table = best_of(ours(False), args.repeat)
    t_multi, _ = best_of(ours(True), args.repeat)
    t_pandas, df = best_of(lambda: pandas_parse(zip_bytes), args.repeat)
    # CPU time of single-threaded runs: the per-core cost, immune to other load on the box
    c_single, _ = best_of(ours(False), args.repeat, time.process_time)
    c_pandas, _ = best_of(lambda: pandas_parse(zip_bytes), args.repeat, time.process_time)
    c_inflate, _ = best_of(lambda: zipfile.ZipFile(io.BytesIO(zip_bytes)).read(f"{name}.csv"),
                           args.repeat, time.process_time)
    csv_only, _ = best_of(lambda: parse_csv(csv, "aggTrades", source=source, day=DAY, use_threads=False),
                          args.repeat, time.process_time)
    pandas_csv, _ = best_of(lambda: pandas_parse_csv(csv), args.repeat, time.process_time)

    assert table.num_rows == args.rows and table.schema.equals(TRADES)
    assert np.array_equal(table.column("price").to_numpy(), df["price"].to_numpy())
    assert np.array_equal(table.column("ts").cast(pa.int64()).to_numpy(),
                          df["ts"].dt.as_unit("ns").astype("int64").to_numpy())

    n = args.rows
    print(f"zip inflate only (zipfile)      : {t_inflate:6.3f}s  {n / t_inflate / 1e6:6.2f} M rows/s")
    print(f"project parser, use_threads=False: {t_single:6.3f}s  {n / t_single / 1e6:6.2f} M rows/s (per core)")
    print(f"project parser, use_threads=True : {t_multi:6.3f}s  {n / t_multi / 1e6:6.2f} M rows/s")
    print(f"pandas.read_csv (C engine)       : {t_pandas:6.3f}s  {n / t_pandas / 1e6:6.2f} M rows/s")
    print(f"speed-up vs pandas: single-threaded {t_pandas / t_single:.1f}x, threaded {t_pandas / t_multi:.1f}x")
    print("CPU time (process_time, single-threaded; load-independent):")
    print(f"  zip inflate only                : {c_inflate:6.3f}s  {n / c_inflate / 1e6:6.2f} M rows/s")
    print(f"  project parser zip -> table     : {c_single:6.3f}s  {n / c_single / 1e6:6.2f} M rows/s per core")
    print(f"  pandas zip -> frame             : {c_pandas:6.3f}s  {n / c_pandas / 1e6:6.2f} M rows/s  "
          f"(ratio {c_pandas / c_single:.1f}x)")
    print(f"  project parser CSV -> table     : {csv_only:6.3f}s  {n / csv_only / 1e6:6.2f} M rows/s per core")
    print(f"  pandas CSV -> frame             : {pandas_csv:6.3f}s  {n / pandas_csv / 1e6:6.2f} M rows/s  "
          f"(ratio {pandas_csv / csv_only:.1f}x)")
    print(f"targets: >= 5 M rows/s per core: {'MET' if n / t_single >= 5e6 else 'NOT MET'}; "
          f">= 5x pandas: {'MET' if t_pandas / t_single >= 5 else 'NOT MET'} (single-threaded), "
          f"{'MET' if t_pandas / t_multi >= 5 else 'NOT MET'} (threaded)")


if __name__ == "__main__":
    main()
