"""The error family that providers map their SDK errors into.

::

    DDError
      TransientFailure(retry_after)   429, 5xx, timeouts, zone exhausted: retry with backoff
      PermanentFailure(reason)        bad config, invalid machine type: a condition, no hot loop
      NotFound                        404; teardown counts it as done
      NotOurs(owner)                  exists with someone else's stamp (e.g. DNSConflict)
      IncompleteListing(source)       a failed page or source: the reaper deletes nothing

Messages are written for people and never carry tokens, raw bodies or headers.
"""

from __future__ import annotations

__all__ = [
    "DDError",
    "IncompleteListing",
    "NotFound",
    "NotOurs",
    "PermanentFailure",
    "TransientFailure",
]


class DDError(Exception):
    """Base of every error the operator raises on purpose."""


class TransientFailure(DDError):
    """Worth retrying later; ``retry_after`` (seconds) is the server's hint, if any."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentFailure(DDError):
    """Will not fix itself; ``reason`` is a CamelCase condition reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class NotFound(DDError):
    """The thing is confirmed absent (a 404), which is different from "could not read it"."""


class NotOurs(DDError):
    """The thing exists but carries another owner's stamp (or none): never adopt or delete it."""

    def __init__(self, message: str, *, owner: str | None = None) -> None:
        super().__init__(message)
        self.owner = owner


class IncompleteListing(DDError):
    """A listing did not complete (a page failed, a source was unreachable)."""

    def __init__(self, source: str, message: str) -> None:
        super().__init__(f"{source}: {message}")
        self.source = source
