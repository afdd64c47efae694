"""TTL and suspend end to end: the operator process, the real apiserver, the local provider.

What a user sees: an environment warns ``ExpiringSoon`` before its ttl passes, then is
deleted and torn down (no control plane left); the keep annotation pins one past its
expiry; ``suspend: true`` stops the control plane but keeps the VM record (Ready False,
reason Suspended) and the reaper leaves that stopped VM alone; ``suspend: false`` brings
back the same instance. (Without an edge, a suspended environment's URL simply refuses
connections; with DD_EDGE=cloudflare the hostname answers 503, see README.)
"""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

import httpx
import pytest

from dd_devcluster.cluster import LocalCluster
from dd_operator.naming import KEEP_ANNOTATION
from tests.e2e.test_reaper import new_cluster_id, reaper_env, sample, scrape
from tests.integration.providers.cloudflare.fake import FakeCloudflare, cloudflare_connector_hook
from tests.integration.providers.gce.conftest import PROJECT, ZONES
from tests.integration.providers.gce.fake import FakeCompute
from tests.support.k8s import SHA_A, apply, condition, get, is_ready_with, local_processes, preview
from tests.support.wait import wait_for

pytestmark = pytest.mark.cluster


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def events_for(cluster: LocalCluster, namespace: str, name: str) -> list[dict[str, str]]:
    out = cluster.kubectl(
        "get", "events", "-n", namespace, "--field-selector",
        f"involvedObject.kind=PreviewEnvironment,involvedObject.name={name}", "-o", "json",
    ).stdout
    return [{"reason": e["reason"], "type": e["type"], "message": e["message"]}
            for e in json.loads(out)["items"]]


def test_ttl_warns_then_expires_and_tears_down_while_keep_pins(
    cluster: LocalCluster, namespace: str, operator_factory: object
) -> None:
    port = free_port()
    operator_factory(env=reaper_env(  # type: ignore[operator]
        namespace, port, new_cluster_id(), DD_REAPER_INTERVAL_SECONDS="2",
        DD_EXPIRY_WARNING_SECONDS="3600"))
    apply(cluster, namespace, preview("pr-31", pr=31, sha=SHA_A, ttl="45s"))
    pinned = preview("pr-32", pr=32, sha=SHA_A, ttl="5s")
    pinned["metadata"]["annotations"] = {KEEP_ANNOTATION: "true"}
    apply(cluster, namespace, pinned)

    obj = wait_for(lambda: (o := get(cluster, namespace, "pr-31"))
                   and o.get("status", {}).get("expiryWarnedFor") and o,
                   timeout=120, message="the expiry warning recorded")
    assert obj["status"]["expiryWarnedFor"] == obj["status"]["expiresAt"]
    warning = next(e for e in events_for(cluster, namespace, "pr-31")
                   if e["reason"] == "ExpiringSoon")
    assert warning["type"] == "Warning" and obj["status"]["expiresAt"] in warning["message"]
    columns = cluster.kubectl("get", "pe", "pr-31", "-n", namespace).stdout.splitlines()
    assert obj["status"]["expiresAt"] in columns[1].split()
    uid = obj["metadata"]["uid"]
    wait_for(lambda: local_processes(uid), timeout=120, message="pr-31's control plane running")

    wait_for(lambda: get(cluster, namespace, "pr-31") is None, timeout=180,
             message="pr-31 deleted once its ttl passed")
    assert local_processes(uid) == []
    assert "Expired" in [e["reason"] for e in events_for(cluster, namespace, "pr-31")]
    assert sample(port, "dd_preview_reaper_expirations_total") == 1

    # pr-32 expired long ago, but it is pinned: more sweeps go by and it stays.
    swept = sample(port, "dd_preview_reaper_sweeps_total", outcome="complete")
    wait_for(lambda: sample(port, "dd_preview_reaper_sweeps_total", outcome="complete")
             >= swept + 3, timeout=60, message="three more sweeps")
    kept = get(cluster, namespace, "pr-32")
    assert kept is not None and not kept["metadata"].get("deletionTimestamp")
    assert sample(port, "dd_preview_reaper_expirations_total") == 1
    cluster.kubectl("delete", "pe", "pr-32", "-n", namespace, "--wait=false")
    wait_for(lambda: get(cluster, namespace, "pr-32") is None, timeout=120,
             message="pr-32 deleted")


def test_suspend_stops_the_process_keeps_the_vm_and_resume_brings_the_same_instance_back(
    cluster: LocalCluster, namespace: str, operator_factory: object, tmp_path: Path
) -> None:
    port = free_port()
    cluster_id = new_cluster_id()
    operator_factory(env=reaper_env(namespace, port, cluster_id))  # type: ignore[operator]
    apply(cluster, namespace, preview("pr-33", pr=33, sha=SHA_A))
    obj = wait_for(lambda: (o := get(cluster, namespace, "pr-33")) and is_ready_with(o, SHA_A)
                   and o, timeout=150, message="Ready")
    uid, url = obj["metadata"]["uid"], obj["status"]["url"]
    instance = obj["status"]["vm"]["name"]
    record = tmp_path / "vms" / cluster_id / f"{instance}.json"
    assert record.exists()

    cluster.kubectl("patch", "pe", "pr-33", "-n", namespace, "--type=merge",
                    "-p", '{"spec":{"suspend":true}}')
    obj = wait_for(lambda: (o := get(cluster, namespace, "pr-33"))
                   and condition(o, "Ready").get("reason") == "Suspended" and o,
                   timeout=90, message="Ready False, reason Suspended")
    assert condition(obj, "Ready")["status"] == "False"
    wait_for(lambda: local_processes(uid) == [], timeout=60, message="the process stopped")
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{url}/health", timeout=3)
    # The reaper sweeps on: the stopped VM is recorded by its live owner, so it stays.
    swept = sample(port, "dd_preview_reaper_sweeps_total", outcome="complete")
    wait_for(lambda: sample(port, "dd_preview_reaper_sweeps_total", outcome="complete")
             >= swept + 3, timeout=90, message="three sweeps while suspended")
    assert record.exists()
    assert [i["name"] for i in get(cluster, namespace, "pr-33")["status"]["instances"]] == [
        instance]

    cluster.kubectl("patch", "pe", "pr-33", "-n", namespace, "--type=merge",
                    "-p", '{"spec":{"suspend":false}}')
    obj = wait_for(lambda: (o := get(cluster, namespace, "pr-33")) and is_ready_with(o, SHA_A)
                   and o, timeout=150, message="Ready again after resume")
    assert obj["status"]["vm"]["name"] == instance
    (proc,) = local_processes(uid)
    assert proc["DD_INSTANCE"] == instance
    assert httpx.get(f"{obj['status']['url']}/health", timeout=10).json()["build"] == SHA_A
    assert sum(v for (name, _), v in scrape(port).items()
               if name == "dd_preview_reaper_deletions_total") == 0


def curl_status(cf: FakeCloudflare, hostname: str) -> str:
    out = subprocess.run(
        ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", str(cf.ca_file),
         "--connect-to", f"{hostname}:443:{cf.edge_address}", f"https://{hostname}/health"],
        capture_output=True, text=True, timeout=30, check=False,
    )
    return out.stdout


def test_suspended_environment_answers_503_through_the_cloudflare_edge_until_resumed(
    cluster: LocalCluster, namespace: str, operator_factory: object
) -> None:
    with FakeCloudflare() as cf, FakeCompute(
        project=PROJECT, step_seconds=0.05, boot_control_planes=True,
        connector_hook=cloudflare_connector_hook(cf),
    ) as compute:
        operator_factory(env={  # type: ignore[operator]
            **cf.env(), **compute.env(), "DD_GCP_ZONES": ",".join(ZONES),
            **reaper_env(namespace, free_port(), new_cluster_id()),
        })
        apply(cluster, namespace, preview("pr-34", pr=34, sha=SHA_A, provider="gce"))
        obj = wait_for(lambda: (o := get(cluster, namespace, "pr-34")) and is_ready_with(o, SHA_A)
                       and o, timeout=180, message="Ready through the edge")
        hostname, instance = f"pr-34.{cf.zone_name}", obj["status"]["vm"]["name"]
        assert curl_status(cf, hostname) == "200"
        tunnels, records = len(cf.live_tunnels()), len(cf.all_records())

        cluster.kubectl("patch", "pe", "pr-34", "-n", namespace, "--type=merge",
                        "-p", '{"spec":{"suspend":true}}')
        wait_for(lambda: condition(get(cluster, namespace, "pr-34"), "Ready").get("reason")
                 == "Suspended", timeout=120, message="Ready False, reason Suspended")
        wait_for(lambda: curl_status(cf, hostname) == "503", timeout=60,
                 message="the hostname answering 503 while suspended")
        wait_for(lambda: instance in compute.instance_names()
                 and get(cluster, namespace, "pr-34")["status"]["vm"]["status"] == "TERMINATED",
                 timeout=120, message="the VM stopped, not deleted")
        assert (len(cf.live_tunnels()), len(cf.all_records())) == (tunnels, records)

        cluster.kubectl("patch", "pe", "pr-34", "-n", namespace, "--type=merge",
                        "-p", '{"spec":{"suspend":false}}')
        obj = wait_for(lambda: (o := get(cluster, namespace, "pr-34"))
                       and is_ready_with(o, SHA_A) and o, timeout=180, message="Ready again")
        assert obj["status"]["vm"]["name"] == instance
        wait_for(lambda: curl_status(cf, hostname) == "200", timeout=60,
                 message="the hostname serving again")
