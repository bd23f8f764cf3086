"""Per-partition Parquet storage in a hive layout.

``<root>/<asset>/symbol=<S>/date=<YYYY-MM-DD>/part-0.parquet`` for day x symbol
assets, ``<root>/<asset>/date=<YYYY-MM-DD>/part-0.parquet`` for daily ones and
``<root>/<asset>/part-0.parquet`` for unpartitioned ones. The same tree is what
DuckDB's ``read_parquet(..., hive_partitioning=true)`` views read.

Partition columns (``date``, ``symbol``) live in the path, not in the file:
on load they are added back as string columns, and on store a frame that
spans several partitions is split by them.
"""

import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from dagster import ConfigurableIOManager, InputContext, MetadataValue, OutputContext

from partitions import DATE_DIM, SYMBOL_DIM, partition_dimensions
from factor_core.atomic_files import write_files_atomically

PART_FILE = "part-0.parquet"
#: ``DataFrame.attrs`` key an asset sets to ``{partition key: [failed check names]}``;
#: the names are stored in each file's metadata and a consumer refuses the file.
QUALITY_FAILURES_ATTR = "quality_failures"
_QUALITY_META_KEY = b"factor_pipeline.quality_failures"
PARTITION_COLUMNS = (SYMBOL_DIM, DATE_DIM)  # path order: symbol=<S>/date=<D>
TIME_COLUMNS = ("ts", "open_time", "known_at")


class PartitionDataError(ValueError):
    """A frame that does not fit the partitions it is stored into, or a missing input partition."""


def partition_path(root: Path, asset_path: Sequence[str], dims: dict[str, str]) -> Path:
    """Where the partition with dimensions ``dims`` of an asset lives (dims already validated)."""
    directory = root.joinpath(*asset_path)
    for column in PARTITION_COLUMNS:
        if column in dims:
            directory = directory / f"{column}={dims[column]}"
    return directory / PART_FILE


def partition_label(dims: dict[str, str]) -> str:
    """The partition key as Dagster prints it: ``2024-01-02|BTCUSDT``, ``2024-01-02`` or ``''``."""
    return "|".join(dims[c] for c in sorted(dims))


def failed_checks(table: pa.Table) -> list[str]:
    raw = (table.schema.metadata or {}).get(_QUALITY_META_KEY)
    return json.loads(raw) if raw else []


def read_partition(path: Path, dims: dict[str, str]) -> pa.Table:
    table = pq.read_table(path)
    for column in PARTITION_COLUMNS:
        if column in dims:
            table = table.append_column(column, pa.array([dims[column]] * table.num_rows, pa.string()))
    return table


def _parquet_writer(table: pa.Table):
    def write(handle) -> None:
        pq.write_table(table, handle, compression="zstd")

    return write


def _split_by_partition(
    frame: pd.DataFrame, keys_dims: list[dict[str, str]], asset: str
) -> list[tuple[dict[str, str], pd.DataFrame]]:
    """Pair every target partition with its rows; rows outside the targets are an error."""
    if len(keys_dims) == 1:
        dims = keys_dims[0]
        for column, expected in dims.items():
            if column in frame.columns:
                found = set(frame[column].astype(str).unique())
                if found - {expected}:
                    raise PartitionDataError(
                        f"asset {asset}: partition {dims} received rows with {column} in "
                        f"{sorted(found - {expected})[:5]}"
                    )
        return [(dims, frame)]

    dim_names = sorted(keys_dims[0])
    missing = [c for c in dim_names if c not in frame.columns]
    if missing:
        raise PartitionDataError(
            f"asset {asset}: storing {len(keys_dims)} partitions needs column(s) {missing} "
            "in the output frame to split it"
        )
    groups = {
        key if isinstance(key, tuple) else (key,): part
        for key, part in frame.groupby([frame[c].astype(str) for c in dim_names], sort=False)
    }
    targets = {tuple(d[c] for c in dim_names) for d in keys_dims}
    stray = sorted(set(groups) - targets)
    if stray:
        raise PartitionDataError(
            f"asset {asset}: output has rows for partitions outside this run: "
            f"{[dict(zip(dim_names, s, strict=True)) for s in stray[:5]]}"
        )
    empty = frame.iloc[0:0]
    return [(d, groups.get(tuple(d[c] for c in dim_names), empty)) for d in keys_dims]


def frame_summary(frame: pd.DataFrame) -> dict:
    """Row count, time range and a preview: the metadata every stored partition carries."""
    metadata: dict = {"rows": MetadataValue.int(len(frame))}
    for column in TIME_COLUMNS:
        if column in frame.columns and len(frame):
            metadata["time_min"] = MetadataValue.text(str(frame[column].min()))
            metadata["time_max"] = MetadataValue.text(str(frame[column].max()))
            break
    if len(frame):
        metadata["preview"] = MetadataValue.md(frame.head(5).to_markdown(index=False))
    return metadata


class ParquetIOManager(ConfigurableIOManager):
    """Stores a partition, or a whole range of partitions from one step, as Parquet files.

    Loads one partition, a range, or (through a partition mapping) the previous
    N days of the same symbol, as one DataFrame with ``date`` / ``symbol``
    columns. An input may set ``metadata={"allow_missing_partitions": True}``
    to receive only the partitions that exist (look-back windows before the
    first day of history); otherwise a missing partition is an error naming it.
    A partition stored with failed blocking quality checks is kept (so it can
    be inspected) but refused as an input, in this run or any later one.
    """

    root: str

    @property
    def root_path(self) -> Path:
        return Path(self.root).expanduser().resolve()

    def _keys_dims(self, context: OutputContext | InputContext) -> list[dict[str, str]]:
        if not context.has_asset_partitions:
            return [{}]
        partitions_def = context.asset_partitions_def
        return [partition_dimensions(partitions_def, key) for key in context.asset_partition_keys]

    def handle_output(self, context: OutputContext, obj: pd.DataFrame | None) -> None:
        if obj is None:
            return
        if not isinstance(obj, pd.DataFrame):
            raise TypeError(f"asset {context.asset_key.to_user_string()}: expected a DataFrame, got {type(obj)}")
        asset_path = context.asset_key.path
        asset = "/".join(asset_path)
        keys_dims = self._keys_dims(context)
        pieces = _split_by_partition(obj, keys_dims, asset)
        quality_failures = obj.attrs.get(QUALITY_FAILURES_ATTR, {})
        targets = []
        for dims, part in pieces:
            # Partition columns live in the path; an unpartitioned asset keeps them as data.
            stored = part.drop(columns=[c for c in dims if c in part.columns])
            table = pa.Table.from_pandas(stored, preserve_index=False)
            failures = quality_failures.get(partition_label(dims))
            if failures:
                metadata = {**(table.schema.metadata or {}), _QUALITY_META_KEY: json.dumps(sorted(failures)).encode()}
                table = table.replace_schema_metadata(metadata)
            targets.append((partition_path(self.root_path, asset_path, dims), _parquet_writer(table)))
        write_files_atomically(targets)

        metadata = frame_summary(obj)
        metadata["partitions_written"] = MetadataValue.int(len(targets))
        metadata["path"] = MetadataValue.path(str(targets[0][0] if len(targets) == 1 else self.root_path.joinpath(*asset_path)))
        context.add_output_metadata(metadata)

    def load_input(self, context: InputContext) -> pd.DataFrame:
        upstream = context.upstream_output
        asset_path = (upstream.asset_key if upstream is not None else context.asset_key).path
        allow_missing = bool((context.definition_metadata or {}).get("allow_missing_partitions", False))
        tables = []
        for dims in self._keys_dims(context):
            path = partition_path(self.root_path, asset_path, dims)
            if not path.exists():
                if allow_missing:
                    continue
                raise PartitionDataError(
                    f"input {context.name!r}: partition {partition_label(dims) or '(unpartitioned)'} of asset "
                    f"{'/'.join(asset_path)} has not been materialized (no file at {path})"
                )
            table = read_partition(path, dims)
            failures = failed_checks(table)
            if failures:
                raise PartitionDataError(
                    f"input {context.name!r}: partition {partition_label(dims)} of asset "
                    f"{'/'.join(asset_path)} failed blocking quality check(s) {failures}; "
                    "fix the source and re-materialize it"
                )
            tables.append(table)
        if not tables:
            return pd.DataFrame()
        return pa.concat_tables(tables, promote_options="default").to_pandas()

