"""Helpers shared by the adversarial tests: reading what a user (or an attacker) can see."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

from dd_devcluster.cluster import LocalCluster
from dd_devcluster.operator_process import OperatorProcess
from tests.support.k8s import get, is_ready_with, local_processes
from tests.support.wait import wait_for


def ready(cluster: LocalCluster, namespace: str, name: str, sha: str) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        obj = get(cluster, namespace, name)
        return obj if obj is not None and is_ready_with(obj, sha) else None

    return wait_for(probe, timeout=60, message=f"{name} Ready with {sha[:7]}")


def one_process(uid: str) -> dict[str, str]:
    def probe() -> list[dict[str, str]] | None:
        procs = local_processes(uid)
        return procs if len(procs) == 1 else None

    return wait_for(probe, timeout=30, message=f"exactly one control plane for {uid}")[0]


def secret_values(cluster: LocalCluster, namespace: str) -> list[str]:
    """Every token in the namespace's dd-preview Secrets, decoded."""
    out = json.loads(cluster.kubectl("get", "secrets", "-n", namespace, "-o", "json").stdout)
    return [
        base64.b64decode(v).decode()
        for item in out["items"]
        if item["metadata"]["name"].endswith("-dd-preview")
        for v in (item.get("data") or {}).values()
    ]


def everything_a_user_sees(cluster: LocalCluster, namespace: str, op: OperatorProcess) -> str:
    """Status, events, ``kubectl describe`` and the operator log, as one text."""
    parts = [
        cluster.kubectl("get", "pe", "-n", namespace, "-o", "yaml").stdout,
        cluster.kubectl("describe", "pe", "-n", namespace).stdout,
        cluster.kubectl("get", "events", "-n", namespace, "-o", "yaml").stdout,
        op.log_path.read_text(errors="replace"),
    ]
    return "\n".join(parts)


def gone(cluster: LocalCluster, namespace: str, name: str) -> Callable[[], bool]:
    return lambda: get(cluster, namespace, name) is None
