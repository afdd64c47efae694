"""End to end on the real apiserver with the local provider: what a user sees."""

from __future__ import annotations

import httpx
import pytest

from dd_devcluster.cluster import LocalCluster
from tests.support.k8s import (
    SHA_A,
    SHA_B,
    apply,
    condition,
    get,
    is_ready_with,
    local_processes,
    preview,
)
from tests.support.wait import wait_for

pytestmark = pytest.mark.cluster


def test_apply_ready_new_commit_replaces_process_then_delete_leaves_nothing(
    cluster: LocalCluster, namespace: str, operator: object
) -> None:
    apply(cluster, namespace, preview("pr-7", pr=7, sha=SHA_A, ttl="2h"))
    obj = wait_for(
        lambda: (o := get(cluster, namespace, "pr-7")) and is_ready_with(o, SHA_A) and o,
        timeout=90, message="Ready with build A",
    )
    url = obj["status"]["url"]
    health = httpx.get(f"{url}/health", timeout=5).json()
    assert health["build"] == SHA_A and health["env"] == "pr-7"
    assert obj["status"]["shortSha"] == SHA_A[:7]
    assert obj["status"]["expiresAt"]
    assert condition(obj, "Ready")["observedGeneration"] == obj["metadata"]["generation"]
    uid = obj["metadata"]["uid"]
    assert len(local_processes(uid)) == 1

    columns = cluster.kubectl("get", "pe", "pr-7", "-n", namespace).stdout.splitlines()
    assert columns[0].split() == ["NAME", "PR", "SHA", "READY", "REASON", "URL", "EXPIRES", "AGE"]
    assert columns[1].split()[:6] == ["pr-7", "7", SHA_A[:7], "True", "Serving", url]

    apply(cluster, namespace, preview("pr-7", pr=7, sha=SHA_B, ttl="2h"))
    obj = wait_for(
        lambda: (o := get(cluster, namespace, "pr-7")) and is_ready_with(o, SHA_B) and o,
        timeout=90, message="Ready with build B",
    )
    # After convergence exactly one process serves the environment, with the new build.
    procs = wait_for(
        lambda: (p := local_processes(uid)) and len(p) == 1 and p, timeout=30,
        message="the old process to stop",
    )
    assert procs[0]["DD_BUILD_SHA"] == SHA_B
    new_url = obj["status"]["url"]
    assert httpx.get(f"{new_url}/health", timeout=5).json()["build"] == SHA_B
    wait_for(
        lambda: len(get(cluster, namespace, "pr-7")["status"]["instances"]) == 1,
        timeout=30, message="the old instance forgotten",
    )

    cluster.kubectl("delete", "pe", "pr-7", "-n", namespace, "--wait=false")
    wait_for(lambda: get(cluster, namespace, "pr-7") is None, timeout=60, message="object gone")
    assert local_processes(uid) == []
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{new_url}/health", timeout=2)
    secrets = cluster.kubectl("get", "secrets", "-n", namespace, "-o", "name").stdout
    assert "dd-preview" not in secrets


def test_invalid_stored_spec_becomes_a_condition_not_a_crash(
    cluster: LocalCluster, namespace: str, operator: object
) -> None:
    # provider gce is valid for the schema but this operator has no GCE project configured.
    apply(cluster, namespace, preview("pr-8", pr=8, sha=SHA_A, provider="gce"))
    obj = wait_for(
        lambda: (o := get(cluster, namespace, "pr-8")) and condition(o, "Ready").get("reason") and o,
        timeout=60, message="a Ready condition",
    )
    ready = condition(obj, "Ready")
    assert ready["status"] == "False"
    assert ready["reason"] == "ProviderNotConfigured"
    assert "provider 'gce' is not configured" in ready["message"]
    cluster.kubectl("delete", "pe", "pr-8", "-n", namespace, "--wait=false")
    wait_for(lambda: get(cluster, namespace, "pr-8") is None, timeout=60, message="object gone")
