"""End to end with ``provider: gce``: the operator process, the real apiserver, kubectl and the
fake Compute API booting real control planes from the rendered user-data.

What a user sees: the object turns Ready with ``status.url`` pointing at the VM's own
control plane (no edge), a new commit ends with exactly one RUNNING instance (listed the
way ``gcloud compute instances list --filter labels.dd-uid=...`` would), and after
``kubectl delete`` the project holds no instance of the object.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from dd_devcluster.cluster import LocalCluster
from tests.integration.providers.gce.conftest import ZONES
from tests.integration.providers.gce.fake import FakeCompute
from tests.integration.providers.gce.user_view import instances, operator_env
from tests.support.k8s import SHA_A, SHA_B, apply, condition, get, is_ready_with, preview
from tests.support.wait import wait_for

pytestmark = pytest.mark.cluster


@pytest.fixture
def compute() -> Iterator[FakeCompute]:
    with FakeCompute(step_seconds=0.05, boot_control_planes=True) as fake:
        yield fake


def _calls(compute: FakeCompute) -> int:
    return sum(compute.calls().values())


def test_apply_ready_new_commit_one_running_vm_then_delete_leaves_no_instance(
    cluster: LocalCluster, namespace: str, operator_factory: object, compute: FakeCompute
) -> None:
    operator_factory(env=operator_env(compute))  # type: ignore[operator]
    apply(cluster, namespace, preview("pr-21", pr=21, sha=SHA_A, provider="gce", ttl="2h"))
    obj = wait_for(
        lambda: (o := get(cluster, namespace, "pr-21")) and is_ready_with(o, SHA_A) and o,
        timeout=60, message="Ready with build A",
    )
    uid = obj["metadata"]["uid"]
    created = compute.calls()
    vm = obj["status"]["vm"]
    assert (vm["zone"], vm["status"]) == (ZONES[0], "RUNNING")
    assert instances(compute, uid) == [(vm["name"], ZONES[0], "RUNNING")]
    health = httpx.get(f"{obj['status']['url']}/health", timeout=5).json()
    assert (health["build"], health["env"]) == (SHA_A, "pr-21")
    assert condition(obj, "VMReady")["reason"] == "Running"

    apply(cluster, namespace, preview("pr-21", pr=21, sha=SHA_B, provider="gce", ttl="2h"))
    obj = wait_for(
        lambda: (o := get(cluster, namespace, "pr-21")) and is_ready_with(o, SHA_B) and o,
        timeout=60, message="Ready with build B",
    )
    new = obj["status"]["vm"]["name"]
    assert new != vm["name"]
    wait_for(lambda: instances(compute, uid) == [(new, ZONES[0], "RUNNING")], timeout=30,
             message="the old VM deleted, exactly one RUNNING")
    assert httpx.get(f"{obj['status']['url']}/health", timeout=5).json()["build"] == SHA_B
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://{vm['name']}.invalid", timeout=1)

    compute.reset_calls()
    cluster.kubectl("delete", "pe", "pr-21", "-n", namespace, "--wait=false")
    wait_for(lambda: get(cluster, namespace, "pr-21") is None, timeout=60, message="object gone")
    assert instances(compute, uid) == []
    deleted = compute.calls()
    print("GCE calls, create -> Ready:", sum(created.values()), created)
    print("GCE calls, Ready -> deleted:", sum(deleted.values()), deleted)


PERMANENT = {
    "machine type c3-bogus-4": (
        {"vm": {"machineType": "c3-bogus-4"}}, {}, "InvalidMachineType", "c3-bogus-4"
    ),
    "unknown image family": (
        {}, {"DD_GCP_IMAGE_FAMILY": "no-such-family"}, "ImageNotFound", "no-such-family"
    ),
}


@pytest.mark.parametrize(("spec", "env", "reason", "named"), PERMANENT.values(),
                         ids=PERMANENT.keys())
def test_permanent_gce_error_is_a_condition_without_a_retry_loop(
    spec: dict[str, object], env: dict[str, str], reason: str, named: str,
    cluster: LocalCluster, namespace: str, operator_factory: object, compute: FakeCompute,
) -> None:
    operator_factory(env=operator_env(compute, **env))  # type: ignore[operator]
    apply(cluster, namespace, preview("pr-22", pr=22, sha=SHA_A, provider="gce", **spec))
    obj = wait_for(
        lambda: (o := get(cluster, namespace, "pr-22"))
        and condition(o, "Ready").get("reason") == reason and o,
        timeout=60, message=f"Ready False with reason {reason}",
    )
    ready, vm_ready = condition(obj, "Ready"), condition(obj, "VMReady")
    assert (ready["status"], vm_ready["status"], vm_ready["reason"]) == ("False", "False", reason)
    assert named in ready["message"], ready["message"]
    assert compute.calls().get("instances.insert") == 1
    # No hot loop: a few seconds later the operator still has not asked again.
    time_to_watch = 4.0
    deadline = time.monotonic() + time_to_watch
    wait_for(lambda: time.monotonic() > deadline, timeout=time_to_watch + 1, interval=0.5,
             message="the watch window")
    assert compute.calls().get("instances.insert") == 1, compute.calls()
    assert instances(compute, obj["metadata"]["uid"]) == []
    events = cluster.kubectl("get", "events", "-n", namespace, "-o", "name").stdout
    print(f"\nGCE calls: {compute.calls()} events: {len(events.split())}")
