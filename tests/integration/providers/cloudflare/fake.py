"""A stateful fake of the Cloudflare v4 API (tunnels + DNS) and of Cloudflare's edge.

The real ``cloudflare`` SDK talks to it over HTTP on 127.0.0.1: the v4 envelope
(``success, errors, messages, result, result_info``), the real paths and the query shapes
the SDK sends (``research/testing.md`` §4), and the real error codes:

- tunnels: create (409/1013 for a live duplicate name), list (``name``, ``is_deleted``,
  ``include_prefix``, ``page``/``per_page``; ``result: []`` past the end), get, delete
  (soft: sets ``deleted_at``; refused with 400/1022 "Cannot delete tunnel because it has
  active connections" while a connection record exists), connections list and cleanup,
  configurations PUT/GET, token GET (a plain string);
- DNS records: create (400/81053 when a CNAME meets another record of that name, 81058 for
  an identical one), list (``name``/``name.exact``, ``type``, ``comment.contains``...,
  pagination), get, PATCH, delete (404/81044 when absent).

Connectors (stand-ins for cloudflared) join a tunnel with its token: in process
(``connect``/``disconnect``), over HTTP (``POST /_fake/connectors {token, origin}``,
``DELETE /_fake/connectors/{id}``), or from the fake GCE through ``connector_hook``. A
connector that stops leaves a stale connection record (as a killed VM does) until someone
calls the connections cleanup; a connector that is still up reconnects at once, so a
tunnel with a running VM cannot be deleted. The edge (``fake_edge.py``) routes requests by
Host through the proxied CNAME to a live connector's origin.

Control endpoints (not Cloudflare's): ``GET/DELETE /_fake/calls`` (the call log),
``GET/POST/DELETE /_fake/faults`` (``fake_faults.py``), ``GET /_fake/state``,
``POST /_fake/connectors``, ``DELETE /_fake/connectors/{id}``, and the crash switch
``GET/POST/DELETE /_fake/kill`` (``tests/support/kill_switch.py``: SIGKILL a pid right after
the Nth API call, counted across every fake that shares the switch).

The server runs on its own thread and event loop, so sync tests, async tests and other
processes (the operator under test) can all use it; state sits behind one lock.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import math
import re
import secrets
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from dd_operator.settings import CloudflareSettings
from tests.support.kill_switch import KillSwitch

from .fake_edge import EdgeCertificate, EdgeRoute, make_edge_app
from .fake_faults import Fault, FaultSwitches, RateBlock

__all__ = ["FakeCloudflare", "cloudflare_connector_hook"]

API_PREFIX = "/client/v4"
CNAME_SUFFIX = ".cfargotunnel.com"


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _envelope(result: Any, *, result_info: dict[str, int] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"success": True, "errors": [], "messages": [], "result": result}
    if result_info is not None:
        body["result_info"] = result_info
    return body


def _error(
    status: int, code: int, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    body = {"success": False, "errors": [{"code": code, "message": message}], "messages": [],
            "result": None}
    return web.json_response(body, status=status, headers=headers)


class ApiError(Exception):
    """Raised inside a handler; becomes a v4 error envelope."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class FakeTunnel:
    id: str
    name: str
    secret: str
    config_src: str
    created_at: str = field(default_factory=_now_iso)
    deleted_at: str | None = None
    config: dict[str, Any] | None = None
    config_version: int = 0


@dataclass
class FakeConnector:
    id: str
    tunnel_id: str
    origin: str
    up: bool = True
    has_connection: bool = True
    opened_at: str = field(default_factory=_now_iso)
    seq: int = 0


@dataclass
class FakeRecord:
    id: str
    type: str
    name: str
    content: str
    proxied: bool
    ttl: int
    comment: str | None
    created_on: str = field(default_factory=_now_iso)
    modified_on: str = field(default_factory=_now_iso)


class FakeCloudflare:
    """One Cloudflare account with one zone, its API, and its edge. Use as a context manager."""

    def __init__(
        self, *, account_id: str = "fa4ec0ffee0000000000000000000001",
        zone_id: str = "f2e0ec0ffee000000000000000000002", zone_name: str = "preview.test",
        api_token: str = "fake-cloudflare-api-token",  # noqa: S107 - a fake's credential
        max_per_page: int = 1000,
        clock: Callable[[], float] = time.monotonic,
        kill_switch: KillSwitch | None = None,
    ) -> None:
        self.kill_switch = kill_switch or KillSwitch()
        self.account_id, self.zone_id, self.zone_name = account_id, zone_id, zone_name
        self.api_token = api_token
        self.max_per_page = max_per_page
        self.clock = clock
        self.faults = FaultSwitches()
        self.calls: list[dict[str, Any]] = []
        self.tunnels: dict[str, FakeTunnel] = {}
        self.records: dict[str, FakeRecord] = {}
        self.connectors: dict[str, FakeConnector] = {}
        self._seq = 0
        self._lock = threading.RLock()
        self._tmp = tempfile.TemporaryDirectory(prefix="fake-cloudflare-")
        self.certificate = EdgeCertificate(zone_name, Path(self._tmp.name))
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self.api_port = self.edge_port = self.edge_http_port = 0

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> FakeCloudflare:
        self._thread = threading.Thread(target=self._run, name="fake-cloudflare", daemon=True)
        self._thread.start()
        if not self._ready.wait(15):
            raise RuntimeError("fake Cloudflare did not start within 15 s")
        if self._startup_error is not None:
            raise RuntimeError("fake Cloudflare failed to start") from self._startup_error
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(15)
            self._thread = None
        self._tmp.cleanup()

    def __enter__(self) -> FakeCloudflare:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported to start() if it happens before ready
            self._startup_error = exc
            self._ready.set()
        finally:
            loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        api = web.Application(middlewares=[self._api_middleware])
        self._add_api_routes(api)
        edge = make_edge_app(self.route)
        runners = [web.AppRunner(api), web.AppRunner(edge)]
        for r in runners:
            await r.setup()
        api_sock, tls_sock, http_sock = _bound_socket(), _bound_socket(), _bound_socket()
        sites = [
            web.SockSite(runners[0], api_sock),
            web.SockSite(runners[1], tls_sock, ssl_context=self.certificate.server_context()),
            web.SockSite(runners[1], http_sock),
        ]
        for site in sites:
            await site.start()
        self.api_port = api_sock.getsockname()[1]
        self.edge_port = tls_sock.getsockname()[1]
        self.edge_http_port = http_sock.getsockname()[1]
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            for r in runners:
                await r.cleanup()

    # -- addresses and settings ---------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def api_url(self) -> str:
        """What ``DD_CF_API_BASE`` / ``CloudflareSettings.base_url`` is set to."""
        return f"{self.base_url}{API_PREFIX}"

    @property
    def edge_address(self) -> str:
        """``host:port`` of the HTTPS edge (``DD_EDGE_PROBE_ADDRESS``, curl ``--connect-to``)."""
        return f"127.0.0.1:{self.edge_port}"

    @property
    def edge_http_address(self) -> str:
        return f"127.0.0.1:{self.edge_http_port}"

    @property
    def ca_file(self) -> Path:
        """The CA that signed the edge's certificate (``DD_EDGE_PROBE_CA``, curl ``--cacert``)."""
        return self.certificate.ca_file

    def settings(self, **overrides: Any) -> CloudflareSettings:
        values: dict[str, Any] = {
            "account_id": self.account_id, "zone_id": self.zone_id,
            "api_token": self.api_token, "base_url": self.api_url,
            "probe_address": self.edge_address, "probe_ca_file": str(self.ca_file),
        }
        values.update(overrides)
        return CloudflareSettings(**values)

    def env(self) -> dict[str, str]:
        """Operator environment variables that point ``DD_EDGE=cloudflare`` at this fake."""
        return {
            "DD_EDGE": "cloudflare", "DD_DOMAIN": self.zone_name,
            "DD_CF_ACCOUNT_ID": self.account_id, "DD_CF_ZONE_ID": self.zone_id,
            "DD_CF_API_TOKEN": self.api_token, "DD_CF_API_BASE": self.api_url,
            "DD_EDGE_PROBE_ADDRESS": self.edge_address, "DD_EDGE_PROBE_CA": str(self.ca_file),
        }

    # -- in-process controls ------------------------------------------------------------

    def add_fault(self, kind: str, **options: Any) -> Fault:
        with self._lock:
            return self.faults.add(Fault.from_json({"kind": kind, **options}))

    def set_rate_block(self, threshold: int, window: float, block_seconds: float = 300.0) -> None:
        with self._lock:
            self.faults.rate_block = RateBlock(threshold, window, block_seconds)

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    def call_log(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(c) for c in self.calls]

    def clear_calls(self) -> None:
        with self._lock:
            self.calls.clear()

    def seed_tunnel(self, name: str, *, deleted: bool = False) -> FakeTunnel:
        """Put a tunnel in the account directly (someone else's, or a soft-deleted one)."""
        with self._lock:
            t = FakeTunnel(id=str(uuid.uuid4()), name=name, secret=_secret(),
                           config_src="cloudflare")
            if deleted:
                t.deleted_at = _now_iso()
            self.tunnels[t.id] = t
            return t

    def seed_record(self, name: str, content: str, *, type: str = "CNAME",
                    comment: str | None = None, proxied: bool = True) -> FakeRecord:
        with self._lock:
            r = FakeRecord(id=uuid.uuid4().hex, type=type, name=name, content=content,
                           proxied=proxied, ttl=1, comment=comment)
            self.records[r.id] = r
            return r

    def live_tunnels(self) -> list[FakeTunnel]:
        with self._lock:
            return [t for t in self.tunnels.values() if t.deleted_at is None]

    def all_records(self) -> list[FakeRecord]:
        with self._lock:
            return list(self.records.values())

    def connect(self, token: str, origin: str) -> str:
        """A connector (cloudflared) joins the tunnel its token was issued for."""
        with self._lock:
            tunnel = self._tunnel_for_token(token)
            for c in self.connectors.values():
                if c.tunnel_id == tunnel.id and c.origin == origin and c.up:
                    return c.id
            self._seq += 1
            c = FakeConnector(id=str(uuid.uuid4()), tunnel_id=tunnel.id, origin=origin,
                              seq=self._seq)
            self.connectors[c.id] = c
            return c.id

    def disconnect(self, connector_id: str, *, graceful: bool = False) -> None:
        """The connector stops; unless it unregistered gracefully its connection lingers."""
        with self._lock:
            c = self.connectors.get(connector_id)
            if c is None:
                return
            c.up = False
            if graceful:
                c.has_connection = False

    def connector_hook(self, token: str, origin_url: str, up: bool) -> None:
        """Adapter for the fake GCE: its VM's cloudflared starts (up) or stops (not up)."""
        with self._lock:
            if up:
                # like cloudflared with a revoked token: it keeps failing, quietly
                with contextlib.suppress(ApiError):
                    self.connect(token, origin_url)
                return
            try:
                tunnel = self._tunnel_for_token(token)
            except ApiError:
                return
            for c in list(self.connectors.values()):
                if c.tunnel_id == tunnel.id and c.origin == origin_url and c.up:
                    self.disconnect(c.id)

    def _tunnel_for_token(self, token: str) -> FakeTunnel:
        try:
            data = json.loads(base64.b64decode(token))
            tunnel = self.tunnels[data["t"]]
        except (ValueError, KeyError, TypeError):
            raise ApiError(400, 1000, "Invalid tunnel token") from None
        if data.get("s") != tunnel.secret or data.get("a") != self.account_id:
            raise ApiError(400, 1000, "Invalid tunnel token")
        if tunnel.deleted_at is not None:
            raise ApiError(404, 1003, "Tunnel not found")
        return tunnel

    # -- the edge's lookup --------------------------------------------------------------

    def route(self, hostname: str) -> EdgeRoute:
        with self._lock:
            record = next(
                (r for r in self.records.values() if r.name == hostname and r.proxied), None
            )
            if record is None or record.type != "CNAME":
                return EdgeRoute(status=530, error_code=1016, reason="Origin DNS error")
            tunnel = self.tunnels.get(record.content.removesuffix(CNAME_SUFFIX))
            if not record.content.endswith(CNAME_SUFFIX) or tunnel is None or tunnel.deleted_at:
                return EdgeRoute(status=530, error_code=1033, reason="Cloudflare Tunnel error")
            rules = (tunnel.config or {}).get("ingress") or []
            rule = next((r for r in rules if r.get("hostname") in (None, hostname)), None)
            if rule is None:
                return EdgeRoute(status=503, reason="no ingress rule matches this hostname")
            service = str(rule.get("service", ""))
            if service.startswith("http_status:"):
                return EdgeRoute(status=int(service.split(":", 1)[1]))
            live = [c for c in self.connectors.values() if c.tunnel_id == tunnel.id and c.up]
            if not live:
                return EdgeRoute(status=530, error_code=1033, reason="Cloudflare Tunnel error")
            newest = max(live, key=lambda c: c.seq)
            return EdgeRoute(origin=newest.origin)

    # -- API plumbing -------------------------------------------------------------------

    @web.middleware
    async def _api_middleware(
        self, request: web.Request, handler: Callable[[web.Request], Any]
    ) -> web.StreamResponse:
        if not request.path.startswith(API_PREFIX):
            response: web.StreamResponse = await handler(request)
            return response
        path = request.path[len(API_PREFIX):]
        page = _int_or_none(request.query.get("page"))
        with self._lock:
            entry = {"method": request.method, "path": path, "query": dict(request.query),
                     "status": 0, "at": self.clock()}
            self.calls.append(entry)
            early = self._early_response(request, path, page)
        if early is None:
            try:
                early = await handler(request)
            except ApiError as exc:
                early = _error(exc.status, exc.code, exc.message)
        entry["status"] = early.status
        self.kill_switch.served(f"cloudflare {request.method} {path}")
        return early

    def _early_response(
        self, request: web.Request, path: str, page: int | None
    ) -> web.Response | None:
        """Rate block, fault switches and auth, in the order Cloudflare applies them."""
        block = self.faults.rate_block
        if block is not None and (left := block.check(self.clock())) is not None:
            return _error(429, 971, "Please wait and consider throttling your request speed",
                          {"Retry-After": str(math.ceil(left))})
        listing = _is_listing(request, path)
        fault = self.faults.take(
            ("rate_limit", "server_error", "html_error", "page_failure"),
            request.method, path, (page or 1) if listing else None,
        )
        if fault is not None:
            if fault.kind == "rate_limit":
                return _error(429, 971, "Please wait and consider throttling your request speed",
                              {"Retry-After": str(fault.retry_after)})
            if fault.kind == "html_error":
                return web.Response(status=fault.status, content_type="text/html",
                                    text=_HTML_ERROR.format(status=fault.status))
            return _error(fault.status, 10001, "Internal server error")
        if request.headers.get("Authorization") != f"Bearer {self.api_token}":
            return _error(403, 10000, "Authentication error")
        return None

    def _check_account(self, request: web.Request) -> None:
        if request.match_info["account"] != self.account_id:
            raise ApiError(404, 7003, "Could not route to the account, perhaps your object "
                           "identifier is invalid?")

    def _check_zone(self, request: web.Request) -> None:
        if request.match_info["zone"] != self.zone_id:
            raise ApiError(404, 7003, "Could not route to the zone, perhaps your object "
                           "identifier is invalid?")

    def _paginate(
        self, request: web.Request, items: list[Any], default_per_page: int
    ) -> web.Response:
        page = max(1, _int_or_none(request.query.get("page")) or 1)
        per_page = min(self.max_per_page,
                       max(1, _int_or_none(request.query.get("per_page")) or default_per_page))
        total = len(items)
        chunk = items[(page - 1) * per_page: page * per_page]
        info = {"page": page, "per_page": per_page, "count": len(chunk),
                "total_count": total, "total_pages": max(1, math.ceil(total / per_page))}
        return web.json_response(_envelope(chunk, result_info=info))

    def _add_api_routes(self, app: web.Application) -> None:
        acc = API_PREFIX + "/accounts/{account}/cfd_tunnel"
        zone = API_PREFIX + "/zones/{zone}/dns_records"
        r = app.router
        r.add_post(acc, self._tunnel_create)
        r.add_get(acc, self._tunnel_list)
        r.add_get(acc + "/{tunnel}", self._tunnel_get)
        r.add_delete(acc + "/{tunnel}", self._tunnel_delete)
        r.add_get(acc + "/{tunnel}/connections", self._connections_list)
        r.add_delete(acc + "/{tunnel}/connections", self._connections_cleanup)
        r.add_get(acc + "/{tunnel}/configurations", self._config_get)
        r.add_put(acc + "/{tunnel}/configurations", self._config_put)
        r.add_get(acc + "/{tunnel}/token", self._token_get)
        r.add_post(zone, self._record_create)
        r.add_get(zone, self._record_list)
        r.add_get(zone + "/{record}", self._record_get)
        r.add_patch(zone + "/{record}", self._record_patch)
        r.add_delete(zone + "/{record}", self._record_delete)
        r.add_get("/_fake/calls", self._ctl_calls)
        r.add_get("/_fake/kill", self._ctl_kill)
        r.add_post("/_fake/kill", self._ctl_kill_arm)
        r.add_delete("/_fake/kill", self._ctl_kill_disarm)
        r.add_delete("/_fake/calls", self._ctl_calls_clear)
        r.add_get("/_fake/faults", self._ctl_faults)
        r.add_post("/_fake/faults", self._ctl_fault_add)
        r.add_delete("/_fake/faults", self._ctl_faults_clear)
        r.add_get("/_fake/state", self._ctl_state)
        r.add_post("/_fake/connectors", self._ctl_connect)
        r.add_delete("/_fake/connectors/{connector}", self._ctl_disconnect)

    # -- tunnels ------------------------------------------------------------------------

    def _tunnel_json(self, t: FakeTunnel) -> dict[str, Any]:
        conns = [c for c in self.connectors.values() if c.tunnel_id == t.id and c.has_connection]
        live = [c for c in conns if c.up]
        ever = any(c.tunnel_id == t.id for c in self.connectors.values())
        return {
            "id": t.id, "account_tag": self.account_id, "name": t.name,
            "created_at": t.created_at, "deleted_at": t.deleted_at,
            "config_src": t.config_src, "remote_config": t.config_src == "cloudflare",
            "tun_type": "cfd_tunnel", "metadata": {},
            "status": "healthy" if live else ("down" if ever else "inactive"),
            "conns_active_at": max((c.opened_at for c in live), default=None),
            "conns_inactive_at": None,
            "connections": [
                {"id": c.id, "client_id": c.id, "client_version": "2025.1.0",
                 "colo_name": "fak1", "is_pending_reconnect": not c.up,
                 "opened_at": c.opened_at, "origin_ip": "127.0.0.1", "uuid": c.id}
                for c in conns
            ],
        }

    def _get_tunnel(self, request: web.Request) -> FakeTunnel:
        self._check_account(request)
        t = self.tunnels.get(request.match_info["tunnel"])
        if t is None:
            raise ApiError(404, 1003, "Tunnel not found")
        return t

    async def _tunnel_create(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        with self._lock:
            self._check_account(request)
            name = body.get("name")
            if not isinstance(name, str) or not name:
                raise ApiError(400, 1001, "Tunnel name is required")
            config_src = body.get("config_src", "local")
            if config_src not in ("local", "cloudflare"):
                raise ApiError(400, 1001, "config_src must be 'local' or 'cloudflare'")
            if any(t.name == name and t.deleted_at is None for t in self.tunnels.values()):
                raise ApiError(409, 1013, "You already have a tunnel with this name")
            t = FakeTunnel(id=str(uuid.uuid4()), name=name, config_src=config_src,
                           secret=str(body.get("tunnel_secret") or _secret()))
            self.tunnels[t.id] = t
            return web.json_response(_envelope(self._tunnel_json(t)))

    async def _tunnel_list(self, request: web.Request) -> web.Response:
        q = request.query
        with self._lock:
            self._check_account(request)
            items = list(self.tunnels.values())
            if not self.faults.active("soft_deleted_listing"):
                wanted = q.get("is_deleted", "false").lower() == "true"
                items = [t for t in items if (t.deleted_at is not None) == wanted]
            if "name" in q:
                items = [t for t in items if t.name == q["name"]]
            if "include_prefix" in q:
                items = [t for t in items if t.name.startswith(q["include_prefix"])]
            if "exclude_prefix" in q:
                items = [t for t in items if not t.name.startswith(q["exclude_prefix"])]
            if "uuid" in q:
                items = [t for t in items if t.id == q["uuid"]]
            return self._paginate(request, [self._tunnel_json(t) for t in items], 20)

    async def _tunnel_get(self, request: web.Request) -> web.Response:
        with self._lock:
            return web.json_response(_envelope(self._tunnel_json(self._get_tunnel(request))))

    async def _tunnel_delete(self, request: web.Request) -> web.Response:
        with self._lock:
            t = self._get_tunnel(request)
            if t.deleted_at is not None:
                raise ApiError(404, 1003, "Tunnel not found")
            busy = any(c.tunnel_id == t.id and c.has_connection for c in self.connectors.values())
            lingering = self.faults.take(("lingering_connections",), "DELETE",
                                         request.path[len(API_PREFIX):], None)
            if busy or lingering is not None:
                raise ApiError(400, 1022, "Cannot delete tunnel because it has active connections")
            t.deleted_at = _now_iso()
            for c in self.connectors.values():
                if c.tunnel_id == t.id:
                    c.up = c.has_connection = False
            return web.json_response(_envelope(self._tunnel_json(t)))

    async def _connections_list(self, request: web.Request) -> web.Response:
        with self._lock:
            t = self._get_tunnel(request)
            clients = [
                {"id": c.id, "arch": "linux_amd64", "version": "2025.1.0", "run_at": c.opened_at,
                 "conns": [{"id": c.id, "colo_name": "fak1", "opened_at": c.opened_at,
                            "origin_ip": "127.0.0.1", "is_pending_reconnect": not c.up}]}
                for c in self.connectors.values() if c.tunnel_id == t.id and c.has_connection
            ]
            return web.json_response(_envelope(clients))

    async def _connections_cleanup(self, request: web.Request) -> web.Response:
        """Drops every connection record; a connector that is still up reconnects at once."""
        with self._lock:
            t = self._get_tunnel(request)
            if t.deleted_at is not None:
                raise ApiError(404, 1003, "Tunnel not found")
            only = request.query.get("client_id")
            for c in self.connectors.values():
                if c.tunnel_id == t.id and (only is None or c.id == only) and not c.up:
                    c.has_connection = False
            return web.json_response(_envelope({}))

    async def _config_get(self, request: web.Request) -> web.Response:
        with self._lock:
            t = self._get_tunnel(request)
            return web.json_response(_envelope(self._config_json(t)))

    async def _config_put(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        with self._lock:
            t = self._get_tunnel(request)
            if t.deleted_at is not None:
                raise ApiError(404, 1003, "Tunnel not found")
            config = body.get("config")
            ingress = config.get("ingress") if isinstance(config, dict) else None
            if not isinstance(ingress, list) or not ingress:
                raise ApiError(400, 1055, "Ingress rules are required")
            if not all(isinstance(rule, dict) for rule in ingress):
                raise ApiError(400, 1055, "Each ingress rule must be an object")
            if ingress[-1].get("hostname"):
                raise ApiError(400, 1056, "The last ingress rule must match all URLs (no hostname)")
            if not all(rule.get("hostname") for rule in ingress[:-1]):
                raise ApiError(400, 1056, "Only the last ingress rule may match all URLs")
            if not all(_SERVICE.fullmatch(str(rule.get("service", ""))) for rule in ingress):
                raise ApiError(400, 1057, "An ingress rule has an invalid service")
            t.config, t.config_version = config, t.config_version + 1
            return web.json_response(_envelope(self._config_json(t)))

    def _config_json(self, t: FakeTunnel) -> dict[str, Any]:
        return {"tunnel_id": t.id, "account_id": self.account_id, "version": t.config_version,
                "config": t.config, "source": "cloudflare", "created_at": t.created_at}

    async def _token_get(self, request: web.Request) -> web.Response:
        with self._lock:
            t = self._get_tunnel(request)
            if t.deleted_at is not None:
                raise ApiError(404, 1003, "Tunnel not found")
            raw = json.dumps({"a": self.account_id, "t": t.id, "s": t.secret}).encode()
            return web.json_response(_envelope(base64.b64encode(raw).decode()))

    # -- DNS records --------------------------------------------------------------------

    def _record_json(self, r: FakeRecord) -> dict[str, Any]:
        return {
            "id": r.id, "zone_id": self.zone_id, "zone_name": self.zone_name, "name": r.name,
            "type": r.type, "content": r.content, "proxiable": True, "proxied": r.proxied,
            "ttl": r.ttl, "comment": r.comment, "tags": [], "settings": {}, "meta": {},
            "created_on": r.created_on, "modified_on": r.modified_on,
        }

    def _fqdn(self, name: str) -> str:
        name = name.rstrip(".").lower()
        if name in ("@", self.zone_name):
            return self.zone_name
        return name if name.endswith("." + self.zone_name) else f"{name}.{self.zone_name}"

    def _validate_record(self, body: dict[str, Any], *, exclude: str | None = None) -> FakeRecord:
        rtype, name, content = body.get("type"), body.get("name"), body.get("content")
        if rtype not in ("A", "AAAA", "CNAME", "TXT"):
            raise ApiError(400, 9004, "DNS record type is invalid or not supported by this fake")
        if not isinstance(name, str) or not name:
            raise ApiError(400, 9007, "DNS record name is required")
        if not isinstance(content, str) or not content:
            raise ApiError(400, 9005, f"Content for {rtype} record is invalid")
        comment = body.get("comment")
        if comment is not None and len(str(comment)) > 100:
            raise ApiError(400, 9100, "DNS record comment must be 100 characters or fewer")
        ttl = int(body.get("ttl", 1))
        if ttl != 1 and not 60 <= ttl <= 86400:
            raise ApiError(400, 9021, "Invalid TTL. Must be between 60 and 86400 or 1 for auto")
        fqdn = self._fqdn(name)
        for other in self.records.values():
            if other.id == exclude or other.name != fqdn:
                continue
            if other.type == rtype and other.content == content:
                raise ApiError(400, 81058, "An identical record already exists.")
            if "CNAME" in (other.type, rtype):
                raise ApiError(400, 81053,
                               "An A, AAAA, or CNAME record with that host already exists.")
        return FakeRecord(id=uuid.uuid4().hex, type=rtype, name=fqdn, content=content,
                          proxied=bool(body.get("proxied", False)), ttl=ttl,
                          comment=None if comment is None else str(comment))

    def _get_record(self, request: web.Request) -> FakeRecord:
        self._check_zone(request)
        r = self.records.get(request.match_info["record"])
        if r is None:
            raise ApiError(404, 81044, "Record does not exist.")
        return r

    async def _record_create(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        with self._lock:
            self._check_zone(request)
            r = self._validate_record(body)
            self.records[r.id] = r
            return web.json_response(_envelope(self._record_json(r)))

    async def _record_list(self, request: web.Request) -> web.Response:
        q = request.query
        with self._lock:
            self._check_zone(request)
            items: Iterable[FakeRecord] = self.records.values()
            exact = q.get("name.exact", q.get("name"))
            if exact is not None:
                items = [r for r in items if r.name == exact.lower()]
            if "type" in q:
                items = [r for r in items if r.type == q["type"]]
            for op, test in _TEXT_FILTERS.items():
                if f"comment.{op}" in q:
                    items = [r for r in items if test(r.comment or "", q[f"comment.{op}"])]
                if f"name.{op}" in q and op != "exact":
                    items = [r for r in items if test(r.name, q[f"name.{op}"].lower())]
            return self._paginate(request, [self._record_json(r) for r in items], 100)

    async def _record_get(self, request: web.Request) -> web.Response:
        with self._lock:
            return web.json_response(_envelope(self._record_json(self._get_record(request))))

    async def _record_patch(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        with self._lock:
            current = self._get_record(request)
            merged = {"type": current.type, "name": current.name, "content": current.content,
                      "proxied": current.proxied, "ttl": current.ttl, "comment": current.comment}
            merged.update(body)
            updated = self._validate_record(merged, exclude=current.id)
            updated.id, updated.created_on = current.id, current.created_on
            self.records[current.id] = updated
            return web.json_response(_envelope(self._record_json(updated)))

    async def _record_delete(self, request: web.Request) -> web.Response:
        with self._lock:
            r = self._get_record(request)
            del self.records[r.id]
            return web.json_response(_envelope({"id": r.id}))

    # -- control endpoints --------------------------------------------------------------

    async def _ctl_calls(self, request: web.Request) -> web.Response:
        return web.json_response(self.call_log())

    async def _ctl_calls_clear(self, request: web.Request) -> web.Response:
        self.clear_calls()
        return web.json_response({"ok": True})

    async def _ctl_kill(self, request: web.Request) -> web.Response:
        return web.json_response(self.kill_switch.to_json())

    async def _ctl_kill_arm(self, request: web.Request) -> web.Response:
        try:
            self.kill_switch.apply_json(await _json_body(request))
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response(self.kill_switch.to_json(), status=201)

    async def _ctl_kill_disarm(self, request: web.Request) -> web.Response:
        self.kill_switch.disarm()
        return web.json_response(self.kill_switch.to_json())

    async def _ctl_faults(self, request: web.Request) -> web.Response:
        with self._lock:
            return web.json_response(self.faults.to_json())

    async def _ctl_fault_add(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        try:
            if body.get("kind") == "rate_block":
                self.set_rate_block(int(body["threshold"]), float(body["window"]),
                                    float(body.get("block_seconds", 300)))
                return web.json_response({"ok": True})
            fault = self.add_fault(**body)
        except (TypeError, ValueError, KeyError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response(fault.to_json())

    async def _ctl_faults_clear(self, request: web.Request) -> web.Response:
        self.clear_faults()
        return web.json_response({"ok": True})

    async def _ctl_state(self, request: web.Request) -> web.Response:
        with self._lock:
            return web.json_response({
                "tunnels": [self._tunnel_json(t) for t in self.tunnels.values()],
                "records": [self._record_json(r) for r in self.records.values()],
                "connectors": [
                    {"id": c.id, "tunnel_id": c.tunnel_id, "origin": c.origin, "up": c.up,
                     "has_connection": c.has_connection} for c in self.connectors.values()
                ],
            })

    async def _ctl_connect(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        try:
            connector_id = self.connect(str(body.get("token", "")), str(body.get("origin", "")))
        except ApiError as exc:
            return _error(exc.status, exc.code, exc.message)
        return web.json_response({"id": connector_id})

    async def _ctl_disconnect(self, request: web.Request) -> web.Response:
        graceful = request.query.get("graceful", "false").lower() == "true"
        self.disconnect(request.match_info["connector"], graceful=graceful)
        return web.json_response({"ok": True})


def cloudflare_connector_hook(fake: FakeCloudflare) -> Callable[[str, str, bool], None]:
    """What the fake GCE's ``connector_hook(token, origin_url, up)`` constructor argument takes."""
    return fake.connector_hook


_TEXT_FILTERS: dict[str, Callable[[str, str], bool]] = {
    "exact": lambda value, arg: value == arg,
    "contains": lambda value, arg: arg.lower() in value.lower(),
    "startswith": lambda value, arg: value.lower().startswith(arg.lower()),
    "endswith": lambda value, arg: value.lower().endswith(arg.lower()),
}

_SERVICE = re.compile(r"https?://[A-Za-z0-9.-]+(:[1-9][0-9]{0,4})?/?|http_status:[1-5][0-9]{2}")

_HTML_ERROR = (
    "<!DOCTYPE html><html><head><title>{status} Bad Gateway | Cloudflare</title></head>"
    "<body><h1>Error {status}</h1><p>Bad gateway</p><p>cloudflare</p></body></html>"
)


def _secret() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _is_listing(request: web.Request, path: str) -> bool:
    return request.method == "GET" and path.rstrip("/").endswith(("/cfd_tunnel", "/dns_records"))


def _bound_socket() -> socket.socket:
    """A listening socket on a free loopback port (we learn the port before serving)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


async def _json_body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        data = await request.json()
    except ValueError:
        raise ApiError(400, 6007, "Malformed JSON in request body") from None
    if not isinstance(data, dict):
        raise ApiError(400, 6007, "Malformed JSON in request body")
    return data
