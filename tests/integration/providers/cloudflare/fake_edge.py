"""The fake Cloudflare edge: serves any hostname and proxies it through its tunnel's connector.

How a request travels (as on Cloudflare): Host -> the zone's proxied CNAME ->
``{tunnel_id}.cfargotunnel.com`` -> the tunnel's ingress rule for that hostname -> a
connected connector -> that connector's origin URL (the VM's control plane). The
lookup lives in ``FakeCloudflare.route``; this module does TLS and the proxying.

Failures look like Cloudflare's: no proxied record -> 530 "error code: 1016"; a tunnel
that is gone or has no connector -> 530 "error code: 1033"; an origin that does not
answer -> 502; an ``http_status:N`` ingress rule -> N.

TLS: ``EdgeCertificate`` makes a throwaway CA (with ``cryptography``) and a certificate for
``{zone}``, ``*.{zone}`` and ``localhost`` signed by it; ``ca_file`` is what clients trust
(``curl --cacert``, ``DD_EDGE_PROBE_CA``). The edge listens twice: HTTPS and plain HTTP.
Websocket upgrades are proxied too, so ``wss://{hostname}/register`` works end to end.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
    "trailers", "transfer-encoding", "upgrade", "host", "content-length",
})


@dataclass(frozen=True)
class EdgeRoute:
    """Where the edge sends one request: an origin URL, or an error it answers itself."""

    origin: str | None = None
    status: int = 0
    error_code: int | None = None
    reason: str = ""


class EdgeCertificate:
    """A CA and a wildcard server certificate for the fake zone, written under ``directory``."""

    def __init__(self, zone_name: str, directory: Path) -> None:
        now = dt.datetime.now(dt.UTC)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dd-preview fake edge CA")])
        ca_cert = (
            x509.CertificateBuilder()
            .subject_name(ca_name).issuer_name(ca_name)
            .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, key_cert_sign=True, crl_sign=True,
                    content_commitment=False, key_encipherment=False, data_encipherment=False,
                    key_agreement=False, encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
            )
            .sign(ca_key, hashes.SHA256())
        )
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, zone_name)]))
            .issuer_name(ca_name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(
                x509.SubjectAlternativeName([
                    x509.DNSName(zone_name), x509.DNSName(f"*.{zone_name}"),
                    x509.DNSName("localhost"),
                ]),
                critical=False,
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        self.ca_file = directory / "edge-ca.pem"
        self.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
        self.cert_file = directory / "edge-cert.pem"
        self.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self.key_file = directory / "edge-key.pem"
        self.key_file.write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ))

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.cert_file, self.key_file)
        return ctx


def cloudflare_error_page(route: EdgeRoute) -> web.Response:
    code = route.error_code or route.status
    body = (
        f"<!DOCTYPE html><html><head><title>error code: {code}</title></head>"
        f"<body><h1>Error {code}</h1><p>{route.reason}</p>"
        "<p>Cloudflare (dd-preview fake edge)</p></body></html>"
    )
    return web.Response(
        status=route.status, text=body, content_type="text/html",
        headers={"cf-ray": "fake-edge", "server": "cloudflare"},
    )


SESSION = web.AppKey("session", aiohttp.ClientSession)


def make_edge_app(resolve: Callable[[str], EdgeRoute]) -> web.Application:
    """``resolve(hostname) -> EdgeRoute`` decides; this app proxies or answers the error."""
    app = web.Application()

    async def on_startup(app: web.Application) -> None:
        app[SESSION] = aiohttp.ClientSession(auto_decompress=False)

    async def on_cleanup(app: web.Application) -> None:
        await app[SESSION].close()

    async def handle(request: web.Request) -> web.StreamResponse:
        hostname = (request.host or "").rsplit(":", 1)[0].lower()
        route = resolve(hostname)
        if route.origin is None:
            if route.error_code is None:
                return web.Response(status=route.status, headers={"server": "cloudflare"})
            return cloudflare_error_page(route)
        target = route.origin.rstrip("/") + request.rel_url.raw_path_qs
        session = request.app[SESSION]
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        headers.update({
            "Host": request.host, "X-Forwarded-Proto": request.scheme,
            "CF-Connecting-IP": request.remote or "", "X-Forwarded-For": request.remote or "",
        })
        try:
            if request.headers.get("upgrade", "").lower() == "websocket":
                return await _proxy_websocket(request, session, target, headers)
            async with session.request(
                request.method, target, headers=headers, data=await request.read(),
                allow_redirects=False, timeout=aiohttp.ClientTimeout(total=30),
            ) as upstream:
                body = await upstream.read()
                out_headers = {
                    k: v for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP
                }
                return web.Response(status=upstream.status, body=body, headers=out_headers)
        except (aiohttp.ClientError, TimeoutError):
            return cloudflare_error_page(
                EdgeRoute(status=502, error_code=502, reason="Unable to reach the origin service")
            )

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


async def _proxy_websocket(
    request: web.Request, session: aiohttp.ClientSession, target: str, headers: dict[str, str]
) -> web.StreamResponse:
    ws_headers = {
        k: v for k, v in headers.items() if not k.lower().startswith("sec-websocket")
    }
    upstream = await session.ws_connect(target.replace("http", "ws", 1), headers=ws_headers)
    downstream = web.WebSocketResponse()
    await downstream.prepare(request)

    async def pump(src: Any, dst: Any) -> None:
        async for msg in src:
            if msg.type == aiohttp.WSMsgType.BINARY:
                await dst.send_bytes(msg.data)
            elif msg.type == aiohttp.WSMsgType.TEXT:
                await dst.send_str(msg.data)
            else:
                break
        await dst.close()

    try:
        await asyncio.gather(pump(upstream, downstream), pump(downstream, upstream))
    finally:
        await upstream.close()
    return downstream
