"""Exception types of the news sources.

Every message names the file and line, or the URL, the field and the value,
and says what to do, so a failed ``news_items`` step is diagnosable from its
error text alone.
"""

from __future__ import annotations


def shorten(value: object, limit: int = 120) -> str:
    """``repr(value)`` cut to ``limit`` characters (a bad 1 MB line must not flood the log)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class NewsSourceError(Exception):
    """Base class of every error raised by ``factor_core.news``."""


class FeedError(NewsSourceError):
    """An RSS / Atom URL that could not be fetched or is not a feed."""

    def __init__(self, url: str, problem: str):
        self.url, self.problem = url, problem
        super().__init__(f"news feed {url}: {problem}")

    def __reduce__(self):  # picklable: a range run hands feed failures (skip mode) to worker processes
        return (FeedError, (self.url, self.problem))


class BadLine:
    """One refused line of a landing file: where it is and why."""

    __slots__ = ("path", "line", "problem")

    def __init__(self, path: str, line: int, problem: str):
        self.path, self.line, self.problem = path, line, problem

    def __str__(self) -> str:
        return f"{self.path} line {self.line}: {self.problem}"

    def __repr__(self) -> str:
        return f"BadLine({self.path!r}, {self.line}, {self.problem!r})"


class LandingNewsError(NewsSourceError, ValueError):
    """A landing ``*.jsonl`` file with lines that are not news items; the whole file is refused."""

    def __init__(self, path: str, bad_lines: list[BadLine], *, shown: int = 5):
        self.path, self.bad_lines, self.shown = path, bad_lines, shown
        listed = "; ".join(f"line {b.line}: {b.problem}" for b in bad_lines[:shown])
        more = f" (and {len(bad_lines) - shown} more)" if len(bad_lines) > shown else ""
        super().__init__(
            f"landing news file {path}: {len(bad_lines)} bad line(s), file refused: {listed}{more}. "
            "Fix or remove those lines (one JSON object per line with published_at and title), "
            "or read with on_bad_line='skip' to keep the other lines."
        )

    def __reduce__(self):  # picklable (worker processes hand errors back to the step)
        return (_landing_news_error, (self.path, self.bad_lines, self.shown))


def _landing_news_error(path: str, bad_lines: list[BadLine], shown: int) -> LandingNewsError:
    return LandingNewsError(path, bad_lines, shown=shown)
