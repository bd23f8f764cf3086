"""Where the engine's events come from: the stored files directly, or a replay server over WebSocket / HTTP.

Both paths use the same plan and the same merge (``factor_core.replay``), so
for the same options they yield equal events in the same order; running the
engine on either gives identical results (tested).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator, Mapping

import aiohttp

from factor_core.replay.catalog import ReplayCatalog, ReplayPlan
from factor_core.replay.client import http_lines, websocket_lines
from factor_core.replay.engine.events import Event, MessageDecoder, batch_events
from factor_core.replay.options import ReplayRequest


def file_events(plan: ReplayPlan) -> Iterator[Event]:
    """Every event of ``plan``, read from its stored partitions."""
    cursor = plan.open()
    try:
        while (batch := cursor.next_batch()) is not None:
            yield from batch_events(batch, plan.sources)
    finally:
        cursor.close()


def stored_events(catalog: ReplayCatalog, request: ReplayRequest) -> Iterator[Event]:
    """Plan ``request`` against ``catalog`` (refusing it as the server would), then read its events."""
    return file_events(catalog.plan(request))


async def server_events(base_url: str, options: Mapping | list, *, websocket: bool = True,
                        session: aiohttp.ClientSession | None = None) -> AsyncIterator[Event]:
    """Every event of a replay served at ``base_url`` (this project's server or tardis-machine)."""
    decode = MessageDecoder()
    own = session is None
    session = session or aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))
    try:
        lines = websocket_lines(session, base_url, options) if websocket else http_lines(session, base_url, options)
        async for line in lines:
            yield decode(json.loads(line))
    finally:
        if own:
            await session.close()
