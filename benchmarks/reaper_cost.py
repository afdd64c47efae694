"""Sub-benchmark 5: what one reaper decision costs as the stamped objects grow.

``plan_sweep`` (``dd_operator/reaper/sweep.py``) is pure, so it is timed alone, over
synthetic listings: M stamped objects, one VM + one tunnel + one CNAME per environment
(M/3 environments), like a real account. Half the owners are live PreviewEnvironments;
the other half are gone, so their objects are candidates that were already seen once by
the previous sweep (they pass the two-sightings rule and then meet the age rule and the
deletion cap), and one VM in ten is TERMINATED. Each size is timed several times and the
median is reported, with the ratio to the smallest size both in total and per object
(1.00x per object means linear scaling).
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from .report import print_table, ratio, section

if TYPE_CHECKING:
    from dd_operator.reaper.sweep import Listings, LiveObject, Sighting

__all__ = ["SweepTiming", "print_reaper_cost", "run_reaper_cost"]

CLUSTER_ID = "bench"
NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class SweepTiming:
    objects: int
    seconds: float
    repeats: int
    deletions: int
    candidates: int


def _inputs(objects: int) -> tuple[Listings, list[LiveObject], dict[str, Sighting]]:
    """Imported here: this module must load (and say why not) without the reaper."""
    from dd_operator.naming import Stamp, dns_comment, instance_name, tunnel_name
    from dd_operator.providers.base import DnsRecord, Tunnel, Vm
    from dd_operator.reaper.sweep import ListedVm, Listings, LiveObject, Sighting

    old = NOW - timedelta(days=2)
    vms: list[ListedVm] = []
    tunnels: list[Tunnel] = []
    records: list[DnsRecord] = []
    live: list[LiveObject] = []
    sightings: dict[str, Sighting] = {}
    for i in range(objects // 3):
        stamp = Stamp(CLUSTER_ID, f"ns-{i % 50}", f"pr-{i}", str(uuid.UUID(int=i + 1)))
        name = instance_name(stamp, f"pr-{i}", f"{i:040x}")
        vm = Vm(name=name, zone="us-central1-a",
                status="TERMINATED" if i % 10 == 9 else "RUNNING",
                owner=(CLUSTER_ID, stamp.uid), build_sha=f"{i:040x}", endpoint="",
                created_at=old)
        tunnel = Tunnel(id=uuid.UUID(int=10**9 + i).hex, name=tunnel_name(stamp),
                        created_at=old)
        record = DnsRecord(id=uuid.UUID(int=2 * 10**9 + i).hex,
                           name=f"pr-{i}.preview.example.com",
                           content=f"{tunnel.id}.cfargotunnel.com",
                           comment=dns_comment(stamp), created_at=old)
        vms.append(ListedVm(provider="gce", vm=vm))
        tunnels.append(tunnel)
        records.append(record)
        if i % 2 == 0:
            live.append(LiveObject(namespace=stamp.namespace, name=stamp.name, uid=stamp.uid,
                                   expires_at=NOW + timedelta(hours=2),
                                   expires_at_text="2026-12-03T14:00:00Z",
                                   vm_names=frozenset({name})))
        else:
            seen = Sighting(count=1, first_seen=NOW - timedelta(hours=1))
            sightings[f"dns/{record.id}"] = seen
            sightings[f"vm/gce/{vm.zone}/{vm.name}"] = seen
            sightings[f"tunnel/{tunnel.id}"] = seen
    listings = Listings(vms=tuple(vms), tunnels=tuple(tunnels), dns=tuple(records))
    return listings, live, sightings


def _time(objects: int, min_seconds: float) -> SweepTiming:
    from dd_operator.reaper.sweep import plan_sweep
    from dd_operator.settings import ReaperSettings

    listings, live, sightings = _inputs(objects)
    settings = ReaperSettings()
    samples: list[float] = []
    plan = None
    while len(samples) < 3 or (sum(samples) < min_seconds and len(samples) < 200):
        started = time.perf_counter()
        plan = plan_sweep(listings, live, sightings, NOW, settings, cluster_id=CLUSTER_ID)
        samples.append(time.perf_counter() - started)
    assert plan is not None
    return SweepTiming(objects, statistics.median(samples), len(samples),
                       len(plan.deletions), len(plan.candidates))


def run_reaper_cost(sizes: Sequence[int], min_seconds: float) -> list[SweepTiming] | str:
    """The timings, or why the reaper could not be measured."""
    try:
        from dd_operator.reaper import sweep
    except ImportError as exc:
        return f"reaper not available ({exc})"
    if not hasattr(sweep, "plan_sweep"):
        return "reaper not available (no plan_sweep in dd_operator.reaper.sweep)"
    return [_time(n, min_seconds) for n in sizes]


def print_reaper_cost(result: list[SweepTiming] | str) -> None:
    section("5. reaper: plan_sweep over M stamped objects (VM + tunnel + CNAME per "
            "environment; half orphaned)")
    if isinstance(result, str):
        print(f"  not run: {result}\n", flush=True)
        return
    base = result[0]
    rows = [[t.objects, t.seconds * 1000, t.repeats, t.candidates, t.deletions,
             ratio(t.seconds, base.seconds),
             ratio(t.seconds / t.objects, base.seconds / base.objects)] for t in result]
    print_table(["M objects", "median ms", "runs", "candidates", "deleted (cap)",
                 f"vs M={base.objects}", "per object"], rows)
