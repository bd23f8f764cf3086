"""One fetched raw partition: its canonical table and where it came from."""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa


@dataclass(frozen=True)
class PartitionData:
    """A raw partition in its canonical schema, with a provenance record (source, file or URL, checksum)."""

    table: pa.Table
    provenance: dict[str, str] = field(default_factory=dict)
