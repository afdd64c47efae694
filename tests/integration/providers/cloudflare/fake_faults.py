"""Fault switches of the fake Cloudflare API: what can go wrong, and which request it hits.

Each switch is a ``Fault`` (settable in process with ``FakeCloudflare.add_fault`` or over
HTTP with ``POST /_fake/faults``); ``RateBlock`` models Cloudflare's per-token limit
(past N calls in a window, every call gets 429 for 5 minutes) with small numbers for tests.

| kind                   | effect                                                               |
|------------------------|----------------------------------------------------------------------|
| ``rate_limit``         | 429 + ``Retry-After: retry_after`` (v4 envelope, code 971)           |
| ``server_error``       | ``status`` (default 500) with a v4 error envelope                    |
| ``html_error``         | ``status`` (default 502) with an HTML error page, like Cloudflare's  |
| ``page_failure``       | a listing request for page ``page`` fails with ``status`` (500)      |
| ``lingering_connections`` | a tunnel delete is refused (code 1022) even after cleanup        |
| ``soft_deleted_listing``  | tunnel listings include soft-deleted tunnels whatever the filter |

``count`` is how many matching requests a fault hits (``None``: until cleared); ``method``
and ``path_contains`` narrow which requests match.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, cast

FaultKind = Literal[
    "rate_limit",
    "server_error",
    "html_error",
    "page_failure",
    "lingering_connections",
    "soft_deleted_listing",
]
KINDS: tuple[str, ...] = FaultKind.__args__  # type: ignore[attr-defined]

DEFAULT_STATUS = {"rate_limit": 429, "server_error": 500, "html_error": 502, "page_failure": 500}


@dataclass
class Fault:
    kind: FaultKind
    count: int | None = 1
    status: int = 0
    retry_after: int = 1
    method: str = ""
    path_contains: str = ""
    page: int = 0
    hits: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; known: {', '.join(KINDS)}")
        self.status = self.status or DEFAULT_STATUS.get(self.kind, 0)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Fault:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__ and k != "hits"}
        return cls(**cast(Any, known))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def matches(self, method: str, path: str, page: int | None) -> bool:
        if self.count is not None and self.hits >= self.count:
            return False
        if self.method and self.method.upper() != method.upper():
            return False
        if self.path_contains and self.path_contains not in path:
            return False
        return not (self.kind == "page_failure" and page != self.page)


@dataclass
class RateBlock:
    """Past ``threshold`` calls in ``window`` seconds, every call gets 429 for ``block_seconds``."""

    threshold: int
    window: float
    block_seconds: float = 300.0
    _calls: deque[float] = field(default_factory=deque)
    _blocked_until: float = -math.inf

    def check(self, now: float) -> float | None:
        """Record one call at ``now``; return the seconds left in the block, or None."""
        if now < self._blocked_until:
            return self._blocked_until - now
        self._calls.append(now)
        while self._calls and now - self._calls[0] >= self.window:
            self._calls.popleft()
        if len(self._calls) > self.threshold:
            self._blocked_until = now + self.block_seconds
            self._calls.clear()
            return self.block_seconds
        return None


class FaultSwitches:
    """The active faults; the fake asks it about every API request (under the fake's lock)."""

    def __init__(self) -> None:
        self.faults: list[Fault] = []
        self.rate_block: RateBlock | None = None

    def add(self, fault: Fault) -> Fault:
        self.faults.append(fault)
        return fault

    def clear(self) -> None:
        self.faults.clear()
        self.rate_block = None

    def take(
        self, kinds: tuple[str, ...], method: str, path: str, page: int | None
    ) -> Fault | None:
        """The first matching fault of ``kinds``, counted as hit."""
        for fault in self.faults:
            if fault.kind in kinds and fault.matches(method, path, page):
                fault.hits += 1
                return fault
        return None

    def active(self, kind: str) -> bool:
        return any(f.kind == kind and (f.count is None or f.hits < f.count) for f in self.faults)

    def to_json(self) -> dict[str, Any]:
        block = self.rate_block
        return {
            "faults": [f.to_json() for f in self.faults],
            "rate_block": None if block is None else {
                "threshold": block.threshold, "window": block.window,
                "block_seconds": block.block_seconds,
            },
        }
