"""Per-host request-weight budget, fed by the server's ``X-MBX-USED-WEIGHT-1M`` header.

Every response says how much weight the IP used in the current minute (other
processes on the same IP show up there); each request knows its weight; a
request that would take used + in-flight + weight past ``safety_margin *
weight_limit`` waits for the next minute window. 429 blocks the host until
``Retry-After``; 418 bans it until then, and nothing is sent to it meanwhile.
"""

from __future__ import annotations

import threading
import time
from typing import Callable
from urllib.parse import urlsplit

SPOT_WEIGHT_LIMIT = 6000  # request weight per minute per IP (api.binance.com)
FAPI_WEIGHT_LIMIT = 2400  # USD-M futures request weight per minute per IP


class WeightLimiter:
    """Per-host request-weight budget, fed by the server's ``X-MBX-USED-WEIGHT-1M``.

    Thread-safe (a ``threading.Lock`` guards state, never held across an await),
    so one limiter can be shared by clients running in different event loops.
    """

    def __init__(self, weight_limit: int = SPOT_WEIGHT_LIMIT, *, safety_margin: float = 0.9,
                 window_s: float = 60.0, window_slack_s: float = 0.25,
                 clock: Callable[[], float] = time.time):
        if not 0 < safety_margin <= 1:
            raise ValueError("safety_margin must be in (0, 1]")
        self.weight_limit = weight_limit
        self.budget = max(1, int(weight_limit * safety_margin))
        self.window_s = window_s
        self.window_slack_s = window_slack_s
        self.clock = clock
        self._lock = threading.Lock()
        self._window = -1
        self.used = 0  # weight used in the current window (server's figure, or our estimate)
        self.inflight = 0
        self.blocked_until = 0.0  # 429 Retry-After
        self.ban_until = 0.0  # 418

    def _roll(self, now: float) -> int:
        window = int(now // self.window_s)
        if window != self._window:
            self._window, self.used = window, 0
        return window

    def acquire_or_wait(self, weight: int) -> tuple[float, str, int]:
        """Reserve ``weight`` and return (0, "", window), or return (seconds, reason, -1)."""
        with self._lock:
            now = self.clock()
            if self.ban_until > now:
                return self.ban_until - now, "banned (HTTP 418)", -1
            if self.blocked_until > now:
                return self.blocked_until - now, "rate limited (HTTP 429)", -1
            window = self._roll(now)
            busy = self.used + self.inflight
            if busy + weight > self.budget and busy > 0:
                wait = (window + 1) * self.window_s - now + self.window_slack_s
                return wait, (f"weight {self.used}+{self.inflight}+{weight} would exceed "
                              f"{self.budget} of {self.weight_limit}/min"), -1
            self.inflight += weight
            return 0.0, "", window

    def settle(self, weight: int, window: int, used_header: str | None) -> None:
        with self._lock:
            self.inflight = max(0, self.inflight - weight)
            current = self._roll(self.clock())
            if current != window:
                return  # answer belongs to a window that is over
            if used_header is not None:
                try:
                    self.used = max(self.used, int(used_header))
                    return
                except ValueError:
                    pass
            self.used += weight

    def release(self, weight: int) -> None:
        """Undo a reservation whose request never reached the server's counter."""
        with self._lock:
            self.inflight = max(0, self.inflight - weight)

    def block(self, seconds: float, *, ban: bool) -> float:
        with self._lock:
            until = self.clock() + seconds
            if ban:
                self.ban_until = max(self.ban_until, until)
            else:
                self.blocked_until = max(self.blocked_until, until)
            return until


_SHARED: dict[tuple, WeightLimiter] = {}
_SHARED_LOCK = threading.Lock()


def shared_limiter(base_url: str, weight_limit: int, safety_margin: float = 0.9) -> WeightLimiter:
    """One limiter per (host, limit, margin) per process: sync wrappers share it."""
    key = (urlsplit(base_url).netloc, weight_limit, safety_margin)
    with _SHARED_LOCK:
        if key not in _SHARED:
            _SHARED[key] = WeightLimiter(weight_limit, safety_margin=safety_margin)
        return _SHARED[key]
