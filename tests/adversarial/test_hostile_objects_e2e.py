"""Hostile objects against the real apiserver and the operator process (local provider).

One operator serves every object here, so the tier stays fast:

- an object stored before the CRD refused interpreter variables (``PYTHONPATH`` naming a
  directory with a ``sitecustomize.py``) becomes a clear ``InvalidSpec`` condition and
  never runs anything;
- an object at every limit (253-character name, PR 2147483647, 32 env values with
  newlines, quotes, ``$(...)``, unicode, 1024 characters) serves, and its values reach the
  control plane verbatim;
- status is writable by anyone with edit rights (``--subresource=status``): an
  "attacker" whose status names the "victim"'s VM, before its first pass and again
  before its deletion, never stops or deletes it (DESIGN 3.2 invariant 2);
- no token appears in status, events, ``kubectl describe`` or the operator log, and the
  per-environment Secret goes at teardown;
- a control plane killed out of band is restarted (drift); an object deleted and
  re-created under the same name (a new uid) gets one new process and the old one goes.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from dd_devcluster.cluster import LocalCluster
from dd_devcluster.operator_process import OperatorProcess
from dd_operator.naming import Stamp, instance_name
from tests.support.cluster import CRD
from tests.support.k8s import SHA_A, condition, get, is_ready_with, local_processes, preview
from tests.support.wait import wait_for

from .support import everything_a_user_sees, gone, one_process, ready, secret_values

pytestmark = pytest.mark.cluster

HOSTILE_VALUES = {
    "NEWLINES": "line1\nline2\r\nDD_OWNER=mallory",
    "SUBST": "$(touch /tmp/dd-pwned) `id` ${HOME} '\"; exit 1",
    "UNICODE": "\u202eünïcødé \U0001f600",
    "BIG": "x" * 1024,
}
LONG_NAME = ("a" * 63 + ".") * 3 + "z" * 61


def _create(cluster: LocalCluster, namespace: str, obj: dict[str, Any], *, dry: bool = False) -> bool:
    args = ["create", "-n", namespace, "-f", "-"] + (["--dry-run=server"] if dry else [])
    return cluster.kubectl(*args, input=json.dumps(obj), check=False).returncode == 0


def _store_before_the_rule(cluster: LocalCluster, namespace: str, obj: dict[str, Any]) -> None:
    """Create ``obj`` under the CRD as it was before the env deny-list, then restore it."""
    crd = yaml.safe_load(CRD.read_text())
    env_schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"][
        "properties"]["controlPlane"]["properties"]["env"]
    env_schema["x-kubernetes-validations"] = [
        r for r in env_schema["x-kubernetes-validations"] if "interpreter" not in r["message"]
    ]
    try:
        cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(crd))
        wait_for(lambda: _create(cluster, namespace, obj, dry=True), timeout=20,
                 message="the old CRD to take effect")
        assert _create(cluster, namespace, obj)
    finally:
        cluster.kubectl("apply", "-f", str(CRD))
        probe = {**obj, "metadata": {"name": "probe"}}
        wait_for(lambda: not _create(cluster, namespace, probe, dry=True), timeout=20,
                 message="the current CRD to take effect again")


def _forge_status(cluster: LocalCluster, namespace: str, name: str, victim_vm: str) -> None:
    """What a user with edit rights on status can write: someone else's VM, and a path."""
    attacker = get(cluster, namespace, name) or {}
    status = attacker.get("status") or {}
    forged = {
        "status": {
            "instances": [
                *(status.get("instances") or []),
                {"name": victim_vm, "build": SHA_A, "attempt": 0},
                {"name": "../../../victim-file", "build": SHA_A, "attempt": 0},
            ],
            "vm": {**(status.get("vm") or {}), "name": victim_vm, "status": "RUNNING"},
        }
    }
    cluster.kubectl("patch", "pe", name, "-n", namespace, "--subresource=status",
                    "--type=merge", "-p", json.dumps(forged))


def test_hostile_objects_are_contained_and_limits_serve(
    cluster: LocalCluster, namespace: str, operator_factory: object, tmp_path: Path
) -> None:
    planted = tmp_path / "planted"
    planted.mkdir()
    marker = tmp_path / "pwned"
    (planted / "sitecustomize.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    _store_before_the_rule(cluster, namespace, preview(
        "stored-before", pr=3, sha=SHA_A, controlPlane={"env": {"PYTHONPATH": str(planted)}},
    ))
    env = {**HOSTILE_VALUES, **{f"FEATURE_{i:02d}" + "X" * 54: f"v{i}" for i in range(28)}}
    limits = preview(
        LONG_NAME, pr=2147483647, sha=SHA_A, ttl="9999d", env="e" * 32,
        hostname=".".join(["h" * 63] * 3) + "." + "b" * 61, controlPlane={"env": env},
    )
    assert len(env) == 32 and _create(cluster, namespace, limits)
    assert _create(cluster, namespace, preview("victim", pr=1, sha=SHA_A))
    assert _create(cluster, namespace, preview("attacker", pr=2, sha=SHA_A))
    victim_uid = (get(cluster, namespace, "victim") or {})["metadata"]["uid"]
    victim_vm = instance_name(Stamp("test", namespace, "victim", victim_uid), "pr-1", SHA_A)
    _forge_status(cluster, namespace, "attacker", victim_vm)  # read by the first pass

    op: OperatorProcess = operator_factory()  # type: ignore[operator]
    obj = ready(cluster, namespace, LONG_NAME, SHA_A)
    victim = ready(cluster, namespace, "victim", SHA_A)
    attacker = ready(cluster, namespace, "attacker", SHA_A)
    assert victim["status"]["vm"]["name"] == victim_vm
    proc = one_process(obj["metadata"]["uid"])
    assert {k: proc[k] for k in env} == env  # verbatim: nothing split, expanded or dropped
    assert proc["DD_OWNER"] == "acme" and proc["DD_ENV"] == "e" * 32
    assert not Path("/tmp/dd-pwned").exists()

    stored = get(cluster, namespace, "stored-before") or {}
    reason = condition(stored, "Ready")
    assert reason["status"] == "False" and reason["reason"] == "InvalidSpec"
    assert "PYTHONPATH" in reason["message"]
    assert local_processes(stored["metadata"]["uid"]) == [] and not marker.exists()

    # Status names the victim's VM again; deleting the attacker must leave the victim alone.
    victim_pid = one_process(victim_uid)["pid"]
    _forge_status(cluster, namespace, "attacker", victim_vm)
    cluster.kubectl("delete", "pe", "attacker", "-n", namespace, "--wait=false")
    wait_for(gone(cluster, namespace, "attacker"), timeout=60, message="attacker torn down")
    assert local_processes(attacker["metadata"]["uid"]) == []
    assert [p["pid"] for p in local_processes(victim_uid)] == [victim_pid]
    health = httpx.get(f"{victim['status']['url']}/health", timeout=5)
    assert health.status_code == 200 and health.json()["env"] == "pr-1"
    secrets = cluster.kubectl("get", "secrets", "-n", namespace, "-o", "name").stdout.split()
    assert not any(s.startswith("secret/attacker") for s in secrets), secrets

    # Drift: the victim's control plane dies out of band (checked at the end: <= 30 s poll).
    os.kill(int(victim_pid), signal.SIGKILL)

    # Delete and re-create at once under the same name: a new uid, no cross-talk.
    cluster.kubectl("delete", "pe", LONG_NAME, "-n", namespace, "--wait=false")
    wait_for(lambda: _create(cluster, namespace, limits), timeout=60,
             message="the name to be free again")
    reborn = ready(cluster, namespace, LONG_NAME, SHA_A)
    assert reborn["metadata"]["uid"] != obj["metadata"]["uid"]
    assert local_processes(obj["metadata"]["uid"]) == []
    one_process(reborn["metadata"]["uid"])
    assert reborn["status"]["vm"]["name"] != obj["status"]["vm"]["name"]

    tokens = secret_values(cluster, namespace)
    assert len(tokens) >= 2, "victim and reborn each hold an attest token"
    seen = everything_a_user_sees(cluster, namespace, op)
    assert not [t for t in tokens if t in seen], "a token leaked into status/events/log"

    for name in (LONG_NAME, "stored-before"):
        cluster.kubectl("delete", "pe", name, "-n", namespace, "--wait=false")
    for name in (LONG_NAME, "stored-before"):
        wait_for(gone(cluster, namespace, name), timeout=60, message=f"{name} torn down")
    assert local_processes(reborn["metadata"]["uid"]) == []

    def restarted() -> list[dict[str, str]] | None:
        procs = local_processes(victim_uid)
        return procs if procs and procs[0]["pid"] != victim_pid else None

    procs = wait_for(restarted, timeout=40,
                     message="the victim's control plane restarted (drift, <= 30 s poll)")
    assert len(procs) == 1
    wait_for(
        lambda: is_ready_with(get(cluster, namespace, "victim"), SHA_A), timeout=10,
        message="victim Ready again within 10 s of its restart (a converged environment "
        "whose public health just failed is only re-checked at the next 30 s poll)",
    )

    cluster.kubectl("delete", "pe", "victim", "-n", namespace, "--wait=false")
    wait_for(gone(cluster, namespace, "victim"), timeout=60, message="victim torn down")
    assert local_processes(victim_uid) == []
    assert not secret_values(cluster, namespace), "every dd-preview Secret deleted at teardown"
    assert "Traceback" not in op.log_path.read_text(errors="replace")
