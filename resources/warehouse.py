"""DuckDB analytical catalog: views over the Parquet tree, tables of the cross-sectional layers.

DuckDB lets one process open a database file at a time (read-only included),
so connections here live only as long as a statement batch needs, a locked
file is retried for a bounded time, and every asset that touches the file
runs in the ``duckdb`` concurrency pool (size 1, see dagster_home/dagster.yaml).
Per-symbol assets never open it: they write Parquet, which the views read.
"""

import contextlib
import re
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pandas as pd
from dagster import ConfigurableIOManager, ConfigurableResource, InputContext, MetadataValue, OutputContext

from partitions import DATE_DIM, partition_dimensions
from resources.parquet_io_manager import PART_FILE, frame_summary

WAREHOUSE_FILE = "warehouse.duckdb"
DUCKDB_POOL = "duckdb"
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def sql_identifier(name: str) -> str:
    """``name`` quoted for SQL after checking it is a plain lower-case identifier."""
    if not _IDENTIFIER.fullmatch(name):
        raise ValueError(f"{name!r} is not a valid warehouse table name (lower-case letters, digits, _)")
    return f'"{name}"'


class DuckDBWarehouse(ConfigurableResource):
    """``<data_root>/warehouse.duckdb``, opened per statement batch."""

    data_root: str
    lock_timeout_s: float = 120.0

    @property
    def root_path(self) -> Path:
        return Path(self.data_root).expanduser().resolve()

    @property
    def database_path(self) -> Path:
        return self.root_path / WAREHOUSE_FILE

    @contextlib.contextmanager
    def connect(self, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection, retried while another process holds the file lock."""
        self.root_path.mkdir(parents=True, exist_ok=True)
        if read_only and not self.database_path.exists():
            raise FileNotFoundError(f"no warehouse at {self.database_path}: materialize the pipeline first")
        deadline = time.monotonic() + self.lock_timeout_s
        delay = 0.05
        while True:
            try:
                con = duckdb.connect(str(self.database_path), read_only=read_only)
                break
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower() or time.monotonic() + delay > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
        try:
            yield con
        finally:
            con.close()

    def parquet_assets(self) -> list[str]:
        """Asset folders under the data root that hold at least one partition file."""
        if not self.root_path.is_dir():
            return []
        return sorted(
            d.name
            for d in self.root_path.iterdir()
            if d.is_dir() and _IDENTIFIER.fullmatch(d.name) and next(d.rglob(PART_FILE), None) is not None
        )

    def refresh_views(self, con: duckdb.DuckDBPyConnection) -> list[str]:
        """(Re)create one view per Parquet asset, so SQL sees every stored partition."""
        views = []
        existing_tables = {
            row[0] for row in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()
        }
        for asset in self.parquet_assets():
            if asset in existing_tables:
                continue
            glob = (self.root_path / asset).as_posix() + f"/**/{PART_FILE}"
            con.execute(
                f"CREATE OR REPLACE VIEW {sql_identifier(asset)} AS SELECT * FROM "
                "read_parquet(?, hive_partitioning = true, union_by_name = true)".replace("?", _sql_string(glob))
            )
            views.append(asset)
        return views

    def query(self, sql: str, parameters: list | None = None) -> pd.DataFrame:
        """Run one read query against the warehouse (views refreshed first)."""
        with self.connect() as con:
            self.refresh_views(con)
            return con.execute(sql, parameters or []).fetchdf()


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class WarehouseIOManager(ConfigurableIOManager):
    """Stores day-partitioned or unpartitioned frames as DuckDB tables named after the asset.

    A partitioned store replaces exactly the dates of the run, inside one
    transaction: a failure leaves the previous rows in place. Columns added
    by a newer code version are added to the table; rows are inserted by name.
    """

    warehouse: DuckDBWarehouse

    def _dates(self, context: OutputContext | InputContext) -> list[str] | None:
        if not context.has_asset_partitions:
            return None
        dims = [partition_dimensions(context.asset_partitions_def, k) for k in context.asset_partition_keys]
        if any(set(d) != {DATE_DIM} for d in dims):
            raise ValueError(
                f"asset {context.asset_key.to_user_string()}: the warehouse stores daily or unpartitioned assets only"
            )
        return sorted(d[DATE_DIM] for d in dims)

    def handle_output(self, context: OutputContext, obj: pd.DataFrame | None) -> None:
        if obj is None:
            return
        table = sql_identifier(context.asset_key.path[-1])
        dates = self._dates(context)
        frame = obj
        if dates is not None:
            if DATE_DIM not in frame.columns:
                if len(dates) != 1:
                    raise ValueError(f"asset {table}: a {len(dates)}-day output needs a 'date' column")
                frame = frame.assign(**{DATE_DIM: dates[0]})
            stray = sorted(set(frame[DATE_DIM].astype(str)) - set(dates))
            if stray:
                raise ValueError(f"asset {table}: rows for dates outside this run: {stray[:5]}")
            frame = frame.assign(**{DATE_DIM: pd.to_datetime(frame[DATE_DIM].astype(str)).dt.date})
        with self.warehouse.connect() as con:
            con.register("incoming", frame)
            con.execute("BEGIN TRANSACTION")
            try:
                if dates is None:
                    con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM incoming")
                else:
                    con.execute(f"CREATE TABLE IF NOT EXISTS {table} AS SELECT * FROM incoming LIMIT 0")
                    self._add_new_columns(con, table, frame)
                    con.execute(
                        f"DELETE FROM {table} WHERE {DATE_DIM} IN (SELECT UNNEST(?::DATE[]))", [dates]
                    )
                    con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM incoming")
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
            self.warehouse.refresh_views(con)
        metadata = frame_summary(obj)
        metadata["table"] = MetadataValue.text(f"{self.warehouse.database_path}:{table.strip(chr(34))}")
        context.add_output_metadata(metadata)

    @staticmethod
    def _add_new_columns(con: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame) -> None:
        existing = {row[0] for row in con.execute(f"DESCRIBE {table}").fetchall()}
        incoming = con.execute("DESCRIBE incoming").fetchall()
        for name, column_type, *_ in incoming:
            if name not in existing:
                con.execute(f'ALTER TABLE {table} ADD COLUMN "{name}" {column_type}')

    def load_input(self, context: InputContext) -> pd.DataFrame:
        upstream_key = context.upstream_output.asset_key if context.upstream_output else context.asset_key
        table = sql_identifier(upstream_key.path[-1])
        dates = self._dates(context)
        with self.warehouse.connect() as con:
            if dates is None:
                frame = con.execute(f"SELECT * FROM {table}").fetchdf()
            else:
                frame = con.execute(
                    f"SELECT * FROM {table} WHERE {DATE_DIM} IN (SELECT UNNEST(?::DATE[])) ORDER BY ALL",
                    [dates],
                ).fetchdf()
        if dates is not None:
            frame[DATE_DIM] = pd.to_datetime(frame[DATE_DIM]).dt.strftime("%Y-%m-%d")
            allow_missing = bool((context.definition_metadata or {}).get("allow_missing_partitions", False))
            missing = sorted(set(dates) - set(frame[DATE_DIM]))
            if missing and not allow_missing:
                raise ValueError(
                    f"input {context.name!r}: dates {missing[:5]} of table {table} have not been materialized"
                )
        return frame
