"""Stored partitions for the replay tests, and an independent reference of what a replay must send.

The reference is written with pandas from the stored rows and the rules of
docs/replay.md (not with the server's code): messages ordered by the stored
nanosecond timestamp, then symbol, then trades before book snapshots, then
data type name, then stored row; timestamps floored to the microsecond; book
levels best first, cut to the depth; a snapshot replayed when it is the first
stored one of its interval bucket.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from factor_core.partition_store import PartitionStore
from factor_core.schemas import BOOK, TRADES
from factor_core.simulator import SimulatorConfig, simulate_day

EXCHANGE = "binance"


def write_simulated(store: PartitionStore, symbols, days, *, trades_per_minute: float = 6.0, book_levels: int = 10,
                    book_interval_s: int = 60) -> None:
    config = SimulatorConfig(trades_per_minute=trades_per_minute, book_levels=book_levels, book_interval_s=book_interval_s)
    for symbol in symbols:
        for day in days:
            sim = simulate_day(symbol, dt.date.fromisoformat(day), config)
            dims = {"date": day, "symbol": symbol}
            store.publish([
                store.stage("raw_trades", dims, pa.Table.from_pandas(sim.trades, schema=TRADES, preserve_index=False)),
                store.stage("raw_book", dims, pa.Table.from_pandas(sim.book, schema=BOOK, preserve_index=False)),
            ])


def ns(text: str) -> int:
    """Nanoseconds since the epoch of an ISO time (naive = UTC)."""
    t = pd.Timestamp(text)
    return int((t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")).value)


def write_table(store: PartitionStore, asset: str, symbol: str, day: str, frame: pd.DataFrame, *, checked: bool = True,
                failed=()) -> Path:
    """A hand-made partition: through the store (``checked``: conformed to the schema) or written as is."""
    schema = TRADES if asset == "raw_trades" else BOOK
    frame = frame.copy()
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True, format="ISO8601").astype("datetime64[ns, UTC]")
    if asset == "raw_book":
        frame = frame.assign(band_pct=frame.get("band_pct", float("nan")), notional=frame["price"] * frame["qty"])
    table = pa.Table.from_pandas(frame[[f.name for f in schema]], schema=schema, preserve_index=False)
    dims = {"date": day, "symbol": symbol}
    if checked:
        store.publish([store.stage(asset, dims, table, failed=failed)])
    else:
        path = store.path(asset, dims)
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path)
    return store.path(asset, dims)


def write_window(store: PartitionStore, source: PartitionStore, symbols, day: str, start: str, end: str) -> None:
    """Copy the rows of ``day`` within ``[start, end)`` from ``source`` (small partitions for slow paths)."""
    for symbol in symbols:
        for asset in ("raw_trades", "raw_book"):
            frame = pq.read_table(source.path(asset, {"date": day, "symbol": symbol})).to_pandas()
            stamp = frame["ts"].astype("int64")
            keep = (stamp >= ns(start)) & (stamp < ns(end))
            write_table(store, asset, symbol, day, frame[keep].reset_index(drop=True))


def book_rows(ts: str, bids, asks) -> list[dict]:
    """Long-form rows of one snapshot: ``bids`` / ``asks`` as [(price, qty), ...] best first."""
    rows = [{"ts": ts, "side": "bid", "level": i + 1, "price": p, "qty": q} for i, (p, q) in enumerate(bids)]
    return rows + [{"ts": ts, "side": "ask", "level": i + 1, "price": p, "qty": q} for i, (p, q) in enumerate(asks)]


def iso_us(ts_ns: int) -> str:
    return pd.Timestamp(ts_ns, unit="ns", tz="UTC").floor("us").strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_BOOK = re.compile(r"^book_snapshot_(\d+)_(\d+)(ms|s|m)$")
_UNIT = {"ms": 1, "s": 1000, "m": 60000}


def _book_type(name: str) -> tuple[int, int]:
    if name == "quote":
        return 1, 0
    m = _BOOK.fullmatch(name)
    return int(m.group(1)), int(m.group(2)) * _UNIT[m.group(3)]


def reference_messages(root: Path, symbols, start: str, end: str, data_types) -> list[dict]:
    """What a replay of ``[start, end)`` must send, built from the stored files with pandas."""
    start_ns, end_ns = ns(start), ns(end)
    rows = []  # (ts_ns, symbol, type rank, type name, stored row, message)
    for symbol in sorted(set(symbols)):
        for name in sorted(set(data_types)):
            asset = "raw_trades" if name == "trade" else "raw_book"
            files = sorted((root / asset / f"symbol={symbol}").glob("date=*/part-0.parquet"))
            frame = pd.concat([pq.read_table(f).to_pandas() for f in files], ignore_index=True)
            frame["ts_ns"] = frame["ts"].astype("int64")
            if name == "trade":
                frame = frame[(frame.ts_ns >= start_ns) & (frame.ts_ns < end_ns)]
                for i, r in enumerate(frame.itertuples()):
                    rows.append((r.ts_ns, symbol, 0, name, i, {
                        "type": "trade", "symbol": symbol, "exchange": EXCHANGE, "id": str(r.trade_id),
                        "price": r.price, "amount": r.qty, "side": "sell" if r.is_buyer_maker else "buy",
                        "timestamp": iso_us(r.ts_ns), "localTimestamp": iso_us(r.ts_ns)}))
                continue
            depth, interval_ms = _book_type(name)
            last_bucket = None
            frame = frame[(frame.ts_ns >= start_ns) & (frame.ts_ns < end_ns)].sort_values(["ts_ns", "level"], kind="stable")
            ts, side = frame.ts_ns.tolist(), frame.side.tolist()
            price, qty = frame.price.tolist(), frame.qty.tolist()
            first = 0
            for i in range(1, len(ts) + 1):
                if i < len(ts) and ts[i] == ts[first]:
                    continue
                snap_ts, group, first = ts[first], range(first, i), i
                if interval_ms:
                    bucket = snap_ts // (interval_ms * 1_000_000)
                    if bucket == last_bucket:
                        continue
                    last_bucket = bucket
                bids = [{"price": price[j], "amount": qty[j]} for j in group if side[j] == "bid"][:depth]
                asks = [{"price": price[j], "amount": qty[j]} for j in group if side[j] == "ask"][:depth]
                rows.append((snap_ts, symbol, 1, name, group.start, {
                    "type": "book_snapshot", "symbol": symbol, "exchange": EXCHANGE, "name": name, "depth": depth,
                    "interval": interval_ms, "bids": bids, "asks": asks,
                    "timestamp": iso_us(snap_ts), "localTimestamp": iso_us(snap_ts)}))
    rows.sort(key=lambda r: r[:5])
    return [r[5] for r in rows]
