"""DuckDB analytical catalog: views over the Parquet tree, tables of the cross-sectional layers.

DuckDB lets one process open a database file at a time (read-only included),
so connections here live only as long as a statement batch needs, a locked
file is retried for a bounded time, and every asset that touches the file
runs in the ``duckdb`` concurrency pool (size 1, see dagster_home/dagster.yaml).
Per-symbol assets never open it: they write Parquet, which the views read.
"""

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pandas as pd
from dagster import ConfigurableIOManager, ConfigurableResource, InputContext, MetadataValue, OutputContext

from factor_core.partition_store import PART_FILE, PartitionStore
from factor_core.retry import retrying

WAREHOUSE_FILE = "warehouse.duckdb"
DUCKDB_POOL = "duckdb"
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _is_lock_conflict(exc: BaseException) -> bool:
    return isinstance(exc, duckdb.IOException) and "lock" in str(exc).lower()


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
        con = retrying(_is_lock_conflict, deadline_s=self.lock_timeout_s)(
            duckdb.connect, str(self.database_path), read_only=read_only
        )
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

    def view_sql(self, asset: str) -> str:
        """The ``read_parquet`` an asset's view selects from.

        When the store recorded a single schema for every file of the asset,
        DuckDB reads the first footer and maps the others by name; otherwise
        (a schema changed between versions, or a tree written before schemas
        were recorded) ``union_by_name`` reconciles them, at the price of
        opening every footer on every query (seconds at 100 k files).
        """
        glob = _sql_string((self.root_path / asset).as_posix() + f"/**/{PART_FILE}")
        uniform = PartitionStore(self.root_path).has_one_schema(asset)
        return f"read_parquet({glob}, hive_partitioning = true{'' if uniform else ', union_by_name = true'})"

    def refresh_views(self, con: duckdb.DuckDBPyConnection) -> list[str]:
        """(Re)create one view per Parquet asset, so SQL sees every stored partition."""
        views = []
        existing_tables = {
            row[0] for row in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()
        }
        for asset in self.parquet_assets():
            if asset in existing_tables:
                continue
            con.execute(f"CREATE OR REPLACE VIEW {sql_identifier(asset)} AS SELECT * FROM {self.view_sql(asset)}")
            views.append(asset)
        return views

    def query(self, sql: str, parameters: list | None = None) -> pd.DataFrame:
        """Run one read query against the warehouse (views refreshed first)."""
        with self.connect() as con:
            self.refresh_views(con)
            return con.execute(sql, parameters or []).fetchdf()


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def table_summary(frame: pd.DataFrame) -> dict:
    """Row count and a preview: the metadata of a stored warehouse table."""
    metadata: dict = {"rows": MetadataValue.int(len(frame))}
    if len(frame):
        metadata["preview"] = MetadataValue.md(frame.head(10).to_markdown(index=False))
    return metadata


class WarehouseIOManager(ConfigurableIOManager):
    """Stores unpartitioned frames as DuckDB tables named after the asset (the summaries and reports).

    A table is replaced inside one transaction, so a failure leaves the
    previous version in place; every write also refreshes the views over the
    Parquet tree, so SQL sees every stored partition.
    """

    warehouse: DuckDBWarehouse

    def handle_output(self, context: OutputContext, obj: pd.DataFrame | None) -> None:
        if obj is None:
            return
        if context.has_asset_partitions:
            raise ValueError(f"asset {context.asset_key.to_user_string()}: the warehouse stores unpartitioned tables only")
        table = sql_identifier(context.asset_key.path[-1])
        with self.warehouse.connect() as con:
            con.register("incoming", obj)
            con.execute("BEGIN TRANSACTION")
            try:
                con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM incoming")
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
            self.warehouse.refresh_views(con)
        metadata = table_summary(obj)
        metadata["table"] = MetadataValue.text(f"{self.warehouse.database_path}:{table.strip(chr(34))}")
        context.add_output_metadata(metadata)

    def load_input(self, context: InputContext) -> pd.DataFrame:
        upstream_key = context.upstream_output.asset_key if context.upstream_output else context.asset_key
        table = sql_identifier(upstream_key.path[-1])
        with self.warehouse.connect(read_only=True) as con:
            return con.execute(f"SELECT * FROM {table}").fetchdf()
