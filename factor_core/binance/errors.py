"""Exception types of the Binance data layer.

Every message names what went wrong and where: the URL or file, the line, the
column and the offending value, so a failed Dagster step is diagnosable from
its error text alone.
"""

from __future__ import annotations


class BinanceError(Exception):
    """Base class of every error raised by ``factor_core.binance``."""


# --------------------------------------------------------------------------- archive


class NotAvailableYet(BinanceError):
    """The archive answered 404: the file is not published (yet).

    Daily files appear the day after, monthly files early in the next month.
    Never turned into an empty table: the caller decides whether to retry later.
    """

    def __init__(self, url: str):
        self.url = url
        super().__init__(f"{url} not published yet (HTTP 404)")


class ChecksumError(BinanceError):
    """Base class of checksum problems (mismatch, missing or malformed CHECKSUM)."""


class ChecksumMismatch(ChecksumError):
    def __init__(self, url: str, expected: str, actual: str):
        self.url, self.expected, self.actual = url, expected, actual
        super().__init__(
            f"checksum mismatch for {url}: CHECKSUM file says sha256 {expected}, "
            f"downloaded bytes hash to {actual}"
        )


class ChecksumMissing(ChecksumError):
    def __init__(self, url: str, checksum_url: str):
        self.url, self.checksum_url = url, checksum_url
        super().__init__(
            f"cannot verify {url}: its checksum file {checksum_url} is missing (HTTP 404); "
            "refusing to parse an unverified archive"
        )


class CorruptArchive(BinanceError):
    """The zip cannot be opened/decompressed, or has not exactly one CSV member."""


class ParseError(BinanceError, ValueError):
    """A CSV row that does not meet the format: names file, line, column and value."""

    def __init__(
        self,
        source: str,
        problem: str,
        *,
        line: int | None = None,
        column: str | None = None,
        value: object = None,
    ):
        self.source, self.problem = source, problem
        self.line, self.column, self.value = line, column, value
        where = source
        if line is not None:
            where += f" line {line}"
        if column is not None:
            where += f" column {column!r}"
        if value is not None:
            text = repr(value)
            if len(text) > 120:
                text = text[:117] + "..."
            where += f" value {text}"
        super().__init__(f"{where}: {problem}")


# --------------------------------------------------------------------------- REST / HTTP


class RequestFailed(BinanceError):
    """Retries exhausted (5xx, timeouts, connection resets): carries the last error."""

    def __init__(self, message: str, last_error: BaseException | None = None):
        self.last_error = last_error
        super().__init__(message)


class RateLimited(BinanceError):
    """HTTP 429/418 whose Retry-After (or a weight-window wait) exceeds the caller's budget."""

    def __init__(self, message: str, *, retry_after_s: float, budget_s: float, status: int | None):
        self.retry_after_s, self.budget_s, self.status = retry_after_s, budget_s, status
        super().__init__(message)


class IPBanned(RateLimited):
    """HTTP 418: the IP is banned until ``ban_until`` (epoch seconds)."""


class MalformedResponse(BinanceError):
    """A response body that is not the JSON the endpoint promises."""


class UnknownSymbol(BinanceError, ValueError):
    """Binance answered ``{"code": -1121, "msg": "Invalid symbol."}``."""

    def __init__(self, symbol: str, endpoint: str, msg: str = "Invalid symbol."):
        self.symbol = symbol
        super().__init__(f"Binance does not know symbol {symbol!r} ({endpoint}: code -1121 {msg})")


class ApiError(BinanceError):
    """Any other 4xx answer with a Binance error body."""

    def __init__(self, endpoint: str, status: int, code: int | None, msg: str):
        self.endpoint, self.status, self.code, self.msg = endpoint, status, code, msg
        super().__init__(f"{endpoint}: HTTP {status}, Binance code {code}: {msg}")
