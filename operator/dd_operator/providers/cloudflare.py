"""The ``cloudflare`` edge: one tunnel per environment, its ingress, and a proxied CNAME.

What lives here: ``CloudflareEdgeProvider`` (the ``EdgeProvider`` of ``base.py``) over the
official ``cloudflare`` SDK, and the mapping of that SDK's errors into ``errors.py``.
What does not: names and stamps (``naming.py``), backoff and the request budget
(``retry.py``), when to call what (``reconcile``).

Why these rules:

1. Every API call first draws from the shared ``RequestBudget``: Cloudflare blocks a token
   for 5 minutes once it passes 1,200 calls in 5 minutes, and handlers and the reaper share
   one token. A 429 pauses the whole budget (``pause_for``) and raises ``TransientFailure``
   with the server's Retry-After, so a rate limit never becomes a crash loop.
2. The SDK's own retries are off (``max_retries=0``): ``retry.py`` alone decides.
3. Listings follow every page. The SDK asks for the next page until it gets an empty
   ``result``; we also stop when ``result_info`` says the last page was served, which
   saves one call per lookup. A page that fails makes a reaper listing
   ``IncompleteListing``: a partial listing must never look like "gone".
4. Soft-deleted tunnels (``deleted_at`` set) are ignored even when the ``is_deleted=false``
   filter lets them through (cloudflare-go #891).
5. A DNS name that already exists is adopted only when its comment carries our exact
   stamp; anything else raises ``NotOurs`` and is never overwritten.
6. Messages never carry the API token, tunnel tokens or raw response bodies.

``probe`` checks readiness through the public hostname, the way a user reaches it. With
``probe_address`` set (tests: the fake edge) it connects there while sending the
hostname as Host and TLS SNI, and verifies the edge's certificate with ``probe_ca_file``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

import cloudflare
import httpx
from cloudflare import AsyncCloudflare

from .. import metrics, naming
from ..errors import (
    DDError,
    IncompleteListing,
    NotFound,
    NotOurs,
    PermanentFailure,
    TransientFailure,
)
from ..httpclient import new_client
from ..naming import Stamp
from ..retry import RequestBudget, parse_retry_after
from ..settings import CloudflareSettings
from .base import DnsRecord, Tunnel

__all__ = ["CloudflareEdgeProvider", "tunnel_cname_target"]

log = logging.getLogger(__name__)

T = TypeVar("T")

PER_PAGE = 100
"""Page size we ask for; the server may serve fewer, and we follow its pages either way."""
MAX_PAGES = 1000
"""A listing longer than this is treated as incomplete rather than followed forever."""
RATE_LIMIT_PAUSE = 60.0
"""Pause after a 429 that carries no Retry-After (Cloudflare's own block lasts 300 s)."""

RECORD_EXISTS_CODES = frozenset({81053, 81057, 81058})
""""An A, AAAA, or CNAME record with that host already exists" and its two siblings."""
TUNNEL_NAME_TAKEN_CODE = 1013
""""You already have a tunnel with this name"."""
ACTIVE_CONNECTIONS_CODE = 1022
""""Cannot delete tunnel because it has active connections"."""


def tunnel_cname_target(tunnel_id: str) -> str:
    """Where an environment's CNAME points: Cloudflare's name for the tunnel."""
    return f"{tunnel_id}.cfargotunnel.com"


def _error_codes(exc: cloudflare.APIError) -> set[int]:
    return {e.code for e in exc.errors if isinstance(e.code, int)}


def _first_error_message(exc: cloudflare.APIError) -> str:
    """Cloudflare's own short error text, from a JSON envelope only (never a raw page)."""
    for e in exc.errors:
        if e.message:
            return e.message[:120]
    return ""


def _tunnel(raw: Any) -> Tunnel:
    connections = getattr(raw, "connections", None) or []
    return Tunnel(
        id=str(raw.id or ""),
        name=str(raw.name or ""),
        connections=len(connections),
        created_at=_as_datetime(getattr(raw, "created_at", None)),
    )


def _record(raw: Any) -> DnsRecord:
    return DnsRecord(
        id=str(raw.id),
        name=str(getattr(raw, "name", "") or ""),
        content=str(getattr(raw, "content", "") or ""),
        comment=str(getattr(raw, "comment", "") or ""),
        created_at=_as_datetime(getattr(raw, "created_on", None)),
    )


def _as_datetime(value: object) -> datetime | None:
    return value if isinstance(value, datetime) else None


def _is_live(raw: Any) -> bool:
    return getattr(raw, "deleted_at", None) is None


def _page_has_more(page: Any) -> bool:
    if not page.result:
        return False
    info = getattr(page, "result_info", None)
    current = getattr(info, "page", None)
    total = getattr(info, "total_pages", None)
    if isinstance(current, int) and isinstance(total, int):
        return current < total
    return True


class CloudflareEdgeProvider:
    """Tunnel + ingress + proxied CNAME through the ``cloudflare`` SDK (``AsyncCloudflare``)."""

    def __init__(self, settings: CloudflareSettings, budget: RequestBudget | None = None) -> None:
        self._settings = settings
        self._budget = budget or RequestBudget(
            settings.budget_requests, settings.budget_window_seconds
        )
        self._cf = AsyncCloudflare(
            api_token=settings.api_token,
            base_url=settings.base_url or None,
            max_retries=0,
            timeout=httpx.Timeout(30.0, connect=5.0),
        )
        self._probe_client: httpx.AsyncClient | None = None

    # -- the SDK boundary -------------------------------------------------------------

    async def _call(self, what: str, make: Callable[[], Awaitable[T]]) -> T:
        """One API call: draw from the budget, then map the SDK's errors into ours."""
        await self._budget.acquire()
        metrics.record_cloud_call("cloudflare")
        try:
            return await make()
        except cloudflare.APIError as exc:
            raise self._translate(exc, what) from exc

    def _translate(self, exc: cloudflare.APIError, what: str) -> DDError:
        metrics.record_cloud_error("cloudflare", exc)
        if isinstance(exc, cloudflare.APIConnectionError):  # includes timeouts
            return TransientFailure(f"Cloudflare did not answer while {what}; will retry")
        if not isinstance(exc, cloudflare.APIStatusError):
            return TransientFailure(f"Cloudflare sent an unexpected response while {what}")
        status = exc.status_code
        codes = _error_codes(exc)
        if status == 429:
            retry_after = parse_retry_after(exc.response.headers.get("retry-after"))
            pause = retry_after if retry_after is not None else RATE_LIMIT_PAUSE
            self._budget.pause_for(pause)
            return TransientFailure(
                f"Cloudflare rate limit while {what}; every caller pauses {pause:.0f}s",
                retry_after=pause,
            )
        if ACTIVE_CONNECTIONS_CODE in codes:
            return TransientFailure(
                f"Cloudflare refused {what}: the tunnel still has active connections; "
                "retrying once its connector has stopped"
            )
        if status in (401, 403):
            return PermanentFailure(
                "CloudflareAuth",
                f"Cloudflare refused the API token while {what} (HTTP {status}); "
                "check that DD_CF_API_TOKEN may edit tunnels and DNS for this account and zone",
            )
        if status == 404:
            return NotFound(f"Cloudflare: not found while {what}")
        if status >= 500 or status in (408, 409):
            return TransientFailure(f"Cloudflare answered HTTP {status} while {what}; will retry")
        detail = _first_error_message(exc)
        code_text = ", ".join(str(c) for c in sorted(codes)) or "none"
        return PermanentFailure(
            "CloudflareRejected",
            f"Cloudflare rejected {what} (HTTP {status}, codes {code_text})"
            + (f": {detail}" if detail else ""),
        )

    async def _all_pages(self, what: str, first: Callable[[], Awaitable[Any]]) -> list[Any]:
        """Every item of a v4 paginated listing; each page is one budgeted call."""
        page = await self._call(what, first)
        items: list[Any] = list(page.result or [])
        for number in range(2, MAX_PAGES + 1):
            if not _page_has_more(page):
                return items
            page = await self._call(f"{what} (page {number})", page.get_next_page)
            items.extend(page.result or [])
        raise TransientFailure(f"Cloudflare listing for {what} passed {MAX_PAGES} pages")

    # -- tunnels ------------------------------------------------------------------------

    @property
    def _tunnels(self) -> Any:
        return self._cf.zero_trust.tunnels.cloudflared

    async def find_tunnel(self, stamp: Stamp) -> Tunnel | None:
        name = naming.tunnel_name(stamp)
        found = await self._all_pages(
            f"looking up tunnel {name}",
            lambda: self._tunnels.list(
                account_id=self._settings.account_id, name=name, is_deleted=False,
                per_page=PER_PAGE,
            ),
        )
        live = [
            t for t in found if t.name == name and _is_live(t) and naming.is_ours(t.name, stamp)
        ]
        if not live:
            return None
        live.sort(key=lambda t: (t.created_at is None, t.created_at or datetime.min, t.id))
        return _tunnel(live[0])

    async def create_tunnel(self, stamp: Stamp) -> Tunnel:
        name = naming.tunnel_name(stamp)

        async def create() -> Any:
            try:
                return await self._tunnels.create(
                    account_id=self._settings.account_id, name=name, config_src="cloudflare"
                )
            except cloudflare.APIStatusError as exc:
                if TUNNEL_NAME_TAKEN_CODE in _error_codes(exc):
                    return None
                raise

        created = await self._call(f"creating tunnel {name}", create)
        if created is not None:
            log.info("created Cloudflare tunnel %s (%s)", name, created.id)
            return _tunnel(created)
        # The name is taken: an earlier attempt (before a crash or a lost reply) created it.
        existing = await self.find_tunnel(stamp)
        if existing is None:
            raise TransientFailure(
                f"Cloudflare says tunnel {name} exists but does not list it yet; will retry"
            )
        log.info("adopted existing Cloudflare tunnel %s (%s)", name, existing.id)
        return existing

    async def configure_tunnel(
        self, tunnel: Tunnel, hostname: str, port: int, *, suspended: bool = False
    ) -> None:
        service = "http_status:503" if suspended else f"http://localhost:{port}"
        ingress = [
            {"hostname": hostname, "service": service},
            {"service": "http_status:404"},
        ]
        await self._call(
            f"configuring ingress of tunnel {tunnel.name}",
            lambda: self._tunnels.configurations.update(
                tunnel.id, account_id=self._settings.account_id, config={"ingress": ingress}
            ),
        )

    async def tunnel_token(self, tunnel: Tunnel) -> str:
        token = await self._call(
            f"fetching the token of tunnel {tunnel.name}",
            lambda: self._tunnels.token.get(tunnel.id, account_id=self._settings.account_id),
        )
        return str(token)

    async def delete_tunnel(self, tunnel: Tunnel) -> None:
        """Clean up connections, then delete; 404 at either step means already gone."""
        account = self._settings.account_id
        try:
            await self._call(
                f"cleaning up connections of tunnel {tunnel.name}",
                lambda: self._tunnels.connections.delete(tunnel.id, account_id=account),
            )
            await self._call(
                f"deleting tunnel {tunnel.name}",
                lambda: self._tunnels.delete(tunnel.id, account_id=account),
            )
        except NotFound:
            return
        log.info("deleted Cloudflare tunnel %s (%s)", tunnel.name, tunnel.id)

    async def list_tunnels(self, cluster_id: str) -> list[Tunnel]:
        prefix = f"ddp.{cluster_id}."
        try:
            found = await self._all_pages(
                "listing this cluster's tunnels",
                lambda: self._tunnels.list(
                    account_id=self._settings.account_id, include_prefix=prefix,
                    is_deleted=False, per_page=PER_PAGE,
                ),
            )
        except DDError as exc:
            raise IncompleteListing("cloudflare-tunnels", str(exc)) from exc
        return [
            _tunnel(t) for t in found
            if _is_live(t) and (naming.owner_of(t.name) or ("",))[0] == cluster_id
        ]

    # -- DNS ----------------------------------------------------------------------------

    async def _records_named(self, hostname: str, *, cname_only: bool) -> list[Any]:
        zone = self._settings.zone_id
        filters: dict[str, Any] = {"type": "CNAME"} if cname_only else {}
        found = await self._all_pages(
            f"looking up DNS records for {hostname}",
            lambda: self._cf.dns.records.list(
                zone_id=zone, name={"exact": hostname}, per_page=PER_PAGE, **filters
            ),
        )
        return [r for r in found if str(getattr(r, "name", "")).lower() == hostname.lower()]

    async def find_dns(self, hostname: str) -> DnsRecord | None:
        found = await self._records_named(hostname, cname_only=True)
        return _record(found[0]) if found else None

    async def create_dns(self, stamp: Stamp, hostname: str, tunnel: Tunnel) -> DnsRecord:
        """Create the proxied CNAME, or adopt (and re-point) one that carries our stamp."""
        target = tunnel_cname_target(tunnel.id)
        comment = naming.dns_comment(stamp)

        async def create() -> Any:
            try:
                return await self._cf.dns.records.create(
                    zone_id=self._settings.zone_id, type="CNAME", name=hostname,
                    content=target, proxied=True, ttl=1, comment=comment,
                )
            except cloudflare.APIStatusError as exc:
                if RECORD_EXISTS_CODES & _error_codes(exc):
                    return None
                raise

        created = await self._call(f"creating the CNAME {hostname}", create)
        if created is not None:
            log.info("created CNAME %s -> %s", hostname, target)
            return _record(created)
        return await self._adopt_dns(stamp, hostname, target)

    async def _adopt_dns(self, stamp: Stamp, hostname: str, target: str) -> DnsRecord:
        existing = await self._records_named(hostname, cname_only=False)
        theirs = [r for r in existing if not naming.is_ours(getattr(r, "comment", None), stamp)]
        ours = [r for r in existing if r not in theirs and getattr(r, "type", "") == "CNAME"]
        if theirs or not ours:
            owner = next(
                (naming.owner_of(getattr(r, "comment", None)) for r in theirs), None
            )
            owner_text = f"ddp.{owner[0]}.{owner[1]}" if owner else None
            raise NotOurs(
                f"DNS name {hostname} already has a record that {stamp.namespace}/{stamp.name} "
                f"does not own (owner: {owner_text or 'not dd-preview'}); it is left untouched. "
                "Remove that record or set spec.hostname to another name.",
                owner=owner_text,
            )
        record = _record(ours[0])
        if record.content == target:
            log.info("adopted our existing CNAME %s", hostname)
            return record
        edited = await self._call(
            f"re-pointing our CNAME {hostname}",
            lambda: self._cf.dns.records.edit(
                record.id, zone_id=self._settings.zone_id, type="CNAME", name=hostname,
                content=target, proxied=True, ttl=1, comment=naming.dns_comment(stamp),
            ),
        )
        log.info("adopted our existing CNAME %s and re-pointed it to %s", hostname, target)
        return _record(edited)

    async def delete_dns(self, record: DnsRecord) -> None:
        try:
            await self._call(
                f"deleting the CNAME {record.name}",
                lambda: self._cf.dns.records.delete(record.id, zone_id=self._settings.zone_id),
            )
        except NotFound:
            return
        log.info("deleted CNAME %s (%s)", record.name, record.id)

    async def list_dns(self, cluster_id: str) -> list[DnsRecord]:
        marker = f"ddp.{cluster_id}."
        try:
            found = await self._all_pages(
                "listing this cluster's DNS records",
                lambda: self._cf.dns.records.list(
                    zone_id=self._settings.zone_id, comment={"contains": marker},
                    per_page=PER_PAGE,
                ),
            )
        except DDError as exc:
            raise IncompleteListing("cloudflare-dns", str(exc)) from exc
        return [
            _record(r) for r in found
            if (naming.owner_of(getattr(r, "comment", None)) or ("",))[0] == cluster_id
        ]

    # -- the public side ---------------------------------------------------------------

    def public_url(self, hostname: str) -> str:
        return f"https://{hostname}"

    async def probe(self, hostname: str, path: str = "/health") -> httpx.Response:
        """GET ``https://{hostname}{path}`` as a user would.

        Not a Cloudflare API call, so it draws nothing from the budget. Transport errors
        stay ``httpx.HTTPError``: ``reconcile.observe`` reads them as "not serving yet".
        """
        if self._probe_client is None:
            self._probe_client = new_client(ca_file=self._settings.probe_ca_file)
        address = self._settings.probe_address
        if address:
            return await self._probe_client.get(
                f"https://{address}{path}",
                headers={"Host": hostname},
                extensions={"sni_hostname": hostname},
            )
        return await self._probe_client.get(f"https://{hostname}{path}")

    async def close(self) -> None:
        await self._cf.close()
        if self._probe_client is not None:
            await self._probe_client.aclose()
            self._probe_client = None
