"""The one httpx client factory: timeouts, user agent, redirects.

Every HTTP call the operator makes outside the cloud SDKs (health checks, the
VM's attest endpoint, GitHub) goes through a client built here, so timeouts and
headers are set once.
"""

from __future__ import annotations

import ssl

import httpx

__all__ = ["USER_AGENT", "new_client"]

USER_AGENT = "dd-preview-operator/0.1"


def new_client(
    *,
    base_url: str = "",
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
    ca_file: str = "",
) -> httpx.AsyncClient:
    """A client with a short connect timeout: an unreachable VM must not stall reconcile.

    ``ca_file`` trusts that CA bundle instead of the system's (e.g. a private edge)."""
    verify: bool | ssl.SSLContext = ssl.create_default_context(cafile=ca_file) if ca_file else True
    return httpx.AsyncClient(
        base_url=base_url,
        headers={"User-Agent": USER_AGENT, **(headers or {})},
        timeout=httpx.Timeout(timeout, connect=5.0),
        follow_redirects=False,
        verify=verify,
    )
