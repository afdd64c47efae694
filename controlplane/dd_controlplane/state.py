"""What one running control plane holds: settings, start time, shared clients, the registry.

One ``State`` lives on each app (``app.extensions["dd"]``), built by ``create_app``; the
parts that need a running event loop (the httpx client and what uses it) are opened in
``before_serving`` and closed in ``after_serving``. Routes reach it with
``current_state()``; everything below ``routes/`` takes what it needs as arguments.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from quart import current_app

from .attestation.oidc import OidcVerifier
from .auth.github import GitHubApi
from .auth.oauth import OAuthFlow
from .auth.owner import OwnerCheck
from .registration.registry import Registry
from .settings import Settings

__all__ = ["State", "current_state"]

USER_AGENT = "dd-controlplane/0.1"


@dataclass
class Clients:
    """Everything built on the shared httpx client; exists only while serving."""

    http: httpx.AsyncClient
    owner_check: OwnerCheck
    oidc: OidcVerifier


@dataclass
class State:
    settings: Settings
    started_monotonic: float = field(default_factory=time.monotonic)
    registry: Registry = field(default_factory=Registry)
    oauth: OAuthFlow | None = None
    clients: Clients | None = None
    attestation_summary: dict[str, Any] | None = None
    attestation_summary_at: float = float("-inf")
    handshake_slots: asyncio.Semaphore | None = None

    def uptime_seconds(self) -> float:
        return time.monotonic() - self.started_monotonic

    def open(self) -> None:
        s = self.settings
        http = httpx.AsyncClient(
            headers={"User-Agent": USER_AGENT},
            timeout=httpx.Timeout(10.0, connect=5.0),
            follow_redirects=False,
        )
        self.clients = Clients(
            http=http,
            owner_check=OwnerCheck(
                GitHubApi(http, s.github.api_url), s.owner, ttl=s.github.owner_cache_seconds
            ),
            oidc=OidcVerifier(s.oidc, owner=s.owner, http=http),
        )
        self.handshake_slots = asyncio.Semaphore(s.registration.max_concurrent_handshakes)

    async def close(self) -> None:
        if self.clients is not None:
            await self.clients.http.aclose()
            self.clients = None

    def serving(self) -> Clients:
        if self.clients is None:
            raise RuntimeError("the control plane is not serving (before_serving has not run)")
        return self.clients


def current_state() -> State:
    state = current_app.extensions["dd"]
    assert isinstance(state, State)
    return state
