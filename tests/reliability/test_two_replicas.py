"""Two operator replicas against one namespace: no duplicates, no flapping, and a takeover.

How replicas coordinate (the decision): **kopf peering with distinct priorities**
(``--peering dd-preview --priority N``, the CRDs in ``manifests/peering/crds.yaml`` and one
``KopfPeering`` object per watched namespace). The lower-priority replica pauses while a
higher one is alive and resumes once that one's keep-alive expires (kopf's peer lifetime,
60 s), so a SIGKILLed leader is replaced within about a minute. Peering is cooperative,
not a lock (equal priorities both freeze; with no peering object both act), so
duplicates are prevented by construction as well: deterministic names, requestIds and
ownership stamps (DESIGN §3.2). The last test runs two replicas with *no* coordination at
all and still finds exactly one VM, one tunnel and one record.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from dd_devcluster.cluster import LocalCluster
from dd_devcluster.operator_process import OperatorProcess
from dd_operator.naming import Stamp
from tests.reliability.crash_harness import CrashRig
from tests.support.k8s import SHA_A, SHA_B, apply, get, is_ready_with, preview
from tests.support.wait import wait_for

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[2]
PEERING = "dd-preview"
ACTION = "dd_operator.reconcile.loop:"
"""Every reconcile step an operator takes is logged by this logger."""


@pytest.fixture
def rig(cluster: LocalCluster, namespace: str, tmp_path: Path) -> Iterator[CrashRig]:
    cluster.kubectl("apply", "-f", str(REPO / "manifests" / "peering" / "crds.yaml"))
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                    "crd/kopfpeerings.kopf.dev", "crd/clusterkopfpeerings.kopf.dev")
    peering = {"apiVersion": "kopf.dev/v1", "kind": "KopfPeering",
               "metadata": {"name": PEERING, "namespace": namespace}}
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(peering))
    with CrashRig(cluster, namespace, tmp_path, start_operator=False) as r:
        yield r


def _replica(rig: CrashRig, priority: int) -> OperatorProcess:
    args = ("--peering", PEERING, "--priority", str(priority))
    return rig.new_operator(args, f"replica-{priority}").start()


def _serving(rig: CrashRig, name: str, stamp: Stamp, sha: str) -> bool:
    census = rig.census(stamp)
    return (
        census.counts() == (1, 1, 1)
        and census.vms[0][1] == "RUNNING"
        and is_ready_with(get(rig.cluster, rig.namespace, name), sha)
    )


def _promotions(rig: CrashRig, name: str) -> list[str]:
    out = rig.cluster.kubectl(
        "get", "events", "-n", rig.namespace, "-o", "json",
        "--field-selector", f"involvedObject.name={name},reason=Promoted",
    )
    items = yaml.safe_load(out.stdout)["items"]
    return [f"{e.get('count', 1)}x {e['message']}" for e in items]


def _actions(op: OperatorProcess) -> list[str]:
    text = op.log_path.read_text(errors="replace") if op.log_path.exists() else ""
    return [line for line in text.splitlines() if ACTION in line]


def _roll_out(rig: CrashRig, name: str, pr: int) -> Stamp:
    """Create on A, then replace with B; both must converge to exactly one of everything."""
    apply(rig.cluster, rig.namespace, preview(name, pr=pr, sha=SHA_A, provider="gce"))
    stamp = rig.stamp_of(name)
    wait_for(lambda: _serving(rig, name, stamp, SHA_A), timeout=150, message="Ready on A")
    apply(rig.cluster, rig.namespace, preview(name, pr=pr, sha=SHA_B, provider="gce"))
    wait_for(lambda: _serving(rig, name, stamp, SHA_B), timeout=150, message="Ready on B")
    return stamp


def _delete(rig: CrashRig, name: str, stamp: Stamp) -> None:
    rig.cluster.kubectl("delete", "pe", name, "-n", rig.namespace, "--wait=false")
    wait_for(
        lambda: get(rig.cluster, rig.namespace, name) is None
        and rig.census(stamp).nothing_left,
        timeout=150, message="gone, nothing stamped left",
    )


def test_two_replicas_with_distinct_priorities_only_the_higher_acts(rig: CrashRig) -> None:
    high, low = _replica(rig, 100), _replica(rig, 10)
    stamp = _roll_out(rig, "pr-41", 41)
    # No flapping: one promotion per build, and status.vm moved exactly twice.
    promotions = _promotions(rig, "pr-41")
    assert len(promotions) == 2 and all(p.startswith("1x") for p in promotions), promotions
    assert _actions(high), "the higher-priority replica did nothing"
    assert _actions(low) == [], f"the paused replica acted: {_actions(low)[:5]}"
    assert "Pausing operations in favour of" in low.log_path.read_text(errors="replace")
    _delete(rig, "pr-41", stamp)
    assert _actions(low) == []


def test_higher_priority_replica_sigkilled_the_other_takes_over(rig: CrashRig) -> None:
    high, low = _replica(rig, 100), _replica(rig, 10)
    apply(rig.cluster, rig.namespace, preview("pr-42", pr=42, sha=SHA_A, provider="gce"))
    stamp = rig.stamp_of("pr-42")
    wait_for(lambda: _serving(rig, "pr-42", stamp, SHA_A), timeout=150, message="Ready on A")
    assert _actions(low) == []
    high.kill()
    apply(rig.cluster, rig.namespace, preview("pr-42", pr=42, sha=SHA_B, provider="gce"))
    # kopf's peer lifetime is 60 s: the survivor resumes when the dead leader's record expires.
    wait_for(lambda: _serving(rig, "pr-42", stamp, SHA_B), timeout=200,
             message="the lower-priority replica rolled out B")
    assert _actions(low), "the survivor never acted"
    assert "Resuming operations" in low.log_path.read_text(errors="replace")
    _delete(rig, "pr-42", stamp)


def test_two_uncoordinated_replicas_still_make_no_duplicates(rig: CrashRig) -> None:
    """The worst case (peering misconfigured, a rollout overlap): both act at once."""
    _ = [rig.new_operator(("--standalone",), f"standalone-{i}").start() for i in (1, 2)]
    stamp = _roll_out(rig, "pr-43", 43)
    wait_for(lambda: _serving(rig, "pr-43", stamp, SHA_B), timeout=60, message="still one of each")
    _delete(rig, "pr-43", stamp)
