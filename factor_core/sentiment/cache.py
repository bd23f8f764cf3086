"""The answer cache: every paid answer is stored once and never paid for again.

A SQLite file (default ``<data root>/llm_cache/sentiment.sqlite``) in WAL
mode: many processes read and write it at once (a Dagster multiprocess run
scores many symbol-days in parallel); writers queue on SQLite's lock for up
to ``timeout_s``, readers never block. DuckDB would allow one writing
process per file only, which the per-partition assets cannot share. WAL
needs a local filesystem (not NFS); put the data root's cache on one.

Key: SHA-256 of (model, prompt version, prompt fingerprint, anonymisation
setting and token, scored symbol, exact title and text sent). Anything that
changes what the model is asked changes the key; nothing else does (the
batch an item was sent in, the run, the partition). Rows are insert-only: the
first answer for a key wins, so two processes racing on one item keep one.
Rejected answers are cached too (they were paid for); bump the prompt version
to ask again. Transport failures (timeouts, exhausted retries, 401) are
never cached.

The API key is not part of the key and never stored.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from factor_core.sentiment.schema import Verdict

CACHE_RELATIVE_PATH = Path("llm_cache") / "sentiment.sqlite"
_KEY_VERSION = "sentiment-cache-v1"
_CHUNK = 500

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sentiment_answers (
    cache_key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    prompt_version TEXT NOT NULL,
    score REAL,
    confidence REAL,
    topics TEXT NOT NULL,
    rationale TEXT,
    rejected_reason TEXT,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    cost_usd REAL,
    created_at REAL NOT NULL
)
"""


def default_cache_path(data_root: str | Path) -> Path:
    return Path(data_root) / CACHE_RELATIVE_PATH


def cache_key(
    *,
    model: str,
    prompt_version: str,
    prompt_fingerprint: str,
    anonymise: bool,
    neutral_token: str,
    symbol: str,
    title: str,
    text: str,
) -> str:
    """Hash of everything that decides the answer (see the module docstring)."""
    parts = [_KEY_VERSION, model, prompt_version, prompt_fingerprint,
             f"anonymise={neutral_token}" if anonymise else "named", symbol, title, text]
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CachedAnswer:
    """One stored answer: the verdict and what its share of the call cost."""

    verdict: Verdict
    model: str
    prompt_version: str
    prompt_tokens: int | None
    completion_tokens: int | None
    cost_usd: float | None


class ScoreCache:
    """Insert-only SQLite store of answers, safe for concurrent processes."""

    def __init__(self, path: str | Path, *, timeout_s: float = 60.0):
        self.path = Path(path)
        self.timeout_s = timeout_s
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")  # persistent: set once per file
            conn.execute(_SCHEMA)

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=self.timeout_s, isolation_level=None)
        try:
            conn.execute("PRAGMA synchronous=NORMAL")  # durable at checkpoints; WAL keeps it consistent
            yield conn
        finally:
            conn.close()

    def get_many(self, keys: Sequence[str]) -> dict[str, CachedAnswer]:
        found: dict[str, CachedAnswer] = {}
        unique = list(dict.fromkeys(keys))
        with self._connect() as conn:
            for start in range(0, len(unique), _CHUNK):
                chunk = unique[start : start + _CHUNK]
                rows = conn.execute(
                    "SELECT cache_key, model, prompt_version, score, confidence, topics, rationale, "
                    "rejected_reason, prompt_tokens, completion_tokens, cost_usd FROM sentiment_answers "
                    f"WHERE cache_key IN ({','.join('?' * len(chunk))})",
                    chunk,
                ).fetchall()
                for key, model, version, score, conf, topics, rationale, reason, pt, ct, cost in rows:
                    verdict = Verdict(score, conf, tuple(json.loads(topics)), rationale, reason)
                    found[key] = CachedAnswer(verdict, model, version, pt, ct, cost)
        return found

    def put_many(self, entries: Iterable[tuple[str, CachedAnswer]]) -> int:
        """Store answers whose key is new; returns how many were inserted."""
        rows = [
            (key, a.model, a.prompt_version, a.verdict.score, a.verdict.confidence,
             json.dumps(list(a.verdict.topics), ensure_ascii=False), a.verdict.rationale,
             a.verdict.rejected_reason, a.prompt_tokens, a.completion_tokens, a.cost_usd, time.time())
            for key, a in entries
        ]
        if not rows:
            return 0
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                before = conn.total_changes
                conn.executemany("INSERT OR IGNORE INTO sentiment_answers VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", rows)
                inserted = conn.total_changes - before
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return inserted

    def __len__(self) -> int:
        with self._connect() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM sentiment_answers").fetchone()[0])
