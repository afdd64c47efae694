"""End to end with DD_EDGE=cloudflare: the operator process, the real apiserver, the fake GCE
booting real control planes, and the fake Cloudflare API + edge in front of them.

What a user sees: the object turns Ready with ``status.url = https://pr-N.{zone}``, curl of
that URL answers through the edge, and after ``kubectl delete`` the Cloudflare account holds
zero tunnels and zero records carrying the object's stamp.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from dd_devcluster.cluster import LocalCluster
from tests.integration.providers.cloudflare.fake import FakeCloudflare, cloudflare_connector_hook
from tests.integration.providers.gce.conftest import PROJECT, ZONES
from tests.integration.providers.gce.fake import FakeCompute
from tests.support.k8s import SHA_A, apply, get, is_ready_with, preview
from tests.support.wait import wait_for

pytestmark = pytest.mark.cluster


def test_ready_through_the_cloudflare_edge_then_delete_leaves_no_stamped_object(
    cluster: LocalCluster, namespace: str, operator_factory: object
) -> None:
    with FakeCloudflare() as cf, FakeCompute(
        project=PROJECT, step_seconds=0.05, boot_control_planes=True,
        connector_hook=cloudflare_connector_hook(cf),
    ) as compute:
        operator_factory(env={  # type: ignore[operator]
            **cf.env(), **compute.env(), "DD_GCP_ZONES": ",".join(ZONES),
        })
        apply(cluster, namespace, preview("pr-9", pr=9, sha=SHA_A, provider="gce"))
        obj = wait_for(
            lambda: (o := get(cluster, namespace, "pr-9")) and is_ready_with(o, SHA_A) and o,
            timeout=120, message="Ready through the Cloudflare edge",
        )
        hostname = f"pr-9.{cf.zone_name}"
        assert obj["status"]["url"] == f"https://{hostname}"
        curl = subprocess.run(
            ["curl", "-sS", "--fail", "--cacert", str(cf.ca_file),
             "--connect-to", f"{hostname}:443:{cf.edge_address}", f"https://{hostname}/health"],
            capture_output=True, text=True, timeout=30, check=False,
        )
        assert curl.returncode == 0, curl.stderr
        assert json.loads(curl.stdout)["build"] == SHA_A
        owner = f"ddp.test.{obj['metadata']['uid']}"
        assert [t.name for t in cf.live_tunnels() if owner in t.name]
        assert [r.name for r in cf.all_records() if owner in (r.comment or "")] == [hostname]

        cluster.kubectl("delete", "pe", "pr-9", "-n", namespace, "--wait=false")
        wait_for(lambda: get(cluster, namespace, "pr-9") is None, timeout=120,
                 message="object gone")
        assert [t.name for t in cf.live_tunnels() if owner in t.name] == []
        assert [r.name for r in cf.all_records() if owner in (r.comment or "")] == []
        assert compute.secret_manager.secret_ids() == []  # the VM tokens went with the VMs
        assert 429 not in [c["status"] for c in cf.call_log()]
        print("cloudflare calls:", [f"{c['method']} {c['path']} {c['status']}"
                                    for c in cf.call_log()])
