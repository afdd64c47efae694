"""The one backoff policy, Retry-After handling, and the shared Cloudflare request budget.

Why one module: the predecessor retried in shell loops with three different
schedules. Here every caller (handlers, providers, the reaper) asks ``backoff``
how long to wait and draws API calls from one ``RequestBudget`` per token.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

__all__ = ["RequestBudget", "backoff", "parse_retry_after"]

BASE_DELAY = 2.0
MAX_DELAY = 300.0


def backoff(attempt: int, *, retry_after: float | None = None, jitter: float = 0.2) -> float:
    """Seconds to wait before retry number ``attempt`` (0-based).

    Exponential from 2 s, capped at 5 minutes, with +-20% jitter so replicas and
    objects do not retry in lockstep. A server's Retry-After always wins when longer.
    """
    delay: float = min(MAX_DELAY, BASE_DELAY * (2.0 ** max(0, attempt)))
    delay *= 1 + random.uniform(-jitter, jitter)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Retry-After is either delta-seconds or an HTTP date; anything else is ignored."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    current = now or datetime.now(UTC)
    return max(0.0, (when - current).total_seconds())


class RequestBudget:
    """A sliding-window limit shared by every caller of one API token.

    Cloudflare blocks a token for 5 minutes once it passes 1,200 calls in 5 minutes,
    so we refuse to pass ``limit`` and also honour a server-imposed pause
    (``pause_for``) after a 429: one 429 pauses every caller, not just the unlucky one.
    """

    def __init__(
        self,
        limit: int,
        window: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """``clock`` and ``sleep`` are injectable so tests run a 5-minute window in no time."""
        self.limit = limit
        self.window = window
        self._clock = clock
        self._sleep = sleep
        self._calls: deque[float] = deque()
        self._paused_until = 0.0
        self._lock = asyncio.Lock()

    def pause_for(self, seconds: float) -> None:
        self._paused_until = max(self._paused_until, self._clock() + seconds)

    def wait_time(self) -> float:
        """Seconds until one more call is allowed (0 when it is allowed now)."""
        now = self._clock()
        while self._calls and now - self._calls[0] >= self.window:
            self._calls.popleft()
        wait = max(0.0, self._paused_until - now)
        if len(self._calls) >= self.limit:
            wait = max(wait, self._calls[0] + self.window - now)
        return wait

    async def acquire(self) -> None:
        async with self._lock:
            while (wait := self.wait_time()) > 0:
                await self._sleep(wait)
            self._calls.append(self._clock())
