"""A small client of the replay server (and of tardis-machine): messages as dicts, errors as exceptions.

Used by the strategy engine's WebSocket feed, the tests and the benchmarks; any
other client of tardis-machine's API works the same way (see docs/replay.md).
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import AsyncIterator, Mapping

import aiohttp


class ReplayFailed(RuntimeError):
    """The server refused or ended a replay with an error; ``code`` is the HTTP status or WebSocket close code."""

    def __init__(self, code: int | None, message: str):
        super().__init__(f"replay failed ({code}): {message}")
        self.code, self.message = code, message


def replay_url(base_url: str, options: Mapping | list, *, websocket: bool) -> str:
    """``<base>/ws-replay-normalized?options=...`` (or ``/replay-normalized``) with the options URL-encoded."""
    path = "/ws-replay-normalized" if websocket else "/replay-normalized"
    return base_url.rstrip("/") + path + "?options=" + urllib.parse.quote_plus(json.dumps(options))


async def websocket_lines(session: aiohttp.ClientSession, base_url: str, options) -> AsyncIterator[str]:
    """Every text frame of a WebSocket replay, raw; raises :class:`ReplayFailed` on an error close."""
    error = None
    async with session.ws_connect(replay_url(base_url, options, websocket=True), max_msg_size=0, autoclose=True) as ws:
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            if msg.data.startswith('{"type":"error"'):
                error = json.loads(msg.data)
                continue
            yield msg.data
        code = ws.close_code
    if error is not None or code not in (1000, None):
        raise ReplayFailed(code, error["message"] if error else f"connection closed with code {code}")


async def http_lines(session: aiohttp.ClientSession, base_url: str, options) -> AsyncIterator[str]:
    """Every NDJSON line of an HTTP replay, raw; raises :class:`ReplayFailed` on an error status or line."""
    async with session.get(replay_url(base_url, options, websocket=False)) as response:
        if response.status != 200:
            body = await response.text()
            try:
                message = json.loads(body)["message"]
            except (ValueError, KeyError):
                message = body
            raise ReplayFailed(response.status, message)
        tail = b""
        try:
            async for data in response.content.iter_any():
                lines = (tail + data).split(b"\n")
                tail = lines.pop()
                for line in lines:
                    text = line.decode()
                    if text.startswith('{"type":"error"'):
                        raise ReplayFailed(json.loads(text).get("code"), json.loads(text)["message"])
                    yield text
        except aiohttp.ClientPayloadError as exc:
            raise ReplayFailed(None, f"the stream ended before it was complete ({exc})") from exc


async def replay_messages(base_url: str, options, *, websocket: bool = True,
                          session: aiohttp.ClientSession | None = None) -> AsyncIterator[dict]:
    """Every message of a replay, parsed."""
    own = session is None
    session = session or aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))
    try:
        lines = websocket_lines(session, base_url, options) if websocket else http_lines(session, base_url, options)
        async for line in lines:
            yield json.loads(line)
    finally:
        if own:
            await session.close()
