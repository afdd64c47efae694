"""The operator is SIGKILLed right after a cloud call, restarted, and must converge (DESIGN §3.2).

How much is swept here (CI budget: a few minutes on 2 cores), and what is not:

- **every mutating call** of a create, a blue/green replacement and a delete (tunnel create,
  ingress PUT, CNAME create, instances.insert / stop / delete, DNS delete, connections
  cleanup, tunnel delete): the n-th side effect is the same call in every run, so these
  points are exact;
- **every k-th call of any kind** (reads included, GCE and Cloudflare interleaved in one
  count), k = ``STRIDE``, plus each phase's last call. A kill after a read lands in the same
  place as a kill before the next call, so the stride samples the read-only stretches.

The full sweep (every call of every phase, ~150 kill points, ~20 minutes) is
``python -m tests.reliability.crash_harness --full``; it prints the same table.

After each phase, counted in the fakes' state by this object's stamp: one VM (RUNNING),
one live tunnel and one DNS record while the object exists; none once it is deleted, and
the object itself gone (the finalizer was released).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from dd_devcluster.cluster import LocalCluster
from tests.reliability.crash_harness import (
    PHASES,
    CrashRig,
    PointResult,
    Totals,
    format_table,
    measure,
    sweep,
)

pytestmark = pytest.mark.cluster

STRIDE = 12
"""Every 12th call of each phase (~5 kill points each, ~55 calls per phase)."""


@pytest.fixture(scope="module")
def rig(cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CrashRig]:
    namespace = f"crash-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", namespace)
    workdir: Path = tmp_path_factory.mktemp("crash")
    with CrashRig(cluster, namespace, workdir) as r:
        yield r


@pytest.fixture(scope="module")
def totals(rig: CrashRig) -> Totals:
    t = measure(rig)
    assert all(t.mutating[p] >= 1 for p in PHASES), t
    return t


def _report(totals: Totals, results: list[PointResult]) -> str:
    table = format_table(totals, results)
    print(table)
    details = "\n\n".join(r.detail for r in results if r.leaked)
    return f"{table}\n{details}"


def test_killed_after_every_mutating_cloud_call_every_phase_converges_without_leaks(
    rig: CrashRig, totals: Totals
) -> None:
    results = sweep(rig, totals.mutating, mutating_only=True)
    report = _report(totals, results)
    assert all(r.converged for r in results), report
    for phase in PHASES:
        fired = [r for r in results if r.phase == phase and r.fired_on]
        assert len(fired) == totals.mutating[phase], report


def test_killed_after_every_kth_cloud_call_reads_included_converges_without_leaks(
    rig: CrashRig, totals: Totals
) -> None:
    results = sweep(rig, totals.calls, stride=STRIDE)
    report = _report(totals, results)
    assert all(r.converged for r in results), report
    assert sum(r.fired_on is not None for r in results) >= len(PHASES), report
