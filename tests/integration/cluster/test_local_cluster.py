"""The local cluster harness: real apiserver, RBAC on, and nothing left behind."""

from __future__ import annotations

import os

import pytest
import yaml

from dd_devcluster.cluster import LocalCluster

pytestmark = pytest.mark.cluster


def test_start_serves_rbac_and_stop_leaves_no_process_or_files(cluster: LocalCluster) -> None:
    c = LocalCluster(cluster.binaries).start()
    pid, workdir = c._proc.pid, c.dir  # type: ignore[union-attr]
    try:
        assert c.kubectl("version").stdout.count("v1.34") == 2  # client and server agree
        kubeconfig = yaml.safe_load(c.kubeconfig.read_text())
        assert kubeconfig["clusters"][0]["cluster"]["server"].startswith("https://127.0.0.1:")
        # RBAC is enforced: an unknown identity may do nothing.
        denied = c.kubectl(
            "auth", "can-i", "list", "secrets", "--as=system:serviceaccount:default:nobody",
            check=False,
        )
        assert (denied.stdout.strip(), denied.returncode) == ("no", 1)
        assert c.kubectl("auth", "can-i", "list", "secrets").stdout.strip() == "yes"
    finally:
        c.stop()
    assert not workdir.exists()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_restart_keeps_the_data(cluster: LocalCluster) -> None:
    c = LocalCluster(cluster.binaries).start()
    try:
        c.kubectl("create", "namespace", "survives-restart")
        c.restart()
        assert "survives-restart" in c.kubectl("get", "ns", "-o", "name").stdout
    finally:
        c.stop()
