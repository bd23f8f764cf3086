"""Binance archive formats written independently of the project's parser: rows are lists of
*strings* exactly as they appear in the files, so tests compare parsed values against
``int(field)`` / ``float(field)``."""

from __future__ import annotations

import hashlib
import io
import random
import zipfile
from datetime import date, datetime, timedelta, timezone

MINUTE_MS = 60_000
DAY_MS = 86_400_000

KLINES_HEADER = (
    "open_time,open,high,low,close,volume,close_time,quote_volume,count,"
    "taker_buy_volume,taker_buy_quote_volume,ignore"
)
AGG_TRADES_HEADER = (
    "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,"
    "is_buyer_maker,is_best_match"
)
BOOK_DEPTH_HEADER = "timestamp,percentage,depth,notional"
FUNDING_HEADER = "calc_time,funding_interval_hours,last_funding_rate"
BOOK_TICKER_HEADER = (
    "update_id,best_bid_price,best_bid_qty,best_ask_price,best_ask_qty,transaction_time,event_time"
)


# =========================================================================== data + CSV


def day_start_ms(day: date | str) -> int:
    d = date.fromisoformat(day) if isinstance(day, str) else day
    return int(datetime(d.year, d.month, d.day, tzinfo=timezone.utc).timestamp()) * 1000


def _scale(ms: int, unit: str) -> int:
    return ms * 1000 if unit == "us" else ms


def _dec(x: float, places: int = 8) -> str:
    return f"{x:.{places}f}"


def kline_rows(day: date | str, *, unit: str = "ms", n: int = 1440, seed: int = 0,
               start_minute: int = 0, price: float = 42000.0) -> list[list[str]]:
    """``n`` consecutive 1-minute klines from ``start_minute`` of ``day`` (12 fields)."""
    rng = random.Random(seed)
    base = day_start_ms(day)
    rows = []
    for i in range(start_minute, start_minute + n):
        o = price
        c = max(1.0, o * (1 + rng.gauss(0, 0.001)))
        h = max(o, c) * (1 + abs(rng.gauss(0, 0.0005)))
        low = min(o, c) * (1 - abs(rng.gauss(0, 0.0005)))
        vol = abs(rng.gauss(10, 3))
        tb = vol * rng.random()
        t = base + i * MINUTE_MS
        rows.append([
            str(_scale(t, unit)), _dec(o, 2), _dec(h, 2), _dec(low, 2), _dec(c, 2), _dec(vol),
            str(_scale(t + MINUTE_MS - 1, unit) + (999 if unit == "us" else 0)),
            _dec(vol * c), str(rng.randint(1, 5000)), _dec(tb), _dec(tb * c), "0",
        ])
        price = round(c, 2)
    return rows


def agg_trade_rows(day: date | str, *, unit: str = "ms", n: int = 1000, seed: int = 0,
                   first_id: int = 3_000_000_000, bool_style: str = "True") -> list[list[str]]:
    """``n`` aggregate trades spread over ``day`` (8 fields, spot format)."""
    rng = random.Random(seed)
    base = day_start_ms(day)
    step = DAY_MS / max(n, 1)
    t_true, t_false = ("True", "False") if bool_style == "True" else ("true", "false")
    rows, price, tid = [], 42000.0, first_id * 10
    for i in range(n):
        price = max(1.0, price * (1 + rng.gauss(0, 0.0002)))
        k = rng.randint(1, 3)
        t_ms = base + int(i * step)
        ts = _scale(t_ms, unit) + (rng.randint(0, 999) if unit == "us" else 0)
        rows.append([
            str(first_id + i), _dec(price, 2), _dec(abs(rng.gauss(0.05, 0.05)) + 1e-5),
            str(tid), str(tid + k - 1), str(ts),
            t_true if rng.random() < 0.5 else t_false, t_true,
        ])
        tid += k
    return rows


def book_depth_rows(day: date | str, *, snapshots: int = 10, seed: int = 0,
                    bands: tuple[float, ...] = (1, 2, 3, 4, 5), every_s: int = 30) -> list[list[str]]:
    """Depth bands of futures ``bookDepth``: per snapshot one row per +/- band."""
    rng = random.Random(seed)
    d = date.fromisoformat(day) if isinstance(day, str) else day
    start = datetime(d.year, d.month, d.day)
    rows = []
    for s in range(snapshots):
        stamp = (start + timedelta(seconds=s * every_s + rng.randint(0, 5))).strftime("%Y-%m-%d %H:%M:%S")
        for sign in (-1, 1):
            cum = 0.0
            for band in bands:
                cum += abs(rng.gauss(100, 20))
                pct = sign * band
                pct_text = str(int(pct)) if float(pct).is_integer() else f"{pct:.2f}"
                rows.append([stamp, pct_text, _dec(cum), _dec(cum * 42000.0)])
    return rows


def funding_rows(year: int, month: int, *, interval_hours: int = 8, seed: int = 0,
                 unit: str = "ms") -> list[list[str]]:
    """Funding events of a month every ``interval_hours`` (calc_time,interval,rate)."""
    rng = random.Random(seed)
    t = int(datetime(year, month, 1, tzinfo=timezone.utc).timestamp()) * 1000
    end_month = (year + month // 12, month % 12 + 1)
    end = int(datetime(end_month[0], end_month[1], 1, tzinfo=timezone.utc).timestamp()) * 1000
    rows = []
    while t < end:
        rows.append([str(_scale(t + rng.randint(0, 9), unit)), str(interval_hours),
                     _dec(rng.gauss(0.0001, 0.0001))])
        t += interval_hours * 3_600_000
    return rows


def book_ticker_rows(day: date | str, *, n: int = 500, seed: int = 0, unit: str = "ms",
                     first_update_id: int = 9_000_000_000) -> list[list[str]]:
    """``n`` best bid/ask updates over ``day`` in USD-M ``bookTicker`` order (7 fields)."""
    rng = random.Random(seed)
    base = day_start_ms(day)
    step = DAY_MS / max(n, 1)
    rows, mid = [], 42000.0
    for i in range(n):
        mid = max(1.0, mid * (1 + rng.gauss(0, 0.0002)))
        half = 0.05 + abs(rng.gauss(0, 0.05))
        t = base + int(i * step)
        rows.append([
            str(first_update_id + i), _dec(mid - half, 2), _dec(abs(rng.gauss(2, 1)) + 0.001, 3),
            _dec(mid + half, 2), _dec(abs(rng.gauss(2, 1)) + 0.001, 3), str(_scale(t, unit)),
            str(_scale(t + rng.randint(0, 5), unit)),
        ])
    return rows


def to_csv(rows: list[list[str]], header: str | None = None, *, trailing_newline: bool = True) -> bytes:
    lines = ([header] if header else []) + [",".join(r) for r in rows]
    text = "\n".join(lines) + ("\n" if trailing_newline else "")
    return text.encode()


def klines_csv(rows, *, header: bool = False) -> bytes:
    return to_csv(rows, KLINES_HEADER if header else None)


def agg_trades_csv(rows, *, header: bool = False) -> bytes:
    return to_csv(rows, AGG_TRADES_HEADER if header else None)


def book_depth_csv(rows, *, header: bool = True) -> bytes:
    return to_csv(rows, BOOK_DEPTH_HEADER if header else None)


def funding_csv(rows, *, header: bool = True) -> bytes:
    return to_csv(rows, FUNDING_HEADER if header else None)


def book_ticker_csv(rows, *, header: bool = True) -> bytes:
    return to_csv(rows, BOOK_TICKER_HEADER if header else None)


def make_zip(member_name: str, csv: bytes, *, level: int = 6) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=level) as zf:
        zf.writestr(member_name, csv)
    return buf.getvalue()


def checksum_text(data: bytes, file_name: str) -> bytes:
    return f"{hashlib.sha256(data).hexdigest()}  {file_name}\n".encode()


def archive_path(market: str, period: str, type_: str, symbol: str, label: str,
                 interval: str | None = None) -> str:
    """``/data/spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2024-01-01.zip`` etc."""
    middle = f"{interval}/" if interval else ""
    return f"/data/{market}/{period}/{type_}/{symbol}/{middle}{symbol}-{interval or type_}-{label}.zip"


def rest_klines(rows: list[list[str]]) -> list[list]:
    """Archive-format rows (strings) -> REST JSON rows (times as ints, numbers as strings)."""
    return [[int(r[0]), r[1], r[2], r[3], r[4], r[5], int(r[6]), r[7], int(r[8]), r[9], r[10], r[11]]
            for r in rows]
