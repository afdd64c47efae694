"""``OwnerCheck``: may this GitHub token act as ``DD_OWNER``? With a short cache.

The rule: the token's user *is* ``DD_OWNER``, or is a member of the org ``DD_OWNER``
(both compared case-insensitively, as GitHub logins are). Nothing else: the predecessor
also admitted anyone who could read ``{owner}/dd``, which is everyone while it is public.

Results (yes and no, not upstream failures) are cached for ``ttl`` seconds keyed by
sha256 of the token, so the token itself is never kept as a key and one dashboard view
costs one GitHub lookup. The cache is bounded; the oldest entries go first.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from ..errors import NotOwner

__all__ = ["OwnerCheck", "Principal"]

MAX_CACHE_ENTRIES = 1024


class OwnerLookups(Protocol):
    async def user(self, token: str) -> _User: ...
    async def is_org_member(self, token: str, org: str) -> bool: ...


class _User(Protocol):
    @property
    def login(self) -> str: ...


@dataclass(frozen=True)
class Principal:
    login: str
    via: Literal["user", "org", "session"]


_Verdict = Principal | str  # a Principal, or the login that is not an owner


class OwnerCheck:
    def __init__(
        self, lookups: OwnerLookups, owner: str, *, ttl: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lookups = lookups
        self._owner = owner
        self._ttl = ttl
        self._clock = clock
        self._cache: OrderedDict[str, tuple[float, _Verdict]] = OrderedDict()

    async def check(self, token: str) -> Principal:
        """The principal for ``token``; ``NotOwner`` or ``AuthRequired`` otherwise."""
        key = hashlib.sha256(token.encode()).hexdigest()
        cached = self._cache.get(key)
        if cached is not None and cached[0] > self._clock():
            verdict = cached[1]
        else:
            verdict = await self._decide(token)
            self._remember(key, verdict)
        if isinstance(verdict, Principal):
            return verdict
        raise NotOwner(f"GitHub user {verdict!r} is not {self._owner!r} nor a member of it")

    async def _decide(self, token: str) -> _Verdict:
        user = await self._lookups.user(token)
        if user.login.casefold() == self._owner.casefold():
            return Principal(login=user.login, via="user")
        if await self._lookups.is_org_member(token, self._owner):
            return Principal(login=user.login, via="org")
        return user.login

    def _remember(self, key: str, verdict: _Verdict) -> None:
        self._cache[key] = (self._clock() + self._ttl, verdict)
        self._cache.move_to_end(key)
        while len(self._cache) > MAX_CACHE_ENTRIES:
            self._cache.popitem(last=False)
