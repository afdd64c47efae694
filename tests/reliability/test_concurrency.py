"""Things that happen around a running operator: a delete mid-create, an apiserver restart,
and cloud resources deleted out of band (drift). Each is observed through kubectl and the
fakes' state, counted by the object's ownership stamp (DESIGN §3.2).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dd_devcluster.cluster import LocalCluster
from dd_operator.naming import Stamp
from tests.reliability.crash_harness import CrashRig
from tests.support.k8s import SHA_A, SHA_B, apply, get, is_ready_with, preview
from tests.support.wait import wait_for

pytestmark = pytest.mark.cluster


@pytest.fixture
def rig(cluster: LocalCluster, namespace: str, tmp_path: Path) -> Iterator[CrashRig]:
    with CrashRig(cluster, namespace, tmp_path) as r:
        yield r


def _serving(rig: CrashRig, name: str, stamp: Stamp, sha: str) -> bool:
    census = rig.census(stamp)
    return (
        census.counts() == (1, 1, 1)
        and census.vms[0][1] == "RUNNING"
        and is_ready_with(get(rig.cluster, rig.namespace, name), sha)
    )


def _create(rig: CrashRig, name: str, pr: int) -> Stamp:
    apply(rig.cluster, rig.namespace, preview(name, pr=pr, sha=SHA_A, provider="gce"))
    stamp = rig.stamp_of(name)
    wait_for(lambda: _serving(rig, name, stamp, SHA_A), timeout=120, message=f"{name} Ready")
    return stamp


def _delete_and_check_nothing_left(rig: CrashRig, name: str, stamp: Stamp) -> None:
    rig.cluster.kubectl("delete", "pe", name, "-n", rig.namespace, "--wait=false")
    wait_for(
        lambda: get(rig.cluster, rig.namespace, name) is None
        and rig.census(stamp).nothing_left,
        timeout=120,
        message=f"{name} gone with nothing stamped left ({rig.census(stamp)})",
    )


def test_object_deleted_while_its_vm_insert_is_in_flight_is_torn_down_completely(
    rig: CrashRig,
) -> None:
    apply(rig.cluster, rig.namespace, preview("pr-31", pr=31, sha=SHA_A, provider="gce"))
    stamp = rig.stamp_of("pr-31")
    wait_for(
        lambda: "gce instances.insert" in rig.switch.served_calls,
        timeout=90, interval=0.02, message="the VM insert was sent",
    )
    _delete_and_check_nothing_left(rig, "pr-31", stamp)


def test_object_deleted_right_after_its_tunnel_is_created_is_torn_down_completely(
    rig: CrashRig,
) -> None:
    apply(rig.cluster, rig.namespace, preview("pr-32", pr=32, sha=SHA_A, provider="gce"))
    stamp = rig.stamp_of("pr-32")
    wait_for(
        lambda: any(c.startswith("cloudflare POST") for c in rig.switch.served_calls),
        timeout=90, interval=0.02, message="the tunnel create was sent",
    )
    _delete_and_check_nothing_left(rig, "pr-32", stamp)


def test_apiserver_restart_mid_create_is_recovered_without_touching_the_operator(
    rig: CrashRig,
) -> None:
    assert rig.operator is not None and rig.operator.proc is not None
    pid = rig.operator.proc.pid
    apply(rig.cluster, rig.namespace, preview("pr-33", pr=33, sha=SHA_A, provider="gce"))
    stamp = rig.stamp_of("pr-33")
    wait_for(
        lambda: any(c.startswith("cloudflare POST") for c in rig.switch.served_calls),
        timeout=90, interval=0.05, message="the create under way",
    )
    rig.cluster.restart()
    wait_for(lambda: _serving(rig, "pr-33", stamp, SHA_A), timeout=180,
             message="Ready after the apiserver restart")
    # The watch is live again: a new commit is picked up and rolled out.
    apply(rig.cluster, rig.namespace, preview("pr-33", pr=33, sha=SHA_B, provider="gce"))
    wait_for(lambda: _serving(rig, "pr-33", stamp, SHA_B), timeout=180, message="Ready on B")
    assert rig.operator.running and rig.operator.proc.pid == pid, "the operator was restarted"
    _delete_and_check_nothing_left(rig, "pr-33", stamp)


def test_vm_deleted_out_of_band_is_recreated(rig: CrashRig) -> None:
    stamp = _create(rig, "pr-34", 34)
    [(vm_name, _)] = rig.census(stamp).vms
    assert rig.compute is not None and rig.compute.remove_instance(vm_name)
    wait_for(lambda: rig.census(stamp).counts()[0] == 0, timeout=5, message="VM gone")
    wait_for(lambda: _serving(rig, "pr-34", stamp, SHA_A), timeout=120,
             message=f"VM recreated ({rig.census(stamp)})")
    _delete_and_check_nothing_left(rig, "pr-34", stamp)


def test_dns_record_deleted_out_of_band_is_recreated(rig: CrashRig) -> None:
    stamp = _create(rig, "pr-35", 35)
    cf = rig.cloudflare
    assert cf is not None
    [record] = [r for r in cf.all_records() if r.name == f"pr-35.{cf.zone_name}"]
    reply = httpx.delete(
        f"{cf.api_url}/zones/{cf.zone_id}/dns_records/{record.id}",
        headers={"Authorization": f"Bearer {cf.api_token}"},
    )
    assert reply.status_code == 200, reply.text
    wait_for(lambda: _serving(rig, "pr-35", stamp, SHA_A) and [
        r for r in cf.all_records() if r.name == record.name and r.id != record.id
    ], timeout=120, message=f"record recreated ({rig.census(stamp)})")
    _delete_and_check_nothing_left(rig, "pr-35", stamp)
