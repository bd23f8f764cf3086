"""Per-partition Parquet files in a hive layout: read one, stage many, publish them together.

``<root>/<asset>/symbol=<S>/date=<YYYY-MM-DD>/part-0.parquet`` for day x symbol
assets, ``<root>/<asset>/date=<YYYY-MM-DD>/part-0.parquet`` for daily ones and
``<root>/<asset>/part-0.parquet`` for unpartitioned ones. The same tree is what
DuckDB's ``read_parquet(..., hive_partitioning=true)`` views read.

Partition columns (``date``, ``symbol``) live in the path, not in the file; a
read adds them back as string columns. Nothing here imports Dagster: chunk
workers in other processes, the benchmarks' plain-Python path and the replay
server use the same functions as the IO manager.

Every read is checked: a file that is not Parquet, or whose columns do not
have the types its consumer expects, fails with an error naming the file, the
column, the expected and found type, and the command that re-materializes the
partition; a partition stored with failed blocking quality checks is refused.

Every distinct schema an asset's files are written with is recorded once, in
``<root>/<asset>/_schemas/<fingerprint>`` (the schema as text): one stat per
write. A reader of the whole tree learns from that folder, without opening
every file footer, whether all files of the asset have the same columns and
types (DuckDB's views then skip ``union_by_name``, see ``resources.warehouse``).
A fingerprint outlives its last file once every partition was rewritten with
a newer schema; that costs speed, never correctness, and
:meth:`PartitionStore.rescan_schemas` drops it. Files stored before schemas
were recorded are marked ``unrecorded`` at the first new write, so they count
as another schema until a rescan.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from factor_core.atomic_files import StagedFile, discard_files, publish_files, stage_file

PART_FILE = "part-0.parquet"
SCHEMAS_DIR = "_schemas"
#: Entry of ``_schemas`` standing for files stored before schemas were recorded (schemas unknown).
UNRECORDED = "unrecorded"
_UNRECORDED_TEXT = b"files stored before schemas were recorded: run `factor-pipeline warehouse schemas --rescan`\n"
DATE, SYMBOL = "date", "symbol"
PATH_ORDER = (SYMBOL, DATE)  # symbol=<S>/date=<D>
_QUALITY_META_KEY = b"factor_pipeline.quality_failures"

Dims = Mapping[str, str]


class PartitionFileError(ValueError):
    """A stored partition that cannot be used: missing, unreadable, of the wrong schema, or quarantined."""


def partition_label(dims: Dims) -> str:
    """The partition key as Dagster prints it: ``2024-01-02|BTCUSDT``, ``2024-01-02`` or ``''``."""
    return "|".join(dims[c] for c in sorted(dims))


def rematerialize_hint(asset: str, dims: Dims) -> str:
    label = partition_label(dims)
    partition = f' --partition "{label}"' if label else ""
    return f"dagster asset materialize -m factor_assets --select {asset}{partition}"


def partition_path(root: Path, asset: str, dims: Dims) -> Path:
    """Where the partition with dimensions ``dims`` of ``asset`` lives (dims already validated)."""
    directory = Path(root) / asset
    for column in PATH_ORDER:
        if column in dims:
            directory = directory / f"{column}={dims[column]}"
    return directory / PART_FILE


def failed_checks(schema: pa.Schema) -> list[str]:
    raw = (schema.metadata or {}).get(_QUALITY_META_KEY)
    return json.loads(raw) if raw else []


def _same_type(found: pa.DataType, expected: pa.DataType) -> bool:
    """Equal types; the string flavours (pandas 3 writes ``large_string``) count as one."""
    strings = (pa.types.is_string, pa.types.is_large_string, pa.types.is_string_view)
    return found.equals(expected) or (any(f(found) for f in strings) and any(f(expected) for f in strings))


def _check_columns(table: pa.Table, expect: Mapping[str, pa.DataType], path: Path, asset: str, dims: Dims) -> None:
    for name, expected in expect.items():
        if name not in table.column_names:
            problem = f"column {name!r} is missing (expected {expected}); found columns {table.column_names}"
        elif not _same_type(table.schema.field(name).type, expected):
            problem = f"column {name!r} has type {table.schema.field(name).type}, expected {expected}"
        else:
            continue
        raise PartitionFileError(
            f"{asset} partition {partition_label(dims) or '(unpartitioned)'}: file {path}: {problem}. "
            f"The file was not written by this pipeline's {asset} step, or by an older version of it; "
            f"re-materialize it with: {rematerialize_hint(asset, dims)}"
        )


def schema_text(schema: pa.Schema) -> str:
    """``name: type`` per column, in file order; the string flavours (which DuckDB reads alike) as ``string``."""
    def canonical(t: pa.DataType) -> str:
        return str(t).replace("large_string", "string").replace("string_view", "string")

    return "\n".join(f"{f.name}: {canonical(f.type)}" for f in schema) + "\n"


def schema_fingerprint(schema: pa.Schema) -> str:
    return hashlib.sha256(schema_text(schema).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class PartitionStore:
    """The Parquet tree under ``root`` (picklable: worker processes get a copy)."""

    root: Path

    def path(self, asset: str, dims: Dims) -> Path:
        return partition_path(self.root, asset, dims)

    def exists(self, asset: str, dims: Dims) -> bool:
        return self.path(asset, dims).exists()

    def read(
        self,
        asset: str,
        dims: Dims,
        *,
        expect: Mapping[str, pa.DataType] | None = None,
        columns: Sequence[str] | None = None,
    ) -> pa.Table:
        """One stored partition with its partition columns added, checked as the module docstring says."""
        path = self.path(asset, dims)
        label = partition_label(dims) or "(unpartitioned)"
        if not path.exists():
            raise PartitionFileError(
                f"{asset} partition {label} has not been materialized (no file at {path}); "
                f"materialize it with: {rematerialize_hint(asset, dims)}"
            )
        try:
            table = pq.read_table(path, columns=list(columns) if columns else None)
        except (pa.ArrowInvalid, OSError) as exc:
            raise PartitionFileError(
                f"{asset} partition {label}: file {path} is not a readable Parquet file ({exc}); "
                f"it is corrupt or was replaced by hand. Re-materialize it with: {rematerialize_hint(asset, dims)}"
            ) from exc
        failures = failed_checks(table.schema)
        if failures:
            raise PartitionFileError(
                f"{asset} partition {label} failed blocking quality check(s) {failures}; fix the source "
                f"and re-materialize it: {rematerialize_hint(asset, dims)}"
            )
        if expect:
            _check_columns(table, expect, path, asset, dims)
        for column in PATH_ORDER:
            if column in dims:
                table = table.append_column(column, pa.array([dims[column]] * table.num_rows, pa.string()))
        return table

    def stage(self, asset: str, dims: Dims, table: pa.Table, *, failed: Iterable[str] = ()) -> StagedFile:
        """Write a partition's next version beside the current one; it becomes visible on :meth:`publish`.

        ``failed`` names blocking quality checks the partition failed: the file
        is kept for inspection, but every later read refuses it.
        """
        stored = table.drop_columns([c for c in dims if c in table.column_names])
        failures = sorted(set(failed))
        if failures:
            metadata = {**(stored.schema.metadata or {}), _QUALITY_META_KEY: json.dumps(failures).encode()}
            stored = stored.replace_schema_metadata(metadata)
        self.record_schema(asset, stored.schema)
        return stage_file(self.path(asset, dims), lambda handle: pq.write_table(stored, handle, compression="zstd"))

    def schemas_dir(self, asset: str) -> Path:
        return Path(self.root) / asset / SCHEMAS_DIR

    def record_schema(self, asset: str, schema: pa.Schema) -> None:
        """Note ``schema`` among the asset's stored schemas (a no-op after the first file with it).

        The first record of an asset whose folder already holds files (stored by
        a version that did not record schemas) also leaves :data:`UNRECORDED`,
        since those files' schemas are unknown until a rescan.
        """
        directory = self.schemas_dir(asset)
        if (directory / schema_fingerprint(schema)).exists():
            return
        if not directory.is_dir() and next((Path(self.root) / asset).rglob(PART_FILE), None) is not None:
            publish_files([stage_file(directory / UNRECORDED, lambda handle: handle.write(_UNRECORDED_TEXT))])
        self._write_schema(asset, schema)

    def _write_schema(self, asset: str, schema: pa.Schema) -> None:
        text = schema_text(schema).encode()
        publish_files([stage_file(self.schemas_dir(asset) / schema_fingerprint(schema), lambda handle: handle.write(text))])

    def stored_schemas(self, asset: str) -> list[str]:
        """Fingerprints of the schemas the asset's files were written with, and :data:`UNRECORDED` when files of
        unknown schema are there too (empty: nothing recorded, e.g. a tree written by an older version)."""
        directory = self.schemas_dir(asset)
        if not directory.is_dir():
            return []
        return sorted(p.name for p in directory.iterdir() if not p.name.startswith("."))

    def has_one_schema(self, asset: str) -> bool:
        """Every file of ``asset`` was recorded with the same schema (and none is of unknown schema)."""
        return len(self.stored_schemas(asset)) == 1

    def rescan_schemas(self, asset: str) -> list[str]:
        """Read every file footer of ``asset`` and record exactly the schemas in use (run while nothing writes)."""
        in_use: dict[str, pa.Schema] = {}
        for path in (Path(self.root) / asset).rglob(PART_FILE):
            schema = pq.read_schema(path)
            in_use.setdefault(schema_fingerprint(schema), schema)
        for schema in in_use.values():
            self._write_schema(asset, schema)
        for stale in set(self.stored_schemas(asset)) - set(in_use):
            (self.schemas_dir(asset) / stale).unlink(missing_ok=True)
        return sorted(in_use)

    def stage_frame(self, asset: str, dims: Dims, frame: pd.DataFrame, *, failed: Iterable[str] = ()) -> StagedFile:
        return self.stage(asset, dims, pa.Table.from_pandas(frame, preserve_index=False), failed=failed)

    publish = staticmethod(publish_files)
    discard = staticmethod(discard_files)


@dataclass(frozen=True)
class PartitionedInput:
    """The partitions of an upstream asset that Dagster mapped to this run, read on demand.

    ``keys`` is exactly what the run's partition mappings selected (a look-back
    window included), so a step never reads a partition its declared lineage
    does not cover. Reading happens chunk by chunk (see ``factor_assets.chunks``),
    so a run over a year of partitions never holds them all in memory.
    """

    store: PartitionStore
    asset: str
    keys: tuple[tuple[tuple[str, str], ...], ...]  # each key: sorted (dimension, value) pairs
    allow_missing: bool = False
    expect: Mapping[str, pa.DataType] | None = field(default=None, hash=False)

    @staticmethod
    def of(store: PartitionStore, asset: str, dims: Iterable[Dims], **kwargs) -> PartitionedInput:
        return PartitionedInput(store, asset, tuple(tuple(sorted(d.items())) for d in dims), **kwargs)

    @property
    def dims(self) -> list[dict[str, str]]:
        return [dict(k) for k in self.keys]

    def days_of(self, symbol: str | None = None) -> list[str]:
        """The mapped days (of ``symbol`` for day x symbol assets), sorted."""
        return sorted(d[DATE] for d in self.dims if DATE in d and (symbol is None or d.get(SYMBOL) == symbol))

    def covers(self, dims: Dims) -> bool:
        return tuple(sorted(dims.items())) in set(self.keys)

    def table(self, dims: Dims, *, columns: Sequence[str] | None = None) -> pa.Table | None:
        """One partition; None when it is outside the mapped keys or missing and missing is allowed."""
        if not self.covers(dims):
            return None
        if self.allow_missing and not self.store.exists(self.asset, dims):
            return None
        return self.store.read(self.asset, dims, expect=self.expect, columns=columns)

    def frame(self, dims_list: Iterable[Dims], *, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """The rows of several partitions as one frame with ``date`` / ``symbol`` columns (empty if none)."""
        tables = [t for t in (self.table(d, columns=columns) for d in dims_list) if t is not None]
        if not tables:
            return pd.DataFrame()
        return pa.concat_tables(tables, promote_options="default").to_pandas()

    def symbol_frame(self, symbol: str, days: Iterable[str], *, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """``symbol``'s rows over ``days`` (those mapped and present), in day order."""
        return self.frame(({DATE: d, SYMBOL: symbol} for d in sorted(days)), columns=columns)

