"""A user with edit rights on status must not be able to reach another environment.

DESIGN 3.2 invariant 2: nothing is adopted or deleted without an ownership-stamp match.
Status is writable by anyone who may ``kubectl patch --subresource=status``; the names
in it are hints for finding our own VMs, never authority over someone else's.
"""

from __future__ import annotations

import json

import httpx
import pytest

from dd_devcluster.cluster import LocalCluster
from dd_devcluster.operator_process import OperatorProcess
from tests.support.k8s import SHA_A, apply, get, local_processes, preview
from tests.support.wait import wait_for

from .support import everything_a_user_sees, gone, one_process, ready, secret_values

pytestmark = pytest.mark.cluster


def test_forged_instances_in_status_never_touch_another_environment_and_no_token_leaks(
    cluster: LocalCluster, namespace: str, operator_factory: object
) -> None:
    op: OperatorProcess = operator_factory()  # type: ignore[operator]
    apply(cluster, namespace, preview("victim", pr=1, sha=SHA_A))
    apply(cluster, namespace, preview("attacker", pr=2, sha=SHA_A))
    victim = ready(cluster, namespace, "victim", SHA_A)
    attacker = ready(cluster, namespace, "attacker", SHA_A)
    victim_proc = one_process(victim["metadata"]["uid"])
    victim_vm = victim["status"]["vm"]["name"]

    forged = {
        "status": {
            "instances": [
                *attacker["status"]["instances"],
                {"name": victim_vm, "build": SHA_A, "attempt": 0},
                {"name": "../../../victim-file", "build": SHA_A, "attempt": 0},
            ],
            "vm": {**attacker["status"]["vm"], "name": victim_vm},
        }
    }
    cluster.kubectl(
        "patch", "pe", "attacker", "-n", namespace, "--subresource=status", "--type=merge",
        "-p", json.dumps(forged),
    )
    # A restarted operator reads the forged status afresh (the daemon's first pass).
    op.restart()
    ready(cluster, namespace, "attacker", SHA_A)
    cluster.kubectl("delete", "pe", "attacker", "-n", namespace, "--wait=false")
    wait_for(gone(cluster, namespace, "attacker"), timeout=60, message="attacker torn down")
    assert local_processes(attacker["metadata"]["uid"]) == []

    # The victim's control plane is the same process, still serving, still Ready.
    assert [p["pid"] for p in local_processes(victim["metadata"]["uid"])] == [victim_proc["pid"]]
    health = httpx.get(f"{victim['status']['url']}/health", timeout=5)
    assert health.status_code == 200 and health.json()["env"] == "pr-1"
    assert get(cluster, namespace, "victim")["status"]["vm"]["name"] == victim_vm

    # Tokens never show up where a namespace reader can see them (the Secret aside).
    tokens = secret_values(cluster, namespace)
    assert tokens, "the victim's Secret holds its attest token"
    seen = everything_a_user_sees(cluster, namespace, op)
    for token in tokens:
        assert token not in seen
    assert not any(
        s.startswith("secret/attacker") for s in
        cluster.kubectl("get", "secrets", "-n", namespace, "-o", "name").stdout.split()
    ), "the attacker's Secret was deleted at teardown"
