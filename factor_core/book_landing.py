"""Landing area of the live order-book collector, and the day partition built from it.

Spot Binance publishes no historical order book, so a sensor snapshots
``/api/v3/depth`` every ``interval_s`` seconds and lands each snapshot as its
own small Parquet file:

    <landing_root>/raw_book/symbol=<S>/date=<YYYY-MM-DD>/snap-<capture ns>.parquet

One file per snapshot means concurrent collectors never rewrite each other's
data and a crash loses at most the snapshot being written (files are
published atomically). When the day has closed, the ``raw_book`` partition is
built from that day's files, with a completeness figure: snapshots collected
over snapshots expected at the configured interval.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from factor_core.atomic_files import write_files_atomically
from factor_core.schemas import BOOK, conform, validate_symbol
from factor_core.timeutil import SECONDS_PER_DAY, day_of_ns


def landing_dir(landing_root: str | Path, symbol: str, day: date) -> Path:
    return Path(landing_root) / "raw_book" / f"symbol={validate_symbol(symbol)}" / f"date={day.isoformat()}"


def write_snapshot(landing_root: str | Path, symbol: str, snapshot: pa.Table) -> Path:
    """Land one top-N snapshot (``schemas.BOOK`` rows sharing one ``ts``)."""
    table = conform(snapshot, BOOK, what=f"depth snapshot of {symbol}")
    stamps = table.column("ts").cast(pa.int64()).to_numpy()
    if len(stamps) == 0:
        raise ValueError(f"depth snapshot of {symbol} is empty")
    if (stamps != stamps[0]).any():
        raise ValueError(f"depth snapshot of {symbol} mixes capture times")
    captured_ns = int(stamps[0])
    day = day_of_ns(captured_ns)
    path = landing_dir(landing_root, symbol, day) / f"snap-{captured_ns}.parquet"
    write_files_atomically([(path, lambda handle: pq.write_table(table, handle))])
    return path


def load_collected_book(landing_root: str | Path, symbol: str, day: date,
                        interval_s: int) -> tuple[pa.Table, dict[str, str]]:
    """The day's collected snapshots as one ``BOOK`` table, and how complete they are."""
    directory = landing_dir(landing_root, symbol, day)
    files = sorted(directory.glob("snap-*.parquet")) if directory.is_dir() else []
    if not files:
        raise FileNotFoundError(
            f"raw_book {day.isoformat()}|{symbol}: no collected snapshots in {directory} "
            "(is the book_snapshot_sensor running?)"
        )
    table = pa.concat_tables([conform(pq.read_table(f), BOOK, what=str(f)) for f in files])
    table = table.sort_by([("ts", "ascending"), ("side", "ascending"), ("level", "ascending")])
    expected = SECONDS_PER_DAY // interval_s
    return table, {
        "snapshots": str(len(files)),
        "snapshots_expected": str(expected),
        "completeness": f"{min(len(files) / expected, 1.0):.4f}",
    }
