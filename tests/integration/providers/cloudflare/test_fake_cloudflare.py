"""The fake Cloudflare refuses what the real one refuses, as the real SDK and curl see it."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
from collections.abc import AsyncIterator

import aiohttp
import cloudflare
import httpx
import pytest
from aiohttp import web

from .conftest import Origin
from .fake import FakeCloudflare, cloudflare_connector_hook


@pytest.fixture
async def sdk(fake: FakeCloudflare) -> AsyncIterator[cloudflare.AsyncCloudflare]:
    client = cloudflare.AsyncCloudflare(api_token=fake.api_token, base_url=fake.api_url,
                                        max_retries=0)
    yield client
    await client.close()


def _codes(exc: cloudflare.APIError) -> list[int]:
    return [e.code for e in exc.errors]


async def test_sdk_pagination_ends_because_past_the_end_is_empty(
    fake: FakeCloudflare, sdk: cloudflare.AsyncCloudflare
) -> None:
    for i in range(5):
        fake.seed_tunnel(f"t{i}")
    names = [t.name async for t in sdk.zero_trust.tunnels.cloudflared.list(
        account_id=fake.account_id, per_page=2)]
    assert sorted(names) == [f"t{i}" for i in range(5)]
    assert [c["query"]["page"] for c in fake.call_log()[1:]] == ["2", "3", "4"]
    page4 = fake.call_log()[-1]
    assert page4["status"] == 200  # and its result was [] (else the SDK would not stop)


async def test_tunnel_names_are_unique_among_live_tunnels(
    fake: FakeCloudflare, sdk: cloudflare.AsyncCloudflare
) -> None:
    tunnels = sdk.zero_trust.tunnels.cloudflared
    first = await tunnels.create(account_id=fake.account_id, name="n", config_src="cloudflare")
    with pytest.raises(cloudflare.ConflictError) as conflict:
        await tunnels.create(account_id=fake.account_id, name="n", config_src="cloudflare")
    assert _codes(conflict.value) == [1013]
    assert first.id is not None
    deleted = await tunnels.delete(first.id, account_id=fake.account_id)
    assert deleted.deleted_at is not None  # soft delete
    assert (await tunnels.get(first.id, account_id=fake.account_id)).deleted_at is not None
    listed = [t.id async for t in tunnels.list(account_id=fake.account_id, is_deleted=True)]
    assert listed == [first.id]
    again = await tunnels.create(account_id=fake.account_id, name="n", config_src="cloudflare")
    assert again.id != first.id


async def test_dns_conflicts_use_cloudflares_codes(
    fake: FakeCloudflare, sdk: cloudflare.AsyncCloudflare
) -> None:
    name = f"a.{fake.zone_name}"
    await sdk.dns.records.create(zone_id=fake.zone_id, type="CNAME", name=name,
                                 content="x.cfargotunnel.com", proxied=True, ttl=1)
    with pytest.raises(cloudflare.BadRequestError) as identical:
        await sdk.dns.records.create(zone_id=fake.zone_id, type="CNAME", name=name,
                                     content="x.cfargotunnel.com", ttl=1)
    assert _codes(identical.value) == [81058]
    with pytest.raises(cloudflare.BadRequestError) as same_host:
        await sdk.dns.records.create(zone_id=fake.zone_id, type="A", name=name,
                                     content="192.0.2.1", ttl=1)
    assert _codes(same_host.value) == [81053]
    with pytest.raises(cloudflare.BadRequestError) as long_comment:
        await sdk.dns.records.create(zone_id=fake.zone_id, type="CNAME", name=f"b.{fake.zone_name}",
                                     content="y.example.com", ttl=1, comment="c" * 101)
    assert long_comment.value.status_code == 400
    with pytest.raises(cloudflare.NotFoundError) as missing:
        await sdk.dns.records.delete("0" * 32, zone_id=fake.zone_id)
    assert _codes(missing.value) == [81044]
    found = [r.name async for r in sdk.dns.records.list(zone_id=fake.zone_id,
                                                        name={"exact": name}, type="CNAME")]
    assert found == [name]


async def test_a_tunnel_with_connections_cannot_be_deleted_until_cleanup(
    fake: FakeCloudflare, sdk: cloudflare.AsyncCloudflare, origin: Origin
) -> None:
    tunnels = sdk.zero_trust.tunnels.cloudflared
    t = await tunnels.create(account_id=fake.account_id, name="busy", config_src="cloudflare")
    assert t.id is not None
    token = await tunnels.token.get(t.id, account_id=fake.account_id)
    assert json.loads(base64.b64decode(token))["t"] == t.id
    connector = fake.connect(token, origin.url)
    await tunnels.connections.delete(t.id, account_id=fake.account_id)  # it reconnects at once
    with pytest.raises(cloudflare.BadRequestError) as refused:
        await tunnels.delete(t.id, account_id=fake.account_id)
    assert _codes(refused.value) == [1022]
    fake.disconnect(connector)  # stopped without unregistering: the connection record lingers
    with pytest.raises(cloudflare.BadRequestError):
        await tunnels.delete(t.id, account_id=fake.account_id)
    await tunnels.connections.delete(t.id, account_id=fake.account_id)
    assert (await tunnels.delete(t.id, account_id=fake.account_id)).deleted_at is not None


async def test_requests_without_the_token_are_refused(fake: FakeCloudflare) -> None:
    async with httpx.AsyncClient(base_url=fake.api_url) as client:
        r = await client.get(f"/accounts/{fake.account_id}/cfd_tunnel")
    assert r.status_code == 403 and r.json()["errors"][0]["code"] == 10000
    assert r.json()["success"] is False


async def test_faults_and_calls_over_http(fake: FakeCloudflare) -> None:
    headers = {"Authorization": f"Bearer {fake.api_token}"}
    async with httpx.AsyncClient(base_url=fake.base_url) as client:
        set_fault = await client.post("/_fake/faults", json={"kind": "rate_limit",
                                                             "retry_after": 42})
        assert set_fault.status_code == 200
        r = await client.get(f"/client/v4/zones/{fake.zone_id}/dns_records", headers=headers)
        assert r.status_code == 429 and r.headers["Retry-After"] == "42"
        r = await client.get(f"/client/v4/zones/{fake.zone_id}/dns_records", headers=headers)
        assert r.status_code == 200 and r.json()["result"] == []
        calls = (await client.get("/_fake/calls")).json()
        assert [(c["method"], c["status"]) for c in calls] == [("GET", 429), ("GET", 200)]
        assert (await client.post("/_fake/faults", json={"kind": "nope"})).status_code == 400
        blocked = await client.post("/_fake/faults", json={"kind": "rate_block", "threshold": 0,
                                                           "window": 60, "block_seconds": 300})
        assert blocked.status_code == 200
        r = await client.get(f"/client/v4/zones/{fake.zone_id}/dns_records", headers=headers)
        assert r.status_code == 429 and r.headers["Retry-After"] == "300"
        await client.delete("/_fake/faults")
        r = await client.get(f"/client/v4/zones/{fake.zone_id}/dns_records", headers=headers)
        assert r.status_code == 200


async def test_the_edge_routes_by_host_through_the_tunnel(
    fake: FakeCloudflare, sdk: cloudflare.AsyncCloudflare, origin: Origin
) -> None:
    host = f"pr-3.{fake.zone_name}"
    tunnels = sdk.zero_trust.tunnels.cloudflared
    async with httpx.AsyncClient(base_url=f"http://{fake.edge_http_address}") as edge:
        assert (await edge.get("/health", headers={"Host": host})).status_code == 530  # no DNS
        t = await tunnels.create(account_id=fake.account_id, name="e", config_src="cloudflare")
        assert t.id is not None
        await sdk.dns.records.create(zone_id=fake.zone_id, type="CNAME", name=host, ttl=1,
                                     content=f"{t.id}.cfargotunnel.com", proxied=True)
        await tunnels.configurations.update(t.id, account_id=fake.account_id, config={
            "ingress": [{"hostname": host, "service": "http://localhost:8080"},
                        {"service": "http_status:404"}]})
        no_connector = await edge.get("/health", headers={"Host": host})
        assert no_connector.status_code == 530 and "1033" in no_connector.text
        token = await tunnels.token.get(t.id, account_id=fake.account_id)
        async with httpx.AsyncClient(base_url=fake.base_url) as control:
            joined = await control.post("/_fake/connectors", json={"token": token,
                                                                   "origin": origin.url})
            ok = await edge.get("/health?x=1", headers={"Host": host})
            assert ok.status_code == 200 and ok.json()["path"] == "/health?x=1"
            await control.delete(f"/_fake/connectors/{joined.json()['id']}")
        assert (await edge.get("/health", headers={"Host": host})).status_code == 530
        other = f"pr-4.{fake.zone_name}"  # same tunnel, no ingress rule: the catch-all 404
        await sdk.dns.records.create(zone_id=fake.zone_id, type="CNAME", name=other, ttl=1,
                                     content=f"{t.id}.cfargotunnel.com", proxied=True)
        hook = cloudflare_connector_hook(fake)
        hook(token, origin.url, True)
        assert (await edge.get("/", headers={"Host": other})).status_code == 404
        assert (await edge.get("/health", headers={"Host": host})).status_code == 200
        hook(token, origin.url, False)
        assert (await edge.get("/health", headers={"Host": host})).status_code == 530


async def test_curl_reaches_the_origin_over_tls(
    fake: FakeCloudflare, sdk: cloudflare.AsyncCloudflare, origin: Origin
) -> None:
    host = f"pr-5.{fake.zone_name}"
    tunnels = sdk.zero_trust.tunnels.cloudflared
    t = await tunnels.create(account_id=fake.account_id, name="tls", config_src="cloudflare")
    assert t.id is not None
    await sdk.dns.records.create(zone_id=fake.zone_id, type="CNAME", name=host, ttl=1,
                                 content=f"{t.id}.cfargotunnel.com", proxied=True)
    await tunnels.configurations.update(t.id, account_id=fake.account_id, config={
        "ingress": [{"hostname": host, "service": "http://localhost:8080"},
                    {"service": "http_status:404"}]})
    fake.connect(await tunnels.token.get(t.id, account_id=fake.account_id), origin.url)
    proc = await asyncio.create_subprocess_exec(
        "curl", "-sS", "--fail", "--cacert", str(fake.ca_file),
        "--connect-to", f"{host}:443:{fake.edge_address}", f"https://{host}/health",
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert json.loads(out)["host"] == host


async def test_websockets_pass_through_the_edge(fake: FakeCloudflare) -> None:
    async def echo(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            await ws.send_bytes(b"echo:" + msg.data)
        return ws

    app = web.Application()
    app.router.add_get("/register", echo)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        host = f"pr-6.{fake.zone_name}"
        t = fake.seed_tunnel("ws")
        t.config = {"ingress": [{"hostname": host, "service": "http://localhost:8080"},
                                {"service": "http_status:404"}]}
        fake.seed_record(host, f"{t.id}.cfargotunnel.com")
        token = base64.b64encode(json.dumps(
            {"a": fake.account_id, "t": t.id, "s": t.secret}).encode()).decode()
        fake.connect(token, f"http://127.0.0.1:{port}")
        async with aiohttp.ClientSession() as session, session.ws_connect(
            f"http://{fake.edge_http_address}/register", headers={"Host": host}
        ) as ws:
            await ws.send_bytes(b"hello")
            reply = await ws.receive(timeout=5)
            assert reply.data == b"echo:hello"
    finally:
        await runner.cleanup()
