"""What every market-data source hands the raw layer for one (dataset, symbol, day) partition."""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa


@dataclass(frozen=True)
class PartitionData:
    """One partition's canonical table (a schema of ``factor_core.schemas``) and where it came from.

    ``provenance`` is flat ``str -> str`` so it goes into Dagster metadata as is:
    ``source`` (e.g. "binance archive", "landing"), the URL or file(s), and
    ``checksum_verified`` ("true" / "false" / "n/a" where the source publishes
    no checksum), plus source-specific facts (time unit, duplicates dropped...).
    """

    table: pa.Table
    provenance: dict[str, str] = field(default_factory=dict)

    @property
    def checksum_verified(self) -> bool | None:
        """True for data verified against a published checksum, None where none is published."""
        value = self.provenance.get("checksum_verified", "n/a")
        return None if value == "n/a" else value == "true"
