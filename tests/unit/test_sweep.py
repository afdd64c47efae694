"""plan_sweep as a table: every interlock of the reaper, with ``now`` as a parameter."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from dd_operator.naming import InstanceName, Stamp, dns_comment, tunnel_name
from dd_operator.providers.base import DnsRecord, Tunnel, Vm
from dd_operator.reaper.sweep import (
    ListedVm,
    Listings,
    LiveObject,
    Sighting,
    SweepPlan,
    live_object,
    plan_sweep,
)
from dd_operator.settings import ReaperSettings

CLUSTER = "prod"
NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
OLD = NOW - timedelta(hours=2)
SETTINGS = ReaperSettings(min_age_seconds=900, max_deletions=10)


def stamp(cluster: str = CLUSTER) -> Stamp:
    return Stamp(cluster, "previews", "pr-1", str(uuid.uuid4()))


def vm(s: Stamp, *, status: str = "RUNNING", name: str = "", created: datetime = OLD) -> Vm:
    return Vm(InstanceName(name or f"dd-pr-1-{s.uid[:6]}"), "us-central1-a", status,
              (s.cluster_id, s.uid), "a" * 40, "", created)


def tunnel(s: Stamp, created: datetime = OLD) -> Tunnel:
    return Tunnel(f"t-{s.uid[:8]}", tunnel_name(s), 0, created)


def record(s: Stamp, target: Tunnel | None = None, created: datetime = OLD) -> DnsRecord:
    content = f"{target.id}.cfargotunnel.com" if target else "x.cfargotunnel.com"
    return DnsRecord(f"r-{s.uid[:8]}", "pr-1.preview.test", content, dns_comment(s), created)


def live(s: Stamp, **kw: object) -> LiveObject:
    return replace(LiveObject(s.namespace, s.name, s.uid), **kw)  # type: ignore[arg-type]


def twice(listings: Listings, objects: list[LiveObject], now: datetime = NOW,
          settings: ReaperSettings = SETTINGS) -> SweepPlan:
    """Two consecutive sweeps one minute apart; the plan of the second."""
    first = plan_sweep(listings, objects, {}, now - timedelta(minutes=1), settings,
                       cluster_id=CLUSTER)
    return plan_sweep(listings, objects, first.sightings, now, settings, cluster_id=CLUSTER)


def reasons(plan: SweepPlan) -> dict[str, tuple[str, str]]:
    return {d.key: (d.action, d.reason) for d in plan.decisions}


def test_orphans_of_every_kind_are_deleted_after_two_sightings_dns_first() -> None:
    s = stamp()
    t = tunnel(s)
    listings = Listings(vms=(ListedVm("gce", vm(s, status="TERMINATED")),), tunnels=(t,),
                        dns=(record(s, t),))
    first = plan_sweep(listings, [], {}, NOW, SETTINGS, cluster_id=CLUSTER)
    assert first.deletions == ()
    assert {d.reason for d in first.skips} == {"first-sighting"}
    second = plan_sweep(listings, [], first.sightings, NOW + timedelta(minutes=1), SETTINGS,
                        cluster_id=CLUSTER)
    assert [d.kind for d in second.deletions] == ["dns", "vm"]
    # the tunnel waits for its VM to disappear (Cloudflare refuses while connectors live)
    assert reasons(second)[f"tunnel/{t.id}"] == ("skip", "vm-still-present")
    third = plan_sweep(replace(listings, vms=()), [], second.sightings,
                       NOW + timedelta(minutes=2), SETTINGS, cluster_id=CLUSTER)
    tunnel_decision = next(d for d in third.deletions if d.kind == "tunnel")
    assert third.deletions[0].kind == "dns" and tunnel_decision.after == (f"dns/r-{s.uid[:8]}",)


def test_a_tunnel_waits_while_a_cname_it_cannot_delete_points_at_it() -> None:
    s = stamp()
    t = tunnel(s)
    young_record = record(s, t, created=NOW - timedelta(seconds=10))
    plan = twice(Listings(tunnels=(t,), dns=(young_record,)), [])
    assert reasons(plan) == {
        f"dns/{young_record.id}": ("skip", "too-young"),
        f"tunnel/{t.id}": ("skip", "dns-still-points-here"),
    }


@pytest.mark.parametrize("source", ["vms/gce: aggregated list answered 503",
                                    "tunnels: page 2 failed", "dns: page 3 failed",
                                    "kubernetes: list answered 500"])
def test_a_failed_listing_deletes_nothing_and_forgets_sightings(source: str) -> None:
    s = stamp()
    listings = Listings(vms=(ListedVm("gce", vm(s)),), tunnels=(tunnel(s),), dns=(record(s),))
    first = plan_sweep(listings, [], {}, NOW, SETTINGS, cluster_id=CLUSTER)
    plan = plan_sweep(replace(listings, failures=(source,)), [], first.sightings,
                      NOW + timedelta(minutes=1), SETTINGS, cluster_id=CLUSTER)
    assert plan.deletions == ()
    assert plan.incomplete == (source,)
    assert {d.reason for d in plan.skips} == {"incomplete-listing"}
    assert {d.candidate_reason for d in plan.skips} == {"owner-gone"}
    assert plan.sightings == {}


def test_young_orphans_wait_for_the_minimum_age() -> None:
    s = stamp()
    young = vm(s, created=NOW - timedelta(minutes=5))
    plan = twice(Listings(vms=(ListedVm("gce", young),)), [])
    assert [(d.action, d.reason) for d in plan.decisions] == [("skip", "too-young")]


def test_an_unknown_creation_time_counts_from_the_first_sighting() -> None:
    s = stamp()
    undated = replace(vm(s), created_at=None)
    listings = Listings(vms=(ListedVm("local", undated),))
    plan = twice(listings, [])
    assert plan.skips[0].reason == "too-young"
    later = plan_sweep(listings, [], plan.sightings, NOW + timedelta(minutes=20), SETTINGS,
                       cluster_id=CLUSTER)
    assert [d.kind for d in later.deletions] == ["vm"]


def test_other_clusters_and_unstamped_objects_are_never_candidates() -> None:
    theirs = stamp("staging")
    unstamped = Tunnel("t-plain", "someone-elses-tunnel", 0, OLD)
    plain_record = DnsRecord("r-plain", "www.preview.test", "x", "hand made", OLD)
    plan = twice(Listings(vms=(ListedVm("gce", vm(theirs)),),
                          tunnels=(tunnel(theirs), unstamped), dns=(plain_record,)), [])
    assert plan.deletions == () and plan.candidates == ()
    assert sorted(d.reason for d in plan.decisions) == [
        "other-cluster", "other-cluster", "unstamped", "unstamped"]


def test_a_live_owner_keeps_everything_even_mid_create() -> None:
    s = stamp()
    booting = vm(s, status="PROVISIONING", created=NOW - timedelta(seconds=1))
    plan = twice(Listings(vms=(ListedVm("gce", booting),), tunnels=(tunnel(s),),
                          dns=(record(s),)), [live(s)])
    assert plan.candidates == ()
    assert {d.reason for d in plan.decisions} == {"owner-live"}


def test_an_owner_being_deleted_is_left_to_its_finalizer() -> None:
    s = stamp()
    plan = twice(Listings(vms=(ListedVm("gce", vm(s, status="TERMINATED")),),
                          tunnels=(tunnel(s),)), [live(s, deleting=True)])
    assert plan.candidates == ()
    assert {d.reason for d in plan.decisions} == {"owner-deleting"}


def test_the_terminated_vm_of_a_suspended_environment_is_kept() -> None:
    s = stamp()
    stopped = vm(s, status="TERMINATED")
    suspended = live_object({
        "metadata": {"namespace": s.namespace, "name": s.name, "uid": s.uid},
        "spec": {"suspend": True},
        "status": {"instances": [{"name": stopped.name}], "vm": {"name": stopped.name}},
    }, CLUSTER)
    plan = twice(Listings(vms=(ListedVm("gce", stopped),)), [suspended])
    assert reasons(plan) == {f"vm/gce/{stopped.zone}/{stopped.name}": ("keep", "owner-live")}


def test_a_terminated_vm_its_live_owner_does_not_record_is_deleted() -> None:
    s = stamp()
    stray = vm(s, status="TERMINATED", name="dd-pr-1-stray-0000000")
    recorded = vm(s, status="RUNNING", name="dd-pr-1-current-1111111")
    owner = live(s, vm_names=frozenset({recorded.name}))
    plan = twice(Listings(vms=(ListedVm("gce", stray), ListedVm("gce", recorded))), [owner])
    assert [(d.target.name, d.reason) for d in plan.deletions if isinstance(d.target, Vm)] == [
        (stray.name, "terminated-unreferenced")]


def test_the_vm_a_spec_asks_for_is_recorded_even_before_status_says_so() -> None:
    s = stamp()
    body = {
        "metadata": {"namespace": s.namespace, "name": s.name, "uid": s.uid},
        "spec": {"repository": "acme/webapp", "pullRequest": 1, "commitSha": "a" * 40,
                 "owner": "acme"},
    }
    obj = live_object(body, CLUSTER)
    (desired,) = obj.vm_names
    plan = twice(Listings(vms=(ListedVm("gce", vm(s, status="TERMINATED", name=desired)),)),
                 [obj])
    assert plan.candidates == ()


def test_deletions_are_capped_per_sweep() -> None:
    orphans = [ListedVm("gce", vm(stamp(), name=f"dd-orphan-{n}")) for n in range(5)]
    plan = twice(Listings(vms=tuple(orphans)), [], settings=replace(SETTINGS, max_deletions=2))
    assert len(plan.deletions) == 2
    assert [d.reason for d in plan.skips] == ["over-cap"] * 3


def test_dry_run_plans_the_same_deletions_the_runner_then_only_reports() -> None:
    s = stamp()
    listings = Listings(vms=(ListedVm("gce", vm(s)),))
    real = twice(listings, [])
    dry = twice(listings, [], settings=replace(SETTINGS, dry_run=True))
    assert [d.key for d in dry.deletions] == [d.key for d in real.deletions] != []


def test_a_sighting_that_stops_being_a_candidate_is_forgotten() -> None:
    s = stamp()
    listings = Listings(vms=(ListedVm("gce", vm(s)),))
    first = plan_sweep(listings, [], {}, NOW, SETTINGS, cluster_id=CLUSTER)
    # the owner shows up (it was being created): no longer a candidate, sighting dropped
    second = plan_sweep(listings, [live(s)], first.sightings, NOW, SETTINGS, cluster_id=CLUSTER)
    assert second.sightings == {}
    third = plan_sweep(listings, [], second.sightings, NOW, SETTINGS, cluster_id=CLUSTER)
    assert third.deletions == () and third.sightings[third.skips[0].key] == Sighting(1, NOW)
