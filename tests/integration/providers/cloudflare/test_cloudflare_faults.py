"""Each fault switch of the fake Cloudflare, and what the provider turns it into.

| fault                         | provider result                                            |
|-------------------------------|------------------------------------------------------------|
| 429 + Retry-After             | TransientFailure(retry_after) and the shared budget pauses |
| 5-minute block after N calls  | TransientFailure(retry_after=300), budget paused 300 s     |
| 5xx                           | TransientFailure                                           |
| HTML error page               | TransientFailure, no HTML in the message                   |
| page N of a listing fails     | IncompleteListing (reaper), TransientFailure (lookups)     |
| delete refused (1022)         | TransientFailure; the next attempt deletes                 |
| soft-deleted tunnels listed   | ignored by find_tunnel and list_tunnels                    |
| wrong token (403)             | PermanentFailure("CloudflareAuth"), token not in message   |
| validation error (400)        | PermanentFailure("CloudflareRejected")                     |
| API unreachable               | TransientFailure                                           |
| edge unreachable (probe)      | httpx.HTTPError, which observe reads as not serving        |
"""

from __future__ import annotations

import httpx
import pytest

from dd_operator import naming
from dd_operator.errors import IncompleteListing, PermanentFailure, TransientFailure
from dd_operator.naming import Stamp
from dd_operator.providers.cloudflare import CloudflareEdgeProvider
from dd_operator.retry import RequestBudget

from .conftest import CLUSTER, FakeClock, new_stamp
from .fake import FakeCloudflare


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def budget(clock: FakeClock) -> RequestBudget:
    return RequestBudget(100, 300, clock=clock, sleep=clock.sleep)


@pytest.fixture
async def budgeted(fake: FakeCloudflare, budget: RequestBudget):  # type: ignore[no-untyped-def]
    p = CloudflareEdgeProvider(fake.settings(), budget)
    yield p
    await p.close()


async def test_429_pauses_every_caller_for_retry_after(
    fake: FakeCloudflare, budgeted: CloudflareEdgeProvider, budget: RequestBudget, stamp: Stamp
) -> None:
    fake.add_fault("rate_limit", retry_after=7)
    with pytest.raises(TransientFailure) as failure:
        await budgeted.find_tunnel(stamp)
    assert failure.value.retry_after == 7
    assert budget.wait_time() == 7
    assert await budgeted.find_tunnel(stamp) is None  # the budget waited, then it worked


async def test_the_five_minute_block_after_too_many_calls(
    fake: FakeCloudflare, budgeted: CloudflareEdgeProvider, budget: RequestBudget, stamp: Stamp
) -> None:
    fake.set_rate_block(threshold=3, window=60)
    for _ in range(3):
        await budgeted.find_tunnel(stamp)
    with pytest.raises(TransientFailure) as failure:
        await budgeted.find_tunnel(stamp)
    assert failure.value.retry_after == 300
    assert budget.wait_time() == 300
    assert [c["status"] for c in fake.call_log()] == [200, 200, 200, 429]


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_5xx_is_transient(
    fake: FakeCloudflare, provider: CloudflareEdgeProvider, stamp: Stamp, status: int
) -> None:
    fake.add_fault("server_error", status=status)
    with pytest.raises(TransientFailure, match=str(status)):
        await provider.create_tunnel(stamp)
    assert await provider.create_tunnel(stamp)  # the switch fired once


async def test_an_html_error_page_is_transient_and_stays_out_of_messages(
    fake: FakeCloudflare, provider: CloudflareEdgeProvider, stamp: Stamp
) -> None:
    fake.add_fault("html_error", path_contains="dns_records")
    tunnel = await provider.create_tunnel(stamp)
    with pytest.raises(TransientFailure) as failure:
        await provider.create_dns(stamp, f"pr-1.{fake.zone_name}", tunnel)
    assert "<" not in str(failure.value) and "cloudflare</p>" not in str(failure.value)


async def test_a_failed_page_makes_the_listing_incomplete(
    fake: FakeCloudflare, provider: CloudflareEdgeProvider, stamp: Stamp
) -> None:
    fake.max_per_page = 2
    for i in range(5):
        fake.seed_tunnel(naming.tunnel_name(new_stamp(f"n{i}")))
    fake.add_fault("page_failure", page=2, path_contains="cfd_tunnel")
    with pytest.raises(IncompleteListing) as failure:
        await provider.list_tunnels(CLUSTER)
    assert failure.value.source == "cloudflare-tunnels"
    assert len(await provider.list_tunnels(CLUSTER)) == 5
    fake.add_fault("page_failure", page=3, path_contains="dns_records")
    for i in range(5):
        fake.seed_record(f"r{i}.{fake.zone_name}", "x", comment=naming.dns_comment(stamp))
    with pytest.raises(IncompleteListing):
        await provider.list_dns(CLUSTER)
    fake.add_fault("page_failure", page=1, path_contains="cfd_tunnel")
    with pytest.raises(TransientFailure):
        await provider.find_tunnel(stamp)  # a failed lookup is unknown, never "absent"


async def test_a_refused_tunnel_delete_is_retried_not_skipped(
    fake: FakeCloudflare, provider: CloudflareEdgeProvider, stamp: Stamp
) -> None:
    tunnel = await provider.create_tunnel(stamp)
    fake.add_fault("lingering_connections", count=2)
    for _ in range(2):
        with pytest.raises(TransientFailure, match="active connections"):
            await provider.delete_tunnel(tunnel)
        assert await provider.find_tunnel(stamp) is not None
    await provider.delete_tunnel(tunnel)
    assert await provider.find_tunnel(stamp) is None


async def test_soft_deleted_tunnels_in_listings_are_ignored(
    fake: FakeCloudflare, provider: CloudflareEdgeProvider, stamp: Stamp
) -> None:
    fake.add_fault("soft_deleted_listing", count=None)
    old = await provider.create_tunnel(stamp)
    await provider.delete_tunnel(old)
    assert await provider.find_tunnel(stamp) is None
    assert await provider.list_tunnels(CLUSTER) == []
    new = await provider.create_tunnel(stamp)  # the name is free again after a soft delete
    assert new.id != old.id and await provider.find_tunnel(stamp) == new


async def test_a_refused_token_is_permanent_and_never_echoed(
    fake: FakeCloudflare, stamp: Stamp
) -> None:
    wrong = "wrong-token-value-123"
    p = CloudflareEdgeProvider(fake.settings(api_token=wrong))
    try:
        with pytest.raises(PermanentFailure) as failure:
            await p.find_tunnel(stamp)
    finally:
        await p.close()
    assert failure.value.reason == "CloudflareAuth"
    assert wrong not in str(failure.value) and fake.api_token not in str(failure.value)


async def test_a_validation_error_is_permanent(
    fake: FakeCloudflare, provider: CloudflareEdgeProvider, stamp: Stamp
) -> None:
    tunnel = await provider.create_tunnel(stamp)
    with pytest.raises(PermanentFailure) as failure:
        await provider.configure_tunnel(tunnel, "", 8080)  # a rule without hostname first
    assert failure.value.reason == "CloudflareRejected"


async def test_an_unreachable_api_is_transient(fake: FakeCloudflare, stamp: Stamp) -> None:
    p = CloudflareEdgeProvider(fake.settings(base_url="http://127.0.0.1:9/client/v4"))
    try:
        with pytest.raises(TransientFailure, match="did not answer"):
            await p.find_tunnel(stamp)
    finally:
        await p.close()


async def test_probe_leaves_an_unreachable_edge_to_the_reconcile(fake: FakeCloudflare) -> None:
    p = CloudflareEdgeProvider(fake.settings(probe_address="127.0.0.1:9"))
    try:
        with pytest.raises(httpx.ConnectError):
            await p.probe(f"pr-1.{fake.zone_name}")  # observe reads it as "not serving yet"
    finally:
        await p.close()


async def test_probe_verifies_the_edge_certificate(fake: FakeCloudflare) -> None:
    p = CloudflareEdgeProvider(fake.settings(probe_ca_file=""))  # system CAs: not the fake's
    try:
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await p.probe(f"pr-1.{fake.zone_name}")
    finally:
        await p.close()
