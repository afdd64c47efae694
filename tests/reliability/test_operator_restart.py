"""An operator that dies mid-lifecycle resumes without duplicates (DESIGN 3.2, invariant 3)."""

from __future__ import annotations

import pytest

from dd_devcluster.cluster import LocalCluster
from tests.support.k8s import SHA_A, SHA_B, apply, get, is_ready_with, local_processes, preview
from tests.support.wait import wait_for

pytestmark = pytest.mark.cluster


def test_killed_right_after_recording_the_vm_resumes_with_one_process(
    cluster: LocalCluster, namespace: str, operator_factory
) -> None:
    op = operator_factory()
    apply(cluster, namespace, preview("pr-9", pr=9, sha=SHA_A))
    # The instance is recorded in status before it is created: kill right there.
    wait_for(
        lambda: (get(cluster, namespace, "pr-9") or {}).get("status", {}).get("instances"),
        timeout=60, interval=0.02, message="the instance intent in status",
    )
    op.kill()
    uid = get(cluster, namespace, "pr-9")["metadata"]["uid"]
    op.start()
    wait_for(lambda: is_ready_with(get(cluster, namespace, "pr-9"), SHA_A), timeout=90, message="Ready")
    assert len(local_processes(uid)) == 1

    # Kill again in the middle of a blue/green replacement.
    apply(cluster, namespace, preview("pr-9", pr=9, sha=SHA_B))
    wait_for(lambda: len(local_processes(uid)) == 2, timeout=60, interval=0.05, message="new VM booting")
    op.kill()
    op.start()
    wait_for(lambda: is_ready_with(get(cluster, namespace, "pr-9"), SHA_B), timeout=90, message="Ready on B")
    procs = wait_for(lambda: (p := local_processes(uid)) and len(p) == 1 and p, timeout=30, message="one process")
    assert procs[0]["DD_BUILD_SHA"] == SHA_B

    cluster.kubectl("delete", "pe", "pr-9", "-n", namespace, "--wait=false")
    wait_for(lambda: get(cluster, namespace, "pr-9") is None, timeout=60, message="object gone")
    assert local_processes(uid) == []


def test_killed_during_teardown_releases_the_finalizer_after_restart(
    cluster: LocalCluster, namespace: str, operator_factory
) -> None:
    op = operator_factory()
    apply(cluster, namespace, preview("pr-10", pr=10, sha=SHA_A))
    wait_for(lambda: is_ready_with(get(cluster, namespace, "pr-10"), SHA_A), timeout=90, message="Ready")
    uid = get(cluster, namespace, "pr-10")["metadata"]["uid"]
    op.kill()
    cluster.kubectl("delete", "pe", "pr-10", "-n", namespace, "--wait=false")
    assert get(cluster, namespace, "pr-10")["metadata"]["deletionTimestamp"]
    op.start()
    wait_for(lambda: get(cluster, namespace, "pr-10") is None, timeout=60, message="object gone")
    assert local_processes(uid) == []
