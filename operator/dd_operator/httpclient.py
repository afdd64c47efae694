"""The one httpx client factory: timeouts, user agent, redirects.

Every HTTP call the operator makes outside the cloud SDKs (health checks, the
VM's attest endpoint, GitHub) goes through a client built here, so timeouts and
headers are set once.
"""

from __future__ import annotations

import httpx

__all__ = ["USER_AGENT", "new_client"]

USER_AGENT = "dd-preview-operator/0.1"


def new_client(
    *,
    base_url: str = "",
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
    verify: bool | str = True,
) -> httpx.AsyncClient:
    """A client with a short connect timeout: an unreachable VM must not stall reconcile."""
    return httpx.AsyncClient(
        base_url=base_url,
        headers={"User-Agent": USER_AGENT, **(headers or {})},
        timeout=httpx.Timeout(timeout, connect=5.0),
        follow_redirects=False,
        verify=verify,
    )
