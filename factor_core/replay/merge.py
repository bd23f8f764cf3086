"""Several sources merged into one stream in strict time order, a block at a time.

Order (the tie rule): by the stored timestamp in nanoseconds; at equal
timestamps by symbol (alphabetical), then trades before book snapshots (a
snapshot stamped ``t`` is the book in force at ``t``, after the trades of
``t``), then book data types by name, then the stored row order. The same
rule holds whatever the order of ``symbols`` / ``dataTypes`` in the request,
so a replay is reproducible.

The merge is vectorised: each source holds one buffered block; every round
emits, from every buffer, the rows strictly earlier than the horizon ``H``
(the smallest *last* timestamp among the buffers of sources that still have
rows to read). Any row not read yet is at or after ``H`` (each source is in
time order), so what a round emits precedes everything later, and a stable
sort by timestamp of the sources' rows (concatenated in source order) gives
the tie rule. When nothing is earlier than ``H`` (every buffer ends at ``H``),
the sources ending at ``H`` read one more block. Memory: one block per source
(two while a run of equal timestamps spans a block boundary).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

import numpy as np


class BlockLike(Protocol):
    ts: np.ndarray

    def __len__(self) -> int: ...

    def slice(self, a: int, b: int): ...


B = TypeVar("B", bound=BlockLike)


class BlockSource(Protocol[B]):
    def next_block(self) -> B | None: ...

    def close(self) -> None: ...


@dataclass
class MergedBatch(Generic[B]):
    """Rows of one round: ``parts[k]`` is a block of source ``sources[k]``; ``order`` indexes their concatenation."""

    sources: list[int]
    parts: list[B]
    order: np.ndarray | None  # None = the parts' rows are already in order (a single part)
    ts: np.ndarray  # merged timestamps, ns

    def __len__(self) -> int:
        return len(self.ts)

    def rows(self) -> tuple[np.ndarray, np.ndarray]:
        """(part index, row within the part) of every merged row, in merged order."""
        sizes = np.array([len(p) for p in self.parts], np.int64)
        part = np.repeat(np.arange(len(self.parts)), sizes)
        row = np.arange(int(sizes.sum())) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        if self.order is None:
            return part, row
        return part[self.order], row[self.order]


class MergeCursor(Generic[B]):
    """A merged stream over ``sources`` (already in tie-rule order: symbol, then data type)."""

    def __init__(self, sources: Sequence[BlockSource[B]], concat: Callable[[Sequence[B]], B]):
        self.sources = list(sources)
        self._concat = concat
        self._buffers: list[B | None] = [None] * len(self.sources)
        self._exhausted = [False] * len(self.sources)
        self.rows_emitted = 0

    def _refill(self, i: int) -> None:
        block = self.sources[i].next_block()
        if block is None:
            self._exhausted[i] = True
        elif self._buffers[i] is None or not len(self._buffers[i]):
            self._buffers[i] = block
        else:
            self._buffers[i] = self._concat([self._buffers[i], block])

    @property
    def buffered_rows(self) -> int:
        return sum(len(b) for b in self._buffers if b is not None)

    def next_batch(self) -> MergedBatch[B] | None:
        """The next round of merged rows, or None at the end of every source."""
        while True:
            for i, buffer in enumerate(self._buffers):
                if not self._exhausted[i] and (buffer is None or not len(buffer)):
                    self._refill(i)
            live = [i for i, b in enumerate(self._buffers) if b is not None and len(b)]
            if not live:
                return None
            ends = [int(self._buffers[i].ts[-1]) for i in live if not self._exhausted[i]]
            horizon = min(ends) if ends else None
            batch = self._emit(live, horizon)
            if batch is not None:
                self.rows_emitted += len(batch)
                return batch
            for i in live:  # every buffer ends at the horizon: read on where it is
                if not self._exhausted[i] and int(self._buffers[i].ts[-1]) == horizon:
                    self._refill(i)

    def _emit(self, live: list[int], horizon: int | None) -> MergedBatch[B] | None:
        sources, parts = [], []
        for i in live:
            buffer = self._buffers[i]
            cut = len(buffer) if horizon is None else int(np.searchsorted(buffer.ts, horizon, side="left"))
            if cut:
                sources.append(i)
                parts.append(buffer.slice(0, cut))
                self._buffers[i] = buffer.slice(cut, len(buffer))
        if not parts:
            return None
        if len(parts) == 1:
            return MergedBatch(sources, parts, None, parts[0].ts)
        ts = np.concatenate([p.ts for p in parts])
        order = np.argsort(ts, kind="stable")
        return MergedBatch(sources, parts, order, ts[order])

    def close(self) -> None:
        for source in self.sources:
            source.close()
        self._buffers = [None] * len(self.sources)
