"""Landing folder: names, scan, fingerprints and the precedence rule (files made by each test)."""

from __future__ import annotations

import os
import sys
from datetime import date
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from binance_replica import kline_rows, klines_csv, make_zip  # noqa: E402

from factor_core.landing import (  # noqa: E402
    TARDIS_TYPES,
    LandingFileError,
    landing_root_from_env,
    read_partition,
    scan,
)

DAY = date(2024, 1, 1)


def touch(root: Path, relative: str, data: bytes = b"x\n") -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture
def root(tmp_path: Path) -> Path:
    landing = tmp_path / "landing"
    landing.mkdir()
    return landing


def test_every_accepted_name_is_classified_with_its_dataset_symbol_days_and_format(root):
    names = {
        "BTCUSDT-1m-2024-01-01.zip": ("klines", "BTCUSDT", [DAY], "binance-zip"),
        "sub/ETHUSDT-1m-2024-02.csv": ("klines", "ETHUSDT", [date(2024, 2, d) for d in range(1, 30)], "binance-csv"),
        "BTCUSDT-aggTrades-2024-01-01.csv": ("trades", "BTCUSDT", [DAY], "binance-csv"),
        "BTCUSDT-bookDepth-2024-01-01.zip": ("book", "BTCUSDT", [DAY], "binance-zip"),
        "BTCUSDT-bookTicker-2024-01-01.csv": ("quotes", "BTCUSDT", [DAY], "binance-csv"),
        "BTCUSDT-fundingRate-2023-12.zip": ("funding", "BTCUSDT", [date(2023, 12, d) for d in range(1, 32)], "binance-zip"),
        "binance_trades_2024-01-01_BTCUSDT.csv.gz": ("trades", "BTCUSDT", [DAY], "tardis-csv-gz"),
        "binance-futures_book_snapshot_25_2024-01-01_BTCUSDT.csv.gz": ("book", "BTCUSDT", [DAY], "tardis-csv-gz"),
        "binance-futures_book_snapshot_5_2024-01-01_BTCUSDT.csv.gz": ("book", "BTCUSDT", [DAY], "tardis-csv-gz"),
        "binance-futures_derivative_ticker_2024-01-01_BTCUSDT.csv.gz": ("funding", "BTCUSDT", [DAY], "tardis-csv-gz"),
        "binance-futures_quotes_2024-01-01_BTCUSDT.csv.gz": ("quotes", "BTCUSDT", [DAY], "tardis-csv-gz"),
        "trades/SOLUSDT/2024-01-01.parquet": ("trades", "SOLUSDT", [DAY], "parquet"),
    }
    for name in names:
        touch(root, name)
    result = scan(root)
    assert result.errors == ()
    got = {f.relative_path: (f.dataset, f.symbol, list(f.days), f.format) for f in result.files}
    assert got == names
    tardis = next(f for f in result.files if f.relative_path.startswith("binance-futures_book_snapshot_25"))
    assert (tardis.exchange, tardis.kind) == ("binance-futures", "book_snapshot_25")
    assert ("klines", "ETHUSDT", date(2024, 2, 29)) in result.partitions


def test_news_raw_book_hidden_temp_and_checksum_files_are_skipped_silently(root):
    for name in ["news/2024-01-01.json", "raw_book/symbol=BTCUSDT/date=2024-01-01/snap-1.parquet",
                 ".DS_Store", ".hidden/BTCUSDT-1m-2024-01-01.csv", "BTCUSDT-1m-2024-01-01.csv.tmp",
                 "BTCUSDT-1m-2024-01-01.zip.part", "BTCUSDT-1m-2024-01-01.csv~",
                 "BTCUSDT-1m-2024-01-01.zip.CHECKSUM", ".part-0.parquet.123.abcd.tmp"]:
        touch(root, name)
    result = scan(root)
    assert result.files == () and result.errors == ()


@pytest.mark.parametrize("name", ["..-1m-2024-01-01.csv", "btc usdt-1m-2024-01-01.csv", "btcusdt-aggTrades-2024-01-01.zip",
                                  "binance_trades_2024-01-01_BTC-PERPETUAL.csv.gz", "trades/btc/2024-01-01.parquet"])
def test_an_invalid_symbol_in_the_name_is_reported_naming_the_file_and_how_to_rename_it(root, name):
    touch(root, name)
    result = scan(root)
    assert result.files == ()
    (error,) = result.errors
    assert error.path == name and str(error).startswith(name + ": ")
    assert "invalid symbol" in error.reason and "rename the file" in error.reason


def test_a_tardis_file_with_an_unknown_data_type_names_the_type_and_lists_the_known_ones(root):
    touch(root, "binance-futures_incremental_book_L2_2024-01-01_BTCUSDT.csv.gz")
    (error,) = scan(root).errors
    assert "unknown Tardis data type 'incremental_book_L2'" in error.reason
    for known in TARDIS_TYPES:
        assert known in error.reason


@pytest.mark.parametrize("name,problem", [
    ("BTCUSDT-5m-2024-01-01.csv", "unknown Binance archive kind '5m'"),
    ("BTCUSDT-1m-2024-02-30.csv", "'2024-02-30' in the file name is not a calendar date"),
    ("BTCUSDT-fundingRate-2024-01-01.zip", "fundingRate files are monthly"),
    ("BTCUSDT-aggTrades-2024-01.zip", "aggTrades files are daily"),
    ("prices.csv", "unrecognised file name"),
    ("klines/BTCUSDT/day1.parquet", "must be <YYYY-MM-DD>.parquet"),
    ("ohlc/BTCUSDT/2024-01-01.parquet", "unknown dataset folder 'ohlc'"),
    ("BTCUSDT-1m-2024-01-01.parquet", "canonical Parquet files must be laid out as"),
])
def test_a_malformed_name_is_reported_once_with_the_file_and_the_part_that_is_wrong(root, name, problem):
    touch(root, name)
    (error,) = scan(root).errors
    assert error.path == name and problem in error.reason


def test_an_empty_file_is_reported_not_read(root):
    touch(root, "BTCUSDT-1m-2024-01-01.csv", b"")
    (error,) = scan(root).errors
    assert error.path == "BTCUSDT-1m-2024-01-01.csv" and "empty" in error.reason


def test_the_fingerprint_survives_a_rescan_and_a_touch_but_not_a_corrected_file(root):
    rows = kline_rows(DAY, seed=1)
    path = touch(root, "BTCUSDT-1m-2024-01-01.csv", klines_csv(rows))
    first = scan(root).files[0]
    first_sha256 = first.content_sha256()
    assert scan(root).files[0].fingerprint == first.fingerprint  # a rescan is stable
    os.utime(path, ns=(first.mtime_ns + 10**9, first.mtime_ns + 10**9))
    touched = scan(root).files[0]
    assert touched.fingerprint == first.fingerprint and touched.version != first.version
    rows[0][4] = f"{float(rows[0][4]) + 1:.2f}"  # a corrected close in the first row
    path.write_bytes(klines_csv(rows))
    replaced = scan(root).files[0]
    assert replaced.fingerprint != first.fingerprint
    assert replaced.content_sha256() != first_sha256


def _klines_at(root: Path, name: str, seed: int) -> list[list[str]]:
    rows = kline_rows(DAY, seed=seed)
    data = klines_csv(rows)
    touch(root, name, make_zip(name[:-4] + ".csv", data) if name.endswith(".zip") else data)
    return rows


@pytest.mark.parametrize("order", [0, 1])
def test_precedence_daily_zip_beats_daily_csv_beats_monthly_whatever_the_landing_order(root, order):
    monthly_rows = kline_rows(DAY, seed=3, n=1440 * 2)  # 2024-01-01 and 2024-01-02 in one "month" file
    names = ["BTCUSDT-1m-2024-01-01.csv", "BTCUSDT-1m-2024-01-01.zip"]
    if order:
        names.reverse()
    landed = {name: _klines_at(root, name, seed=i + 10 * order) for i, name in enumerate(names)}
    touch(root, "BTCUSDT-1m-2024-01.csv", klines_csv(monthly_rows))
    result = scan(root)
    data = read_partition(result.files, "klines", "BTCUSDT", DAY)
    assert data.provenance["file"] == "BTCUSDT-1m-2024-01-01.zip"
    assert data.provenance["shadowed"] == "BTCUSDT-1m-2024-01-01.csv,BTCUSDT-1m-2024-01.csv"
    assert data.table.column("close").to_pylist() == [float(r[4]) for r in landed["BTCUSDT-1m-2024-01-01.zip"]]
    # the next day exists only in the monthly file: it is cut from there
    day2 = read_partition(result.files, "klines", "BTCUSDT", date(2024, 1, 2))
    assert day2.provenance["file"] == "BTCUSDT-1m-2024-01.csv" and "shadowed" not in day2.provenance
    assert day2.table.column("close").to_pylist() == [float(r[4]) for r in monthly_rows[1440:]]


def test_precedence_ranks_parquet_first_and_deeper_tardis_books_before_shallow_ones(root):
    for name in ["binance-futures_book_snapshot_5_2024-01-01_BTCUSDT.csv.gz",
                 "binance-futures_book_snapshot_25_2024-01-01_BTCUSDT.csv.gz",
                 "BTCUSDT-bookDepth-2024-01-01.csv", "book/BTCUSDT/2024-01-01.parquet"]:
        touch(root, name)
    ranked = [f.relative_path for f in scan(root).files_for("book", "BTCUSDT", DAY)]
    assert ranked == ["book/BTCUSDT/2024-01-01.parquet", "BTCUSDT-bookDepth-2024-01-01.csv",
                      "binance-futures_book_snapshot_25_2024-01-01_BTCUSDT.csv.gz",
                      "binance-futures_book_snapshot_5_2024-01-01_BTCUSDT.csv.gz"]


def test_a_partition_no_file_covers_is_a_clear_lookup_error(root):
    with pytest.raises(LookupError, match=r"no landed file covers klines 2024-01-01\|BTCUSDT"):
        read_partition(scan(root).files, "klines", "BTCUSDT", DAY)


def test_landing_root_defaults_under_the_data_root_and_follows_factor_landing_dir():
    assert landing_root_from_env({}) == Path("./data/landing")
    assert landing_root_from_env({"FACTOR_DATA_ROOT": "/srv/data"}) == Path("/srv/data/landing")
    assert landing_root_from_env({"FACTOR_DATA_ROOT": "/srv/data", "FACTOR_LANDING_DIR": "/drop"}) == Path("/drop")


def test_a_missing_landing_root_scans_as_empty(tmp_path):
    result = scan(tmp_path / "nowhere")
    assert result.files == () and result.errors == () and result.partitions == frozenset()


def test_landing_file_errors_compare_by_path_and_reason_so_a_sensor_reports_each_once(root):
    touch(root, "prices.csv")
    assert scan(root).errors == scan(root).errors
    assert isinstance(scan(root).errors[0], LandingFileError)
