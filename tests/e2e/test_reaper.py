"""The reaper end to end: the operator process, the real apiserver, fake GCE and Cloudflare.

Orphans are made out of band, straight in the fakes, stamped with our cluster id and a
uid no PreviewEnvironment has. What a user sees: while a listing fails (a fault switch on
the fakes), nothing is deleted and both the metrics and an event on the reaper's Lease
say why; once listings complete, the orphans are gone after two sightings (DNS before
its tunnel); objects stamped by another cluster, and unstamped ones, are never touched.
"""

from __future__ import annotations

import asyncio
import json
import socket
import uuid

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from dd_devcluster.cluster import LocalCluster
from dd_operator.naming import Stamp, dns_comment, tunnel_name
from dd_operator.providers.gce import GceVmProvider
from tests.integration.providers.cloudflare.fake import FakeCloudflare
from tests.integration.providers.gce.conftest import PROJECT, ZONES, settings_for, vm_request
from tests.integration.providers.gce.fake import FakeCompute, Fault
from tests.support.wait import wait_for

pytestmark = pytest.mark.cluster


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def new_cluster_id() -> str:
    """Each test its own cluster id: test runs sharing this machine never see each other."""
    return f"r{uuid.uuid4().hex[:10]}"


def reaper_env(namespace: str, port: int, cluster_id: str, **extra: str) -> dict[str, str]:
    return {
        "DD_CLUSTER_ID": cluster_id,
        "DD_OPERATOR_NAMESPACE": namespace,
        "DD_REAPER_INTERVAL_SECONDS": "1",
        "DD_REAPER_MIN_AGE_SECONDS": "1",
        "DD_REAPER_LEASE_SECONDS": "6",
        "DD_METRICS_HOST": "127.0.0.1",
        "DD_METRICS_PORT": str(port),
        **extra,
    }


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample on /metrics, keyed by (name, sorted labels)."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def sample(port: int, name: str, **labels: str) -> float:
    return scrape(port).get((name, tuple(sorted(labels.items()))), 0.0)


def lease_events(cluster: LocalCluster, namespace: str) -> list[dict[str, str]]:
    out = cluster.kubectl(
        "get", "events", "-n", namespace, "--field-selector",
        "involvedObject.kind=Lease,involvedObject.name=dd-preview-reaper", "-o", "json",
    ).stdout
    return [{"reason": e["reason"], "type": e["type"], "message": e["message"]}
            for e in json.loads(out)["items"]]


def seed_vm(compute: FakeCompute, stamp: Stamp) -> str:
    async def create() -> str:
        gce = GceVmProvider(settings_for(compute))
        try:
            request = vm_request(stamp=stamp)
            await gce.create_vm(request)
            return str(request.name)
        finally:
            await gce.close()

    return asyncio.run(create())


def test_orphans_go_after_two_sightings_and_a_failed_listing_deletes_nothing(
    cluster: LocalCluster, namespace: str, operator_factory: object
) -> None:
    cluster_id = new_cluster_id()
    ghost = Stamp(cluster_id, "gone-ns", "pr-404", str(uuid.uuid4()))  # no such object
    other = Stamp("othercluster", "gone-ns", "pr-405", str(uuid.uuid4()))
    port = free_port()
    with FakeCloudflare(max_per_page=1) as cf, FakeCompute(project=PROJECT,
                                                           step_seconds=0.05) as compute:
        orphan_vm = seed_vm(compute, ghost)
        theirs_vm = seed_vm(compute, other)
        orphan_tunnel = cf.seed_tunnel(tunnel_name(ghost))
        orphan_record = cf.seed_record(f"pr-404.{cf.zone_name}",
                                       f"{orphan_tunnel.id}.cfargotunnel.com",
                                       comment=dns_comment(ghost))
        # a second page of our records, so a fault on page 2 hits the listing
        second_record = cf.seed_record(f"pr-404-b.{cf.zone_name}",
                                       f"{orphan_tunnel.id}.cfargotunnel.com",
                                       comment=dns_comment(ghost))
        theirs_tunnel = cf.seed_tunnel(tunnel_name(other))
        theirs_record = cf.seed_record(f"pr-405.{cf.zone_name}",
                                       f"{theirs_tunnel.id}.cfargotunnel.com",
                                       comment=dns_comment(other))
        unstamped = cf.seed_record(f"www.{cf.zone_name}", "origin.example.com",
                                   comment="made by hand")
        # Phase 1: the GCE listing fails on every attempt.
        compute.add_fault(Fault(kind="http", method="instances.aggregatedList", status=503))
        operator_factory(env={  # type: ignore[operator]
            **cf.env(), **compute.env(), "DD_GCP_ZONES": ",".join(ZONES),
            **reaper_env(namespace, port, cluster_id),
        })
        wait_for(lambda: sample(port, "dd_preview_reaper_sweeps_total", outcome="incomplete") >= 3,
                 timeout=180, message="three sweeps with an incomplete GCE listing")
        assert sample(port, "dd_preview_reaper_incomplete_listings_total", source="vms/gce") >= 3
        assert sample(port, "dd_preview_reaper_skips_total", reason="incomplete-listing") >= 3
        assert sample(port, "dd_preview_reaper_leader") == 1
        events = wait_for(lambda: [e for e in lease_events(cluster, namespace)
                                   if e["reason"] == "SweepIncomplete"],
                          timeout=120, message="a SweepIncomplete event on the Lease")
        assert events[0]["type"] == "Warning" and "vms/gce" in events[0]["message"]
        # Phase 2: GCE answers again, but page 2 of the DNS listing fails.
        compute.clear_faults()
        cf.add_fault("page_failure", page=2, path_contains="dns_records", count=None)
        before = sample(port, "dd_preview_reaper_sweeps_total", outcome="incomplete")
        wait_for(lambda: sample(port, "dd_preview_reaper_incomplete_listings_total",
                                source="dns") >= 3
                 and sample(port, "dd_preview_reaper_sweeps_total", outcome="incomplete")
                 >= before + 3, timeout=180, message="three sweeps with a failed DNS page")
        assert sum(v for (name, _), v in scrape(port).items()
                   if name == "dd_preview_reaper_deletions_total") == 0
        assert orphan_vm in compute.instance_names()
        assert orphan_tunnel.id in [t.id for t in cf.live_tunnels()]
        assert {orphan_record.id, second_record.id} <= {r.id for r in cf.all_records()}

        # Phase 3: every listing completes: two sightings later the orphans are gone.
        cf.clear_faults()
        wait_for(lambda: orphan_vm not in compute.instance_names()
                 and not {orphan_record.id, second_record.id} & {r.id for r in cf.all_records()}
                 and orphan_tunnel.id not in [t.id for t in cf.live_tunnels()],
                 timeout=180, message="the orphan VM, record and tunnel deleted")
        assert theirs_vm in compute.instance_names()
        assert {theirs_tunnel.id} <= {t.id for t in cf.live_tunnels()}
        assert {theirs_record.id, unstamped.id} <= {r.id for r in cf.all_records()}
        deletions = {labels: v for (name, labels), v in scrape(port).items()
                     if name == "dd_preview_reaper_deletions_total"}
        assert deletions == {
            (("kind", "dns"), ("reason", "owner-gone")): 2.0,
            (("kind", "tunnel"), ("reason", "owner-gone")): 1.0,
            (("kind", "vm"), ("reason", "owner-gone")): 1.0,
        }
        # DNS went before its tunnel, as in the finalizer.
        deletes = [c["path"] for c in cf.call_log() if c["method"] == "DELETE"]
        record_at = next(i for i, p in enumerate(deletes) if orphan_record.id in p)
        tunnel_at = next(i for i, p in enumerate(deletes)
                         if p.endswith(f"cfd_tunnel/{orphan_tunnel.id}"))
        assert record_at < tunnel_at
        reasons = [e["reason"] for e in lease_events(cluster, namespace)]
        assert reasons.count("Deleted") == 4
        assert sample(port, "dd_preview_cloud_api_calls_total", provider="cloudflare") > 0
        assert sample(port, "dd_preview_cloud_api_errors_total", provider="cloudflare",
                      code="500") >= 3
        health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=30)
        assert health.status_code == 200 and health.json()["ok"] is True


def test_dry_run_reports_what_it_would_delete_and_deletes_nothing(
    cluster: LocalCluster, namespace: str, operator_factory: object
) -> None:
    cluster_id = new_cluster_id()
    ghost = Stamp(cluster_id, "gone-ns", "pr-406", str(uuid.uuid4()))
    port = free_port()
    with FakeCloudflare() as cf:
        orphan = cf.seed_tunnel(tunnel_name(ghost))
        operator_factory(env={  # type: ignore[operator]
            **cf.env(), **reaper_env(namespace, port, cluster_id, DD_REAPER_DRY_RUN="true"),
        })
        events = wait_for(lambda: [e for e in lease_events(cluster, namespace)
                                   if e["reason"] == "WouldDelete"],
                          timeout=180, message="a WouldDelete event")
        assert orphan.id in events[0]["message"]
        assert sample(port, "dd_preview_reaper_would_delete", kind="tunnel") == 1
        assert orphan.id in [t.id for t in cf.live_tunnels()]
        assert not [c for c in cf.call_log() if c["method"] == "DELETE"]
