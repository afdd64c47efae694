"""CloudflareEdgeProvider against the fake Cloudflare: lifecycle, idempotency, ownership, paging.

The invariant proved by ``test_lifecycle_serves_through_the_edge_then_leaves_nothing``:
after delete, zero tunnels and zero DNS records carry this object's stamp.
"""

from __future__ import annotations

import re

import pytest

from dd_operator import naming
from dd_operator.errors import NotOurs, TransientFailure
from dd_operator.naming import Stamp
from dd_operator.providers.base import DnsRecord, Tunnel
from dd_operator.providers.cloudflare import CloudflareEdgeProvider, tunnel_cname_target

from .conftest import CLUSTER, Origin, new_stamp
from .fake import FakeCloudflare

PORT = 8080


def _shape(call: dict[str, object]) -> str:
    """``GET /accounts/{acc}/cfd_tunnel/{id}/token`` style: ids replaced by placeholders."""
    path = str(call["path"])
    path = re.sub(r"/accounts/[0-9a-f]+", "/accounts/{acc}", path)
    path = re.sub(r"/zones/[0-9a-f]+", "/zones/{zone}", path)
    path = re.sub(r"/cfd_tunnel/[0-9a-f-]{36}", "/cfd_tunnel/{id}", path)
    path = re.sub(r"/dns_records/[0-9a-f]{32}", "/dns_records/{id}", path)
    return f"{call['method']} {path}"


def _carries(stamp: Stamp, fake: FakeCloudflare) -> tuple[list[str], list[str]]:
    """Live tunnels and records (straight from the fake's state) that carry ``stamp``."""
    tunnels = [t.name for t in fake.live_tunnels() if naming.is_ours(t.name, stamp)]
    records = [r.name for r in fake.all_records() if naming.is_ours(r.comment, stamp)]
    return tunnels, records


async def test_lifecycle_serves_through_the_edge_then_leaves_nothing(
    fake: FakeCloudflare, provider: CloudflareEdgeProvider, origin: Origin, stamp: Stamp
) -> None:
    hostname = f"pr-7.{fake.zone_name}"

    assert await provider.find_tunnel(stamp) is None
    tunnel = await provider.create_tunnel(stamp)
    assert tunnel.name == naming.tunnel_name(stamp)
    await provider.configure_tunnel(tunnel, hostname, PORT)
    token = await provider.tunnel_token(tunnel)
    assert await provider.find_dns(hostname) is None
    record = await provider.create_dns(stamp, hostname, tunnel)
    assert record.content == tunnel_cname_target(tunnel.id)
    assert naming.is_ours(record.comment, stamp)

    connector = fake.connect(token, origin.url)  # the VM's cloudflared joins with the token
    response = await provider.probe(hostname)
    assert response.status_code == 200
    assert response.json()["host"] == hostname
    assert response.json()["proto"] == "https"
    assert provider.public_url(hostname) == f"https://{hostname}"
    found = await provider.find_tunnel(stamp)
    assert found is not None and found.id == tunnel.id and found.connections == 1

    # teardown, in the reconcile's order: DNS, stop the connector (VM), tunnel
    await provider.delete_dns(record)
    fake.disconnect(connector)  # a stopped VM leaves a stale connection record behind
    await provider.delete_tunnel(tunnel)

    assert _carries(stamp, fake) == ([], [])
    assert await provider.list_tunnels(CLUSTER) == []
    assert await provider.list_dns(CLUSTER) == []
    assert await provider.find_tunnel(stamp) is None
    assert (await provider.probe(hostname)).status_code == 530

    assert [_shape(c) for c in fake.call_log()] == [
        "GET /accounts/{acc}/cfd_tunnel",  # find_tunnel (name=, is_deleted=false)
        "POST /accounts/{acc}/cfd_tunnel",  # create_tunnel (config_src=cloudflare)
        "PUT /accounts/{acc}/cfd_tunnel/{id}/configurations",  # ingress
        "GET /accounts/{acc}/cfd_tunnel/{id}/token",  # token for the VM
        "GET /zones/{zone}/dns_records",  # find_dns (name.exact=, type=CNAME)
        "POST /zones/{zone}/dns_records",  # proxied CNAME with the stamp comment
        "GET /accounts/{acc}/cfd_tunnel",  # find_tunnel (connections seen)
        "DELETE /zones/{zone}/dns_records/{id}",  # teardown 1: CNAME
        "DELETE /accounts/{acc}/cfd_tunnel/{id}/connections",  # teardown 2: stale connections
        "DELETE /accounts/{acc}/cfd_tunnel/{id}",  # teardown 3: tunnel (soft delete)
        "GET /accounts/{acc}/cfd_tunnel",  # list_tunnels (include_prefix=)
        "GET /zones/{zone}/dns_records",  # list_dns (comment.contains=)
        "GET /accounts/{acc}/cfd_tunnel",  # find_tunnel after delete
    ]
    assert all(c["status"] == 200 for c in fake.call_log())


async def test_find_then_create_is_idempotent(
    fake: FakeCloudflare, provider: CloudflareEdgeProvider, stamp: Stamp
) -> None:
    hostname = f"pr-8.{fake.zone_name}"
    first = await provider.create_tunnel(stamp)
    again = await provider.create_tunnel(stamp)  # as after a crash: name taken -> the same one
    assert again.id == first.id
    assert await provider.find_tunnel(stamp) == again
    record = await provider.create_dns(stamp, hostname, first)
    assert await provider.create_dns(stamp, hostname, first) == record
    assert len(fake.live_tunnels()) == 1 and len(fake.all_records()) == 1


async def test_a_record_someone_else_owns_is_never_overwritten(
    fake: FakeCloudflare, provider: CloudflareEdgeProvider, stamp: Stamp
) -> None:
    hostname = f"pr-9.{fake.zone_name}"
    other = new_stamp("other-object")
    fake.seed_record(hostname, "elsewhere.example.com", comment=naming.dns_comment(other))
    fake.seed_record(f"pr-10.{fake.zone_name}", "192.0.2.1", type="A", comment="hand-made")
    tunnel = await provider.create_tunnel(stamp)

    seen = await provider.find_dns(hostname)
    assert seen is not None and not naming.is_ours(seen.comment, stamp)
    with pytest.raises(NotOurs) as conflict:
        await provider.create_dns(stamp, hostname, tunnel)
    assert conflict.value.owner == other.owner
    assert hostname in str(conflict.value)
    with pytest.raises(NotOurs, match="not dd-preview"):
        await provider.create_dns(stamp, f"pr-10.{fake.zone_name}", tunnel)

    contents = sorted((r.name, r.content, r.comment) for r in fake.all_records())
    assert contents == sorted([
        (hostname, "elsewhere.example.com", naming.dns_comment(other)),
        (f"pr-10.{fake.zone_name}", "192.0.2.1", "hand-made"),
    ])


async def test_our_own_record_is_adopted_and_repointed(
    fake: FakeCloudflare, provider: CloudflareEdgeProvider, stamp: Stamp
) -> None:
    hostname = f"pr-11.{fake.zone_name}"
    stale = fake.seed_record(hostname, tunnel_cname_target("0" * 8 + "-dead-beef-0000-" + "0" * 12),
                             comment=naming.dns_comment(stamp))
    tunnel = await provider.create_tunnel(stamp)
    record = await provider.create_dns(stamp, hostname, tunnel)
    assert record.id == stale.id
    assert record.content == tunnel_cname_target(tunnel.id)
    assert [r.content for r in fake.all_records()] == [tunnel_cname_target(tunnel.id)]


async def test_listings_follow_every_page_and_keep_only_this_cluster(
    fake: FakeCloudflare, provider: CloudflareEdgeProvider
) -> None:
    fake.max_per_page = 40  # the server serves fewer than we ask for: we follow its pages
    ours = [new_stamp(f"pe-{i}") for i in range(60)]
    for s in ours:
        fake.seed_tunnel(naming.tunnel_name(s))
        fake.seed_record(f"{s.name}.{fake.zone_name}", "x.cfargotunnel.com",
                         comment=naming.dns_comment(s))
    for i in range(45):  # another cluster's objects, hand-made ones, and soft-deleted ones
        theirs = new_stamp(f"theirs-{i}", cluster_id="othercluster")
        fake.seed_tunnel(naming.tunnel_name(theirs))
        fake.seed_tunnel(f"hand-made-{i}")
        fake.seed_tunnel(naming.tunnel_name(new_stamp(f"gone-{i}")), deleted=True)
        fake.seed_record(f"t-{i}.{fake.zone_name}", "y.example.com",
                         comment=naming.dns_comment(theirs))
        fake.seed_record(f"h-{i}.{fake.zone_name}", "192.0.2.2", type="A", comment=None)
    assert len(fake.tunnels) > 100 and len(fake.records) > 100

    tunnels = await provider.list_tunnels(CLUSTER)
    records = await provider.list_dns(CLUSTER)
    assert sorted(t.name for t in tunnels) == sorted(naming.tunnel_name(s) for s in ours)
    assert sorted(r.name for r in records) == sorted(f"{s.name}.{fake.zone_name}" for s in ours)
    pages = [c["query"].get("page", "1") for c in fake.call_log()]
    assert pages == ["1", "2", "1", "2"]  # 60 of ours = 2 server pages each, nothing skipped


async def test_lookups_follow_pages_past_the_first(
    fake: FakeCloudflare, provider: CloudflareEdgeProvider, stamp: Stamp
) -> None:
    fake.max_per_page = 1
    for _ in range(2):  # two soft-deleted tunnels with our very name come first
        fake.seed_tunnel(naming.tunnel_name(stamp), deleted=True)
    fake.add_fault("soft_deleted_listing", count=None)
    live = fake.seed_tunnel(naming.tunnel_name(stamp))
    found = await provider.find_tunnel(stamp)
    assert found is not None and found.id == live.id
    assert [c["query"]["page"] for c in fake.call_log()[-2:]] == ["2", "3"]


async def test_teardown_counts_404_as_done(
    fake: FakeCloudflare, provider: CloudflareEdgeProvider
) -> None:
    gone = DnsRecord(id="f" * 32, name="gone.preview.test", content="", comment="")
    await provider.delete_dns(gone)
    await provider.delete_tunnel(Tunnel(id="00000000-0000-0000-0000-000000000000", name="gone"))
    assert {c["status"] for c in fake.call_log()} == {404}


async def test_tunnel_delete_is_refused_while_a_connector_runs(
    fake: FakeCloudflare, provider: CloudflareEdgeProvider, origin: Origin, stamp: Stamp
) -> None:
    tunnel = await provider.create_tunnel(stamp)
    connector = fake.connect(await provider.tunnel_token(tunnel), origin.url)
    with pytest.raises(TransientFailure, match="active connections"):
        await provider.delete_tunnel(tunnel)
    assert await provider.find_tunnel(stamp) is not None  # refused, not skipped
    fake.disconnect(connector)
    await provider.delete_tunnel(tunnel)
    assert await provider.find_tunnel(stamp) is None
