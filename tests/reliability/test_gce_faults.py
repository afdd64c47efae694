"""Operator-level fault matrix for ``provider: gce``: the fake Compute API's fault switches
against the real operator process, apiserver and kubectl.

Every test is one environment (one namespace, one operator, one PreviewEnvironment) with
its faults switched on before ``kubectl apply``. Faults that pass must converge to Ready
with exactly one RUNNING instance (listed as a user would, through the API); faults that
stay must show up in kubectl as a condition that says what is wrong, without a hot loop.
Rows group faults of one family so the file stays around a minute or two. Each row
prints its GCE calls (the report's fault matrix); asserted bounds catch hot loops rather
than pinning exact counts, because the operator polls on a clock (the provider-level
matrix, tests/integration/providers/gce/test_fault_matrix.py, pins exact ones).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from dd_devcluster.cluster import LocalCluster
from dd_devcluster.operator_process import OperatorProcess
from tests.integration.providers.gce.conftest import ZONES
from tests.integration.providers.gce.fake import FakeCompute, Fault
from tests.integration.providers.gce.user_view import instances, operator_env
from tests.support.k8s import SHA_A, apply, condition, get, is_ready_with, preview
from tests.support.wait import wait_for

pytestmark = pytest.mark.cluster


@dataclass(frozen=True)
class Row:
    faults: tuple[Fault, ...]
    zone: str = ZONES[0]
    """Where the VM must land."""
    max_inserts: int = 1
    delete: bool = False
    """Also delete the object with the faults still on, and check nothing is left."""


ROWS = {
    "rate limits: 429 insert (Retry-After 1), 403 rateLimitExceeded get": Row((
        Fault(kind="http", method="instances.insert", status=429, retry_after=1, times=1),
        Fault(kind="http", method="instances.get", status=403, reason="rateLimitExceeded",
              times=2),
    ), max_inserts=2),
    "server errors: 500 insert, 503 operation get, 503 stop and delete": Row((
        Fault(kind="http", method="instances.insert", status=500, times=1),
        Fault(kind="http", method="zoneOperations.get", status=503, times=2),
        Fault(kind="http", method="instances.stop", status=503, times=1),
        Fault(kind="http", method="instances.delete", status=503, times=1),
    ), max_inserts=2, delete=True),
    "timeouts: insert and delete done but answered after the client gave up": Row((
        Fault(kind="delay", method="instances.insert", seconds=3.0, times=1),
        Fault(kind="delay", method="instances.delete", seconds=3.0, times=1),
    ), delete=True),
    "zone fallback: a exhausted, b over quota": Row(
        (Fault(kind="zone_exhausted", zone=ZONES[0]), Fault(kind="quota_exceeded", zone=ZONES[1])),
        zone=ZONES[2], max_inserts=3,
    ),
    "list lag 60 s and operations purged once done": Row(
        (Fault(kind="list_lag", seconds=60), Fault(kind="purge_operations")), delete=True
    ),
}


@pytest.fixture
def compute() -> Iterator[FakeCompute]:
    with FakeCompute(step_seconds=0.05, boot_control_planes=True) as fake:
        yield fake


def _ready(cluster: LocalCluster, namespace: str, name: str) -> dict[str, object]:
    return wait_for(
        lambda: (o := get(cluster, namespace, name)) and is_ready_with(o, SHA_A) and o,
        timeout=90, message="Ready with build A",
    )


@pytest.mark.parametrize("row", ROWS.values(), ids=ROWS.keys())
def test_passing_faults_converge_to_one_running_vm(
    row: Row, cluster: LocalCluster, namespace: str, operator_factory: object,
    compute: FakeCompute,
) -> None:
    for fault in row.faults:
        compute.add_fault(fault)
    operator_factory(env=operator_env(compute))  # type: ignore[operator]
    apply(cluster, namespace, preview("pr-31", pr=31, sha=SHA_A, provider="gce"))
    obj = _ready(cluster, namespace, "pr-31")
    uid, vm = obj["metadata"]["uid"], obj["status"]["vm"]  # type: ignore[index]
    assert vm["zone"] == row.zone  # type: ignore[index]
    calls = compute.calls()
    assert calls.get("instances.insert", 0) <= row.max_inserts, calls
    print(f"\nGCE calls to Ready: {sum(calls.values())} {calls}")
    if row.delete:
        cluster.kubectl("delete", "pe", "pr-31", "-n", namespace, "--wait=false")
        wait_for(lambda: get(cluster, namespace, "pr-31") is None, timeout=90,
                 message="object gone")
        print(f"GCE calls to gone: {sum(compute.calls().values())} {compute.calls()}")
        compute.clear_faults()  # a lagging list would hide a leftover
        assert instances(compute, uid) == []
    else:
        compute.clear_faults()
        assert instances(compute, uid) == [(vm["name"], row.zone, "RUNNING")]  # type: ignore[index]


STUCK = {
    "403 forbidden on every call": (
        (Fault(kind="http", status=403, reason="forbidden"),), "PermissionDenied",
        "Grant the operator's service account",
    ),
    "quota exceeded in every zone": (
        (Fault(kind="quota_exceeded"),), "Retrying", "every candidate zone",
    ),
}


@pytest.mark.parametrize(("faults", "reason", "says"), STUCK.values(), ids=STUCK.keys())
def test_lasting_fault_is_a_condition_without_a_hot_loop(
    faults: tuple[Fault, ...], reason: str, says: str, cluster: LocalCluster, namespace: str,
    operator_factory: object, compute: FakeCompute,
) -> None:
    for fault in faults:
        compute.add_fault(fault)
    operator_factory(env=operator_env(compute))  # type: ignore[operator]
    apply(cluster, namespace, preview("pr-32", pr=32, sha=SHA_A, provider="gce"))
    obj = wait_for(
        lambda: (o := get(cluster, namespace, "pr-32"))
        and condition(o, "VMReady").get("reason") == reason and o,
        timeout=60, message=f"VMReady False with reason {reason}",
    )
    ready = condition(obj, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", reason), ready
    assert says in ready["message"], ready["message"]
    before = sum(compute.calls().values())
    deadline = time.monotonic() + 4.0
    wait_for(lambda: time.monotonic() > deadline, timeout=6, interval=0.5, message="4 s")
    after = compute.calls()
    print(f"GCE calls: {sum(after.values())} {after}")
    assert sum(after.values()) - before <= 3, (before, after)


def test_operator_killed_between_insert_and_status_write_leaves_one_vm(
    cluster: LocalCluster, namespace: str, operator_factory: object, compute: FakeCompute
) -> None:
    op: OperatorProcess = operator_factory(env=operator_env(compute))  # type: ignore[operator]
    assert op.proc is not None
    # The fake inserts the VM, then SIGKILLs the operator before answering: the operation
    # never reaches status, so only the recorded intent and the lookup by name remain.
    compute.kill_pid_after("instances.insert", 1, op.proc.pid)
    apply(cluster, namespace, preview("pr-33", pr=33, sha=SHA_A, provider="gce"))
    wait_for(lambda: not op.running, timeout=60, message="the operator killed by the insert")
    obj = get(cluster, namespace, "pr-33")
    assert obj is not None and not obj["status"].get("operation")
    [intent] = obj["status"]["instances"]
    uid = obj["metadata"]["uid"]
    assert [name for name, _, _ in instances(compute, uid)] == [intent["name"]]

    op.start()
    obj = _ready(cluster, namespace, "pr-33")
    assert compute.calls()["instances.insert"] == 1, compute.calls()
    assert instances(compute, uid) == [(intent["name"], ZONES[0], "RUNNING")]
    assert obj["status"]["vm"]["name"] == intent["name"]  # type: ignore[index]
