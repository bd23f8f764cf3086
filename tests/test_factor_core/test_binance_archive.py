"""Archive client against a local replica of data.binance.vision (127.0.0.1 only)."""

from __future__ import annotations

import asyncio
import hashlib
import io
import sys
import zipfile
from datetime import date, datetime, timezone
from pathlib import Path

import aiohttp
import numpy as np
import pyarrow as pa
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from binance_replica import (  # noqa: E402
    BinanceReplica,
    Fault,
    archive_day,
    archive_days,
    archive_month,
    agg_trade_rows,
    agg_trades_csv,
    archive_path,
    book_depth_csv,
    book_depth_rows,
    funding_csv,
    funding_rows,
    kline_rows,
    klines_csv,
    make_zip,
)

import factor_core.binance as binance_pkg  # noqa: E402
from factor_core.binance import (  # noqa: E402
    ArchiveClient,
    archive_url,
    fetch_day,
    fetch_funding_month,
    parse_csv,
    parse_info,
    parse_zip,
    split_by_day,
)
from factor_core.binance.zipmember import MemberReader, open_member, read_zip_member  # noqa: E402
from factor_core.retry import RetryPolicy  # noqa: E402
from factor_core.binance.errors import (  # noqa: E402
    ChecksumMismatch,
    ChecksumMissing,
    CorruptArchive,
    NotAvailableYet,
    ParseError,
    RequestFailed,
)
from factor_core.schemas import BOOK, FUNDING, KLINES, TRADES, InvalidSymbolError  # noqa: E402

DAY = "2024-01-01"
FAST_RETRY = dict(retry=RetryPolicy(max_attempts=3, backoff_base_s=0.01, backoff_cap_s=0.02))


@pytest.fixture(scope="module")
def replica():
    with BinanceReplica() as r:
        yield r


def _ns(value: str, unit: str) -> int:
    return int(value) * (1_000_000 if unit == "ms" else 1_000)


def _ts_ns(table: pa.Table, column: str) -> list[int]:
    return table.column(column).cast(pa.int64()).to_pylist()


def put_klines(replica, symbol, day, csv, **kw):
    return replica.put_archive("spot", "daily", "klines", symbol, day, csv, interval="1m", **kw)


def put_trades(replica, symbol, day, csv, **kw):
    return replica.put_archive("spot", "daily", "aggTrades", symbol, day, csv, **kw)


# --------------------------------------------------------------------------- URLs


def test_urls_follow_archive_layout():
    assert archive_url("klines", "BTCUSDT", date(2024, 1, 1)) == (
        "https://data.binance.vision/data/spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2024-01-01.zip"
    )
    for ds, market, period, label, interval in [
        ("klines", "spot", "daily", "2024-01-01", "1m"),
        ("um_klines", "futures/um", "daily", "2024-01-01", "1m"),
        ("aggTrades", "spot", "daily", "2024-01-01", None),
        ("bookDepth", "futures/um", "daily", "2024-01-01", None),
        ("fundingRate", "futures/um", "monthly", "2024-01", None),
    ]:
        when = (2024, 1) if period == "monthly" else "2024-01-01"
        type_ = "klines" if "klines" in ds else ds
        assert archive_url(ds, "ETHUSDT", when, "http://h") == "http://h" + archive_path(
            market, period, type_, "ETHUSDT", label, interval
        )


def test_invalid_symbol_rejected_before_any_request(replica):
    before = len(replica.requests)
    for bad in ["btcusdt", "BTC/USDT", "../etc", "", "B"]:
        with pytest.raises(InvalidSymbolError):
            archive_day(replica.url, "klines", bad, DAY)
    assert len(replica.requests) == before


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("unit,day", [("ms", "2024-12-31"), ("us", "2025-01-01")])
@pytest.mark.parametrize("header", [False, True])
def test_klines_value_for_value(replica, unit, day, header):
    symbol = f"K{unit.upper()}{int(header)}USDT"
    rows = kline_rows(day, unit=unit, seed=3)
    put_klines(replica, symbol, day, klines_csv(rows, header=header))
    t = archive_day(replica.url, "klines", symbol, day)
    assert t.schema.equals(KLINES)
    assert t.num_rows == 1440
    assert _ts_ns(t, "open_time") == [_ns(r[0], unit) for r in rows]
    first = t.column("open_time")[0].as_py()
    assert first == datetime.fromisoformat(day).replace(tzinfo=timezone.utc)
    for col, idx in [("open", 1), ("high", 2), ("low", 3), ("close", 4), ("volume", 5),
                     ("quote_volume", 7), ("taker_buy_volume", 9), ("taker_buy_quote_volume", 10)]:
        assert t.column(col).to_pylist() == [float(r[idx]) for r in rows], col
    assert t.column("trade_count").to_pylist() == [int(r[8]) for r in rows]
    info = parse_info(t)
    assert info["time_unit"] == unit and info["header"] == str(header)
    assert info["sha256"] == hashlib.sha256(replica.files[
        archive_path("spot", "daily", "klines", symbol, day, "1m")]).hexdigest()


@pytest.mark.parametrize("unit,day", [("ms", "2024-06-30"), ("us", "2025-02-01")])
@pytest.mark.parametrize("header", [False, True])
def test_agg_trades_value_for_value(replica, unit, day, header):
    symbol = f"T{unit.upper()}{int(header)}USDT"
    rows = agg_trade_rows(day, unit=unit, n=3000, seed=5, bool_style="True" if header else "true")
    put_trades(replica, symbol, day, agg_trades_csv(rows, header=header))
    t = archive_day(replica.url, "aggTrades", symbol, day)
    assert t.schema.equals(TRADES)
    assert t.column("trade_id").to_pylist() == [int(r[0]) for r in rows]
    assert _ts_ns(t, "ts") == [_ns(r[5], unit) for r in rows]
    assert t.column("price").to_pylist() == [float(r[1]) for r in rows]
    assert t.column("qty").to_pylist() == [float(r[2]) for r in rows]
    assert t.column("is_buyer_maker").to_pylist() == [r[6].lower() == "true" for r in rows]


@pytest.mark.parametrize("header", [False, True])
def test_book_depth_bands(replica, header):
    symbol = f"BOOK{int(header)}USDT"
    rows = book_depth_rows(DAY, snapshots=20, bands=(0.2, 1, 2, 3, 4, 5), seed=2)
    replica.put_archive("futures/um", "daily", "bookDepth", symbol, DAY, book_depth_csv(rows, header=header))
    t = archive_day(replica.url, "bookDepth", symbol, DAY)
    assert t.schema.equals(BOOK)
    assert t.num_rows == len(rows)
    got = t.to_pylist()
    # bid rows before ask rows within a timestamp, levels ascending from mid
    expected = []
    for r in rows:
        pct = float(r[1])
        stamp = datetime.strptime(r[0], "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)
        expected.append({
            "ts": stamp, "side": "bid" if pct < 0 else "ask",
            "level": [0.2, 1, 2, 3, 4, 5].index(abs(pct)) + 1, "price": None,
            "qty": float(r[2]), "band_pct": abs(pct), "notional": float(r[3]),
        })
    expected.sort(key=lambda e: (e["ts"], e["side"] != "bid", e["level"]))
    assert got == expected


@pytest.mark.parametrize("header", [False, True])
def test_funding_month_split_by_day(replica, header):
    symbol = f"FUND{int(header)}USDT"
    rows = funding_rows(2024, 2, seed=4)
    replica.put_archive("futures/um", "monthly", "fundingRate", symbol, "2024-02",
                        funding_csv(rows, header=header))

    async def go():
        async with ArchiveClient(replica.url) as client:
            return await fetch_funding_month(client, symbol, 2024, 2)

    t = asyncio.run(go())
    assert t.schema.equals(FUNDING)
    assert _ts_ns(t, "ts") == [_ns(r[0], "ms") for r in rows]
    assert t.column("funding_rate").to_pylist() == [float(r[2]) for r in rows]
    assert set(t.column("funding_interval_hours").to_pylist()) == {8}
    parts = split_by_day(t)
    assert list(parts) == [date(2024, 2, d) for d in range(1, 30)]
    assert all(p.num_rows == 3 for p in parts.values())
    assert sum(p.num_rows for p in parts.values()) == t.num_rows
    again = archive_month(replica.url, "fundingRate", symbol, 2024, 2)
    assert again.equals(t)  # the same verified file, parsed the same way


def test_microsecond_file_among_millisecond_files(replica):
    """The 2025 switch to µs: each file is parsed with its own unit."""
    ms_rows = kline_rows("2024-12-31", unit="ms", seed=1)
    us_rows = kline_rows("2025-01-01", unit="us", seed=2)
    put_klines(replica, "SWITCHUSDT", "2024-12-31", klines_csv(ms_rows))
    put_klines(replica, "SWITCHUSDT", "2025-01-01", klines_csv(us_rows))
    out = archive_days(replica.url, "klines", "SWITCHUSDT", ["2024-12-31", "2025-01-01"])
    a, b = out[date(2024, 12, 31)], out[date(2025, 1, 1)]
    assert parse_info(a)["time_unit"] == "ms" and parse_info(b)["time_unit"] == "us"
    ts = np.array(_ts_ns(a, "open_time") + _ts_ns(b, "open_time"))
    assert (np.diff(ts) == 60 * 10**9).all()  # seamless across the unit switch


def test_session_passed_in_and_unsorted_input(replica):
    rows = agg_trade_rows(DAY, n=500, seed=9)
    shuffled = rows[250:] + rows[:250]
    put_trades(replica, "SHUFUSDT", DAY, agg_trades_csv(shuffled))

    async def go():
        async with aiohttp.ClientSession() as session:
            return await fetch_day(session, "aggTrades", "SHUFUSDT", DAY, base_url=replica.url)

    t = asyncio.run(go())
    assert t.column("trade_id").to_pylist() == [int(r[0]) for r in rows]
    assert (np.diff(_ts_ns(t, "ts")) >= 0).all()


# --------------------------------------------------------------------------- bad input


def test_404_is_not_available_yet(replica):
    url = archive_url("klines", "NOPEUSDT", "2030-01-01", replica.url)
    with pytest.raises(NotAvailableYet, match="not published yet") as ei:
        archive_day(replica.url, "klines", "NOPEUSDT", "2030-01-01")
    assert str(ei.value) == f"{url} not published yet (HTTP 404)"


def test_checksum_mismatch_names_url_and_both_hashes(replica):
    path = put_klines(replica, "SUMUSDT", DAY, klines_csv(kline_rows(DAY)), checksum="wrong")
    with pytest.raises(ChecksumMismatch) as ei:
        archive_day(replica.url, "klines", "SUMUSDT", DAY)
    msg = str(ei.value)
    actual = hashlib.sha256(replica.files[path]).hexdigest()
    expected = replica.files[path + ".CHECKSUM"].split()[0].decode()
    assert replica.url + path in msg and actual in msg and expected in msg


def test_missing_checksum_is_an_error(replica):
    path = put_klines(replica, "NOSUMUSDT", DAY, klines_csv(kline_rows(DAY)), checksum="missing")
    with pytest.raises(ChecksumMissing, match=r"\.CHECKSUM is missing") as ei:
        archive_day(replica.url, "klines", "NOSUMUSDT", DAY)
    assert replica.url + path in str(ei.value)


@pytest.mark.parametrize("kind", ["garbage", "truncated", "two_members", "bitflip"])
def test_corrupt_zip(replica, kind):
    good = make_zip(f"CORRUPTUSDT-1m-{DAY}.csv", klines_csv(kline_rows(DAY)))
    if kind == "garbage":
        data = b"this is not a zip file at all" * 10
    elif kind == "truncated":
        data = good[: len(good) // 2]
    elif kind == "bitflip":  # deflate stream damaged, directory intact
        mid = len(good) // 2
        data = good[:mid] + bytes([good[mid] ^ 0xFF]) + good[mid + 1:]
    else:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("a.csv", b"1,2\n")
            zf.writestr("b.csv", b"3,4\n")
        data = buf.getvalue()
    path = put_klines(replica, "CORRUPTUSDT", DAY, None, zip_bytes=data)  # checksum matches the bytes
    with pytest.raises(CorruptArchive) as ei:
        archive_day(replica.url, "klines", "CORRUPTUSDT", DAY)
    assert replica.url + path in str(ei.value)
    if kind == "two_members":
        assert "exactly one CSV member" in str(ei.value)


def _fetch_csv(replica, symbol, csv, dataset="klines", day=DAY):
    if dataset == "klines":
        put_klines(replica, symbol, day, csv)
    else:
        put_trades(replica, symbol, day, csv)
    return archive_day(replica.url, dataset, symbol, day)


def test_truncated_csv(replica):
    csv = klines_csv(kline_rows(DAY))
    cut = csv[: len(csv) - 40]  # cut inside the last row
    with pytest.raises(ParseError, match="truncated CSV") as ei:
        _fetch_csv(replica, "TRUNCUSDT", cut)
    assert ei.value.line == 1440 and "TRUNCUSDT-1m-2024-01-01.zip" in str(ei.value)


def test_wrong_column_count(replica):
    rows = kline_rows(DAY)
    rows[99] = rows[99][:11]
    with pytest.raises(ParseError, match="11 columns, expected 12") as ei:
        _fetch_csv(replica, "COLSUSDT", klines_csv(rows))
    assert ei.value.line == 100 and "line 100" in str(ei.value)


@pytest.mark.parametrize("header", [False, True])
def test_non_numeric_price(replica, header):
    rows = agg_trade_rows(DAY, n=200)
    rows[41][1] = "12a.5"
    put_trades(replica, f"NANP{int(header)}USDT", DAY, agg_trades_csv(rows, header=header))
    with pytest.raises(ParseError) as ei:
        archive_day(replica.url, "aggTrades", f"NANP{int(header)}USDT", DAY)
    err = ei.value
    assert (err.line, err.column, err.value) == (42 + int(header), "price", "12a.5")
    assert f"line {42 + int(header)} column 'price' value '12a.5'" in str(err)
    assert "aggTrades-2024-01-01.zip" in str(err)


def test_empty_price_and_nan_rejected():
    rows = agg_trade_rows(DAY, n=10)
    rows[3][2] = ""
    with pytest.raises(ParseError, match="line 4 column 'qty'"):
        parse_csv(agg_trades_csv(rows), "aggTrades", source="f.zip", day=DAY)
    rows[3][2] = "nan"
    with pytest.raises(ParseError, match="line 4 column 'qty'.*finite"):
        parse_csv(agg_trades_csv(rows), "aggTrades", source="f.zip", day=DAY)


def test_file_mixing_units_is_an_error(replica):
    rows = kline_rows(DAY, unit="ms")
    rows[500][0] = str(int(rows[500][0]) * 1000)
    with pytest.raises(ParseError, match="mixes timestamp units") as ei:
        _fetch_csv(replica, "MIXUSDT", klines_csv(rows))
    assert ei.value.line == 501 and ei.value.column == "open_time"
    assert ei.value.value == int(rows[500][0])


def test_row_from_another_day(replica):
    rows = kline_rows(DAY)
    rows[1439] = kline_rows("2024-01-02", n=1)[0]
    with pytest.raises(ParseError, match="outside the requested UTC day 2024-01-01") as ei:
        _fetch_csv(replica, "DAYUSDT", klines_csv(rows))
    assert (ei.value.line, ei.value.column, ei.value.value) == (1440, "open_time", int(rows[1439][0]))
    assert "2024-01-02T00:00:00+00:00" in str(ei.value)


def test_exact_duplicates_dropped_and_counted(replica):
    rows = agg_trade_rows(DAY, n=300)
    dup = rows[:100] + [list(rows[99]), list(rows[50])] + rows[100:]
    t = _fetch_csv(replica, "DUPUSDT", agg_trades_csv(dup), dataset="aggTrades")
    assert t.column("trade_id").to_pylist() == [int(r[0]) for r in rows]
    info = parse_info(t)
    assert info["duplicates_dropped"] == "2" and info["rows_read"] == "302"

    krows = kline_rows(DAY)
    t = _fetch_csv(replica, "KDUPUSDT", klines_csv(krows + [krows[7]]))
    assert t.num_rows == 1440 and parse_info(t)["duplicates_dropped"] == "1"


def test_conflicting_duplicates_are_an_error(replica):
    rows = agg_trade_rows(DAY, n=300)
    other = list(rows[120])
    other[1] = "1.00000000"
    bad = rows[:200] + [other] + rows[200:]
    with pytest.raises(ParseError, match="conflicting duplicate rows for trade_id=") as ei:
        _fetch_csv(replica, "CONFUSDT", agg_trades_csv(bad), dataset="aggTrades")
    assert ei.value.line == 201 and ei.value.column == "price" and "line 121" in str(ei.value)


def test_empty_file_is_an_error():
    with pytest.raises(ParseError, match="no data rows"):
        parse_csv(b"", "klines", source="e.zip", day=DAY)
    with pytest.raises(ParseError, match="no data rows"):
        parse_csv(klines_csv([], header=True), "klines", source="e.zip", day=DAY)


# --------------------------------------------------------------------------- transport


def test_500_then_success_and_reset_then_success(replica):
    path = put_klines(replica, "FLAKYUSDT", DAY, klines_csv(kline_rows(DAY)))
    replica.inject(path, Fault(status=500), Fault(reset=True))
    t = archive_day(replica.url, "klines", "FLAKYUSDT", DAY, **FAST_RETRY)
    assert t.num_rows == 1440
    assert len(replica.requests_to(path)) == 3


def test_retries_exhausted_names_last_error(replica):
    path = put_klines(replica, "DEADUSDT", DAY, klines_csv(kline_rows(DAY)))
    replica.inject(path, *[Fault(status=503)] * 3)
    with pytest.raises(RequestFailed, match="failed after 3 attempt.*HTTP 503"):
        archive_day(replica.url, "klines", "DEADUSDT", DAY, **FAST_RETRY)


def test_read_timeout_then_success(replica):
    path = put_klines(replica, "SLOWUSDT", DAY, klines_csv(kline_rows(DAY)))
    replica.inject(path, Fault(delay=1.5))
    t = archive_day(replica.url, "klines", "SLOWUSDT", DAY,
                       timeout=aiohttp.ClientTimeout(sock_read=0.4), **FAST_RETRY)
    assert len(replica.requests_to(path)) >= 2
    assert t.num_rows == 1440


def test_at_most_max_concurrency_downloads_are_in_flight_at_the_replica(replica):
    days = [date(2024, 3, d) for d in range(1, 7)]
    for d in days:
        put_klines(replica, "MANYUSDT", d.isoformat(), klines_csv(kline_rows(d)))
        replica.inject(archive_path("spot", "daily", "klines", "MANYUSDT", d.isoformat(), "1m"),
                       Fault(delay=0.15))  # slow zips, so requests overlap if the client lets them
    replica.max_in_flight = 0
    out = archive_days(replica.url, "klines", "MANYUSDT", days, max_concurrency=2)
    assert [t.num_rows for t in out.values()] == [1440] * 6
    assert replica.max_in_flight == 2  # 12 requests (6 zips + 6 CHECKSUMs), never more than 2 at once
    missing = archive_days(replica.url, "klines", "MANYUSDT", [date(2031, 1, 1)],
                              return_exceptions=True)
    assert isinstance(missing[date(2031, 1, 1)], NotAvailableYet)


def test_binance_landing_and_helper_modules_never_import_dagster():
    import re

    src = Path(binance_pkg.__file__).parent
    core = src.parent
    for py in [*src.glob("*.py"), *(core / "landing").glob("*.py"), core / "quality.py",
               core / "retry.py", core / "timeutil.py", core / "partition_data.py"]:
        assert not re.search(r"^\s*(import|from)\s+dagster", py.read_text(), re.M), py


def test_urls_from_env():
    from factor_core.binance import urls_from_env

    assert urls_from_env({}).archive == "https://data.binance.vision"
    urls = urls_from_env({"BINANCE_ARCHIVE_URL": "http://127.0.0.1:9/", "BINANCE_API_URL": "http://a",
                          "BINANCE_FAPI_URL": ""})
    assert (urls.archive, urls.api, urls.fapi) == ("http://127.0.0.1:9", "http://a", "https://fapi.binance.com")


# --------------------------------------------------------------------------- streamed inflate


def _agg_zip(rows, *, header=False, level=6):
    name = f"STRMUSDT-aggTrades-{DAY}"
    csv = agg_trades_csv(rows, header=header)
    return csv, make_zip(f"{name}.csv", csv, level=level)


def _patch_directory(data: bytes, *, crc: int | None = None, size: int | None = None) -> bytes:
    """Rewrite the CRC-32 / uncompressed size of the only member in both headers."""
    buf = bytearray(data)
    for sig, crc_off in ((b"PK\x03\x04", 14), (b"PK\x01\x02", 16)):
        at = buf.find(sig)
        if crc is not None:
            buf[at + crc_off : at + crc_off + 4] = crc.to_bytes(4, "little")
        if size is not None:
            buf[at + crc_off + 8 : at + crc_off + 12] = size.to_bytes(4, "little")
    return bytes(buf)


@pytest.mark.parametrize("header", [False, True])
@pytest.mark.parametrize("threads", [False, True])
@pytest.mark.parametrize("block_size", [4096, 1 << 20])
def test_parse_zip_streamed_equals_whole_file(header, threads, block_size):
    rows = agg_trade_rows(DAY, n=5000, seed=11)
    csv, data = _agg_zip(rows, header=header)
    assert len(csv) > 40 * 4096  # many blocks, many inflate steps
    t = parse_zip(data, "aggTrades", source="s.zip", day=DAY, use_threads=threads,
                          block_size=block_size)
    ref = parse_csv(csv, "aggTrades", source="s.zip", day=DAY, use_threads=False)
    assert t.equals(ref) and t.schema.equals(TRADES)
    assert t.column("trade_id").to_pylist() == [int(r[0]) for r in rows]
    assert t.column("price").to_pylist() == [float(r[1]) for r in rows]
    assert t.column("is_buyer_maker").to_pylist() == [r[6] == "True" for r in rows]
    assert parse_info(t)["rows_read"] == "5000" and parse_info(t)["header"] == str(header)


def test_member_reader_returns_exact_bytes_for_any_read_size():
    csv, data = _agg_zip(agg_trade_rows(DAY, n=3000, seed=3), level=9)
    for size in (1, 7, 4096, 65536, 1 << 20, -1):
        info, stored, raw = open_member(data, "m.zip")
        assert stored is None
        reader = MemberReader(raw, info, "m.zip")
        assert csv.startswith(reader.peek(10))
        pieces = []
        while chunk := reader.read(size):
            assert size < 0 or len(chunk) <= size
            pieces.append(chunk)
        assert b"".join(pieces) == csv and reader.done and reader.error is None
        assert read_zip_member(data, source="m.zip") == (info.filename, csv)


@pytest.mark.parametrize("threads", [False, True])
def test_streamed_crc_and_size_mismatch_are_corrupt_archive(threads):
    csv, data = _agg_zip(agg_trade_rows(DAY, n=3000))
    bad_crc = _patch_directory(data, crc=(zipfile.crc32(csv) ^ 1))
    with pytest.raises(CorruptArchive, match="bad CRC-32"):
        parse_zip(bad_crc, "aggTrades", source="c.zip", day=DAY, use_threads=threads)
    for size, what in ((len(csv) + 10, "inflates to"), (len(csv) - 10, "inflates beyond")):
        bad_size = _patch_directory(data, size=size)
        with pytest.raises(CorruptArchive, match=what) as ei:
            parse_zip(bad_size, "aggTrades", source="c.zip", day=DAY, use_threads=threads,
                              block_size=4096)
        assert "c.zip" in str(ei.value)


@pytest.mark.parametrize("where", [0.2, 0.5, 0.9])
def test_streamed_bitflip_is_corrupt_archive_not_parse_error(where):
    _, data = _agg_zip(agg_trade_rows(DAY, n=5000, seed=2))
    start = data.index(b"PK\x03\x04") + 30 + len(f"STRMUSDT-aggTrades-{DAY}.csv")
    end = data.index(b"PK\x01\x02")
    i = start + int((end - start) * where)
    flipped = data[:i] + bytes([data[i] ^ 0x55]) + data[i + 1:]
    for threads in (False, True):
        with pytest.raises(CorruptArchive, match="b.zip"):
            parse_zip(flipped, "aggTrades", source="b.zip", day=DAY,
                              use_threads=threads, block_size=4096)


def test_truncated_deflate_stream_is_corrupt_archive():
    _, data = _agg_zip(agg_trade_rows(DAY, n=3000))
    info, _, raw = open_member(data, "t.zip")
    reader = MemberReader(raw[: len(raw) // 2], info, "t.zip")
    with pytest.raises(CorruptArchive, match="ends early"):
        reader.drain()
    assert isinstance(reader.error, CorruptArchive)


def test_streamed_errors_keep_line_numbers():
    rows = agg_trade_rows(DAY, n=4000)
    rows[3210][2] = "1.2.3"
    _, data = _agg_zip(rows)
    for threads in (False, True):
        with pytest.raises(ParseError) as ei:
            parse_zip(data, "aggTrades", source="l.zip", day=DAY, use_threads=threads,
                              block_size=4096)
        assert (ei.value.line, ei.value.column, ei.value.value) == (3211, "qty", "1.2.3")


def test_whitespace_only_and_stored_members():
    data = make_zip(f"WSUSDT-aggTrades-{DAY}.csv", b"\n \n\n")
    with pytest.raises(ParseError, match="no data rows"):
        parse_zip(data, "aggTrades", source="w.zip", day=DAY)
    csv = agg_trades_csv(agg_trade_rows(DAY, n=500))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr(f"WSUSDT-aggTrades-{DAY}.csv", csv)
    stored = parse_zip(buf.getvalue(), "aggTrades", source="s.zip", day=DAY)
    assert stored.equals(parse_csv(csv, "aggTrades", source="s.zip", day=DAY))


def test_quoted_fields_still_parse():
    rows = agg_trade_rows(DAY, n=300)
    quoted = [[f'"{v}"' if j in (1, 6) else v for j, v in enumerate(r)] for r in rows]
    plain = parse_csv(agg_trades_csv(rows), "aggTrades", source="q.zip", day=DAY)
    for header in (False, True):
        csv = agg_trades_csv(quoted, header=header)
        t = parse_zip(make_zip(f"QUSDT-aggTrades-{DAY}.csv", csv), "aggTrades",
                              source="q.zip", day=DAY)
        assert t.select(TRADES.names).equals(plain.select(TRADES.names))


@pytest.mark.parametrize("problem", ["nan", "inf", "out_of_day", "unsorted", "dup", "mixed_unit"])
def test_fast_path_hands_anomalies_to_the_checked_path(problem):
    rows = agg_trade_rows(DAY, n=400)
    if problem == "nan":
        rows[123][1] = "nan"
    elif problem == "inf":
        rows[123][2] = "inf"
    elif problem == "out_of_day":
        rows[399][5] = str(int(rows[399][5]) + 86_400_000)
    elif problem == "unsorted":
        rows[10], rows[11] = rows[11], rows[10]
    elif problem == "dup":
        rows.insert(200, list(rows[199]))
    else:
        rows[50][5] = str(int(rows[50][5]) * 1000)
    _, data = _agg_zip(rows)
    if problem in ("unsorted", "dup"):
        t = parse_zip(data, "aggTrades", source="f.zip", day=DAY, block_size=4096)
        ids = t.column("trade_id").to_pylist()
        assert ids == sorted(set(ids)) and len(ids) == 400
        assert parse_info(t)["duplicates_dropped"] == ("1" if problem == "dup" else "0")
        return
    with pytest.raises(ParseError) as ei:
        parse_zip(data, "aggTrades", source="f.zip", day=DAY, block_size=4096)
    assert ei.value.line == {"nan": 124, "inf": 124, "out_of_day": 400, "mixed_unit": 51}[problem]
