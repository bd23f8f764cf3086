"""A fake OpenAI-compatible server on 127.0.0.1, for tests: the real ``openai`` client talks to it.

Speaks ``POST /v1/chat/completions`` (JSON request, ``chat.completion``
answer with ``usage``), checks the ``Authorization: Bearer`` key (401 with
OpenAI's error body, which echoes the key as OpenAI's own server does, so
tests prove the key is scrubbed), and serves static files for feed tests
(:meth:`put_file`). Scripted replies (:meth:`script`) are consumed one per
completion request; when none is queued the server answers every item of the
request with a score derived from the item's title (its "own answers"), and
records what it answered in :attr:`answers` so tests compare stored scores
against it. Runs in a background thread with its own event loop, like
``tests/binance_replica.py``.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import json
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from aiohttp import web

ITEM_RE = re.compile(r'<item id="(\d+)">\n<title>(.*?)</title>\n<text>(.*?)</text>\n</item>', re.S)


def default_answer(title: str) -> dict:
    """The server's own answer for an item: a score in [-1, 1] from a hash of the title."""
    h = int.from_bytes(hashlib.sha256(title.encode()).digest()[:4], "little")
    return {
        "score": round((h % 2001) / 1000.0 - 1.0, 3),
        "confidence": round(((h >> 11) % 1001) / 1000.0, 3),
        "topics": ["fake", f"t{h % 7}"],
        "rationale": "fake server answer",
    }


@dataclass
class Reply:
    """One scripted answer to one completion request."""

    status: int = 200
    content: str | None = None  # the assistant message text; None = the default answer
    body: bytes | None = None  # raw HTTP body (overrides everything else)
    retry_after: str | None = None
    delay_s: float = 0.0  # sleep before answering (timeout tests)
    usage: tuple[int, int] | None = None  # (prompt, completion); None = derived from lengths
    tool_calls: bool = False
    finish_reason: str = "stop"


@dataclass
class RecordedRequest:
    headers: dict[str, str]
    body: dict


@dataclass
class FakeOpenAI:
    api_key: str = "sk-test-fake-key"
    model_reported: str | None = None  # model name in answers (default: the requested one)
    requests: list[RecordedRequest] = field(default_factory=list)
    answers: list[dict] = field(default_factory=list)  # {"title", "text", "answer"} per answered item
    usages: list[tuple[int, int]] = field(default_factory=list)  # (prompt, completion) tokens of each answer sent
    files: dict[str, tuple[int, str, bytes]] = field(default_factory=dict)
    in_flight: int = 0  # completion requests being answered right now
    max_in_flight: int = 0  # the most seen at once (concurrency bounds are counted, not timed)
    _script: deque = field(default_factory=deque)

    # ------------------------------------------------------------------ control
    def script(self, *replies: Reply) -> None:
        self._script.extend(replies)

    def put_file(self, path: str, body: bytes, content_type: str = "application/rss+xml", status: int = 200) -> str:
        self.files[path] = (status, content_type, body)
        return f"http://127.0.0.1:{self.port}{path}"

    @property
    def calls(self) -> int:
        return len(self.requests)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def answered_score(self, title: str) -> float:
        """What the server answered for the item with this (rendered) title, last time."""
        return [a for a in self.answers if a["title"] == title][-1]["answer"]["score"]

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> "FakeOpenAI":
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            app = web.Application(client_max_size=64 * 1024 * 1024)
            app.router.add_post("/v1/chat/completions", self._completions)
            app.router.add_get("/{tail:.*}", self._file)
            self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=0.2)
            self._loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            self._loop.run_until_complete(site.start())
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="fake-openai", daemon=True)
        self._thread.start()
        assert ready.wait(10), "fake OpenAI server did not start"
        return self

    def __exit__(self, *exc) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    # ------------------------------------------------------------------ handlers
    async def _file(self, request: web.Request) -> web.Response:
        if request.path not in self.files:
            return web.Response(status=404, text="not found")
        status, content_type, body = self.files[request.path]
        return web.Response(status=status, body=body, content_type=content_type)

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self._answer(request)
        finally:
            self.in_flight -= 1

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(RecordedRequest(dict(request.headers), body))
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            given = request.headers.get("Authorization", "").removeprefix("Bearer ")
            return web.json_response(
                {"error": {"message": f"Incorrect API key provided: {given}.", "type": "invalid_request_error",
                           "param": None, "code": "invalid_api_key"}},
                status=401,
            )
        reply = self._script.popleft() if self._script else Reply()
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)
        headers = {"Retry-After": reply.retry_after} if reply.retry_after is not None else {}
        if reply.body is not None:
            return web.Response(status=reply.status, body=reply.body, headers=headers, content_type="application/json")
        if reply.status != 200:
            return web.json_response(
                {"error": {"message": f"fake error {reply.status}", "type": "server_error", "param": None, "code": None}},
                status=reply.status, headers=headers,
            )
        user = next(m["content"] for m in body["messages"] if m["role"] == "user")
        content = reply.content if reply.content is not None else self._default_content(body, user)
        prompt_tokens, completion_tokens = reply.usage or (len(user) // 4 + 40, len(content) // 4 + 1)
        self.usages.append((prompt_tokens, completion_tokens))
        message: dict = {"role": "assistant", "content": content, "refusal": None}
        if reply.tool_calls:
            message["tool_calls"] = [{"id": "call_1", "type": "function",
                                      "function": {"name": "delete_everything", "arguments": "{}"}}]
        return web.json_response({
            "id": f"chatcmpl-{len(self.requests)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model_reported or body["model"],
            "choices": [{"index": 0, "message": message, "finish_reason": reply.finish_reason, "logprobs": None}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        })

    def _default_content(self, body: dict, user: str) -> str:
        items = [(int(n), html.unescape(t), html.unescape(x)) for n, t, x in ITEM_RE.findall(user)]
        schema = body["response_format"]["json_schema"]["schema"]
        answers = []
        for n, title, text in items:
            answer = default_answer(title)
            self.answers.append({"title": title, "text": text, "answer": answer})
            answers.append({"id": n, **answer})
        if "items" in schema["properties"]:
            return json.dumps({"items": answers})
        return json.dumps({k: v for k, v in answers[0].items() if k != "id"})
