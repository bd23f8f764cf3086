"""The Parquet IO manager: lazy inputs, staged outputs, in the hive layout of ``factor_core.partition_store``.

Inputs arrive as :class:`~factor_core.partition_store.PartitionedInput`: the
upstream partitions Dagster mapped to this run (look-back windows included),
read on demand, chunk by chunk. An input may set
``metadata={"allow_missing_partitions": True}`` to skip partitions that were
never materialized (look-back windows before the first day of history);
otherwise reading a missing one is an error naming it and the command that
builds it.

Outputs are either :class:`StagedPartitions` (files a chunked step already
wrote under temporary names, see ``factor_assets.chunks``), published here in
one go once the step succeeded, or, for small unpartitioned assets, a
DataFrame written atomically. The IO manager adds no metadata of its own:
every partition's materialization carries what its step measured on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from dagster import ConfigurableIOManager, ConfigurableResource, InputContext, OutputContext

from factor_core.atomic_files import StagedFile
from factor_core.partition_store import PartitionedInput, PartitionFileError, PartitionStore, partition_label
from factor_core.schemas import STORED_COLUMNS
from partitions import partition_dimensions

#: Kept for callers that catch the old name.
PartitionDataError = PartitionFileError


@dataclass
class StagedPartitions:
    """Output of a chunked step: every partition's file, staged and waiting to be published."""

    files: list[StagedFile] = field(default_factory=list)


class PartitionStoreResource(ConfigurableResource):
    """The Parquet tree under ``root``: what chunked steps stage their partitions into."""

    root: str

    @property
    def store(self) -> PartitionStore:
        return PartitionStore(Path(self.root).expanduser().resolve())


class ParquetIOManager(ConfigurableIOManager):
    """Per-partition Parquet files of ``partitions``; see the module docstring."""

    partitions: PartitionStoreResource

    @property
    def store(self) -> PartitionStore:
        return self.partitions.store

    @staticmethod
    def _keys_dims(context: OutputContext | InputContext) -> list[dict[str, str]]:
        if not context.has_asset_partitions:
            return [{}]
        partitions_def = context.asset_partitions_def
        return [partition_dimensions(partitions_def, key) for key in context.asset_partition_keys]

    def handle_output(self, context: OutputContext, obj: StagedPartitions | pd.DataFrame | None) -> None:
        if obj is None:
            return
        asset = context.asset_key.path[-1]
        store = self.store
        if isinstance(obj, pd.DataFrame):
            dims = self._keys_dims(context)
            if len(dims) != 1:
                raise TypeError(f"asset {asset}: a range of {len(dims)} partitions must be returned as StagedPartitions")
            store.publish([store.stage_frame(asset, dims[0], obj)])
            return
        if not isinstance(obj, StagedPartitions):
            raise TypeError(f"asset {asset}: expected StagedPartitions or a DataFrame, got {type(obj).__name__}")
        expected = {store.path(asset, d) for d in self._keys_dims(context)}
        staged = {f.target for f in obj.files}
        if staged != expected:
            missing = sorted(str(p) for p in expected - staged)[:5]
            stray = sorted(str(p) for p in staged - expected)[:5]
            store.discard(obj.files)
            raise RuntimeError(f"asset {asset}: staged files do not match the run's partitions (missing {missing}, stray {stray})")
        store.publish(obj.files)

    def load_input(self, context: InputContext) -> PartitionedInput:
        upstream = context.upstream_output
        asset = (upstream.asset_key if upstream is not None else context.asset_key).path[-1]
        allow_missing = bool((context.definition_metadata or {}).get("allow_missing_partitions", False))
        return PartitionedInput.of(
            self.store, asset, self._keys_dims(context), allow_missing=allow_missing, expect=STORED_COLUMNS.get(asset)
        )


def describe_partitions(labels: list[str]) -> str:
    """``a, b, c and 12 more`` for log lines."""
    return ", ".join(labels[:5]) + (f" and {len(labels) - 5} more" if len(labels) > 5 else "")


__all__ = ["ParquetIOManager", "PartitionStoreResource", "PartitionDataError", "StagedPartitions", "describe_partitions", "partition_label"]
