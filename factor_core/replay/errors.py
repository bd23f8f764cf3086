"""What can go wrong with a replay, and how each failure reaches the client.

Every failure is a :class:`ReplayError` with an HTTP status (before the
stream starts) and a WebSocket close code (the server first sends the full
message as a JSON text frame ``{"type": "error", ...}``, because a close
reason is limited to 123 bytes, then closes with the code):

=======================  ======  ==========  =================================================
error                    HTTP    WS close    when
=======================  ======  ==========  =================================================
ReplayOptionsError       400     4400        malformed ``options``, bad field, ``from`` >= ``to``,
                                             ``speed`` <= 0, unknown data type, invalid symbol
ReplayNotFoundError      404     4404        unregistered symbol, partitions never materialized
StoredDataError          422     4422        stored data unusable: quarantined partition, wrong
                                             schema, depth bands instead of levels, a crossed
                                             book snapshot, rows out of time order
(anything else)          500     1011        a server bug; the message says what failed
=======================  ======  ==========  =================================================

Codes 4000-4999 are the range RFC 6455 leaves to applications; 4400 / 4404 /
4422 mirror the HTTP statuses so a client can handle both transports alike.
"""

from __future__ import annotations

import json


class ReplayError(Exception):
    """A replay that cannot be served; ``message`` says what is wrong and what to do."""

    http_status = 500
    close_code = 1011
    kind = "internal_error"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def to_json(self) -> str:
        return json.dumps({"type": "error", "error": self.kind, "code": self.close_code, "message": self.message},
                          separators=(",", ":"))


class ReplayOptionsError(ReplayError):
    """The request itself is wrong (options string, a field, a value)."""

    http_status = 400
    close_code = 4400
    kind = "invalid_options"


class ReplayNotFoundError(ReplayError):
    """The request is well formed but names data this server does not have."""

    http_status = 404
    close_code = 4404
    kind = "not_found"


class StoredDataError(ReplayError):
    """Stored partitions exist but break the raw data contract; replaying them would mislead."""

    http_status = 422
    close_code = 4422
    kind = "invalid_stored_data"


def close_reason(message: str, limit: int = 123) -> str:
    """``message`` cut to what a WebSocket close frame can carry (123 bytes of UTF-8)."""
    encoded = message.encode()
    if len(encoded) <= limit:
        return message
    return encoded[: limit - 3].decode(errors="ignore") + "..."
