"""The README's main job: a PreviewEnvironment from ``kubectl apply`` to a live URL.

Starts the local cluster, installs the CRD, runs the operator with the local
provider, applies ``examples/preview.yaml``, waits for Ready, prints ``kubectl get pe``
and fetches ``/health`` through ``status.url``. On Ctrl-C (or at once with ``--once``)
it deletes the object and confirms that nothing is left.
"""

from __future__ import annotations

import json
import shutil
import signal
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from .cluster import LocalCluster
from .operator_process import OperatorProcess

__all__ = ["run_demo"]

REPO = Path(__file__).resolve().parents[2]
NAMESPACE = "default"


def _say(text: str) -> None:
    print(f"==> {text}", flush=True)


def _get(cluster: LocalCluster, name: str) -> dict[str, Any] | None:
    r = cluster.kubectl("get", "pe", name, "-n", NAMESPACE, "-o", "json", check=False)
    return json.loads(r.stdout) if r.returncode == 0 else None


def _ready(obj: dict[str, Any]) -> dict[str, Any]:
    conds = obj.get("status", {}).get("conditions", [])
    return next((c for c in conds if c["type"] == "Ready"), {})


def _wait_ready(
    cluster: LocalCluster, op: OperatorProcess, name: str, timeout: float
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        obj = _get(cluster, name)
        ready = _ready(obj or {})
        state = (ready.get("status"), ready.get("reason"))
        if state != last and ready:
            _say(f"Ready={state[0]} ({state[1]}): {ready.get('message', '')}")
            last = state
        if obj and ready.get("status") == "True":
            return obj
        if not op.running:
            raise SystemExit(f"the operator exited; its log:\n{op.log_tail()}")
        time.sleep(0.5)
    raise SystemExit(f"not Ready after {timeout:.0f}s; operator log:\n{op.log_tail()}")


def _delete_and_confirm(
    cluster: LocalCluster, name: str, state_dir: Path, timeout: float = 60
) -> bool:
    _say(f"deleting PreviewEnvironment {name}")
    cluster.kubectl("delete", "pe", name, "-n", NAMESPACE, "--wait=false")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _get(cluster, name) is None:
            leftovers = [p.name for p in state_dir.rglob("*") if p.is_file()]
            if leftovers:
                _say(f"object gone, but these local VM files remain: {leftovers}")
                return False
            _say("object deleted; no control-plane process or VM record is left")
            return True
        time.sleep(0.5)
    _say("the object still exists (finalizer not released): see `kubectl describe pe`")
    return False


def run_demo(*, once: bool, timeout: float = 180) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="dd-demo-"))
    _say("starting a local Kubernetes (kube-apiserver + etcd) on 127.0.0.1")
    cluster = LocalCluster().start()
    op: OperatorProcess | None = None
    try:
        _say(f"apiserver {cluster.server}; kubeconfig {cluster.kubeconfig}")
        cluster.kubectl("apply", "-f", str(REPO / "crds" / "previewenvironments.yaml"))
        cluster.kubectl(
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/previewenvironments.preview.devopsdefender.com",
        )
        _say("CRD installed; starting the operator (local provider, no edge)")
        state_dir = workdir / "vms"
        op = OperatorProcess(
            cluster, state_dir=state_dir, log_path=workdir / "operator.log"
        ).start()
        example = REPO / "examples" / "preview.yaml"
        _say(f"kubectl apply -f {example.relative_to(REPO)}")
        print(cluster.kubectl("apply", "-n", NAMESPACE, "-f", str(example)).stdout, end="")
        name = "pr-95"
        obj = _wait_ready(cluster, op, name, timeout)
        print(cluster.kubectl("get", "pe", "-n", NAMESPACE).stdout, flush=True)
        url = obj["status"]["url"]
        _say(f"URL: {url}")
        with urllib.request.urlopen(f"{url}/health", timeout=5) as resp:  # noqa: S310 - our own URL
            _say(f"GET {url}/health -> {resp.status} {resp.read().decode()}")
        if not once:
            _say(f"export KUBECONFIG={cluster.kubeconfig}  # to look around; Ctrl-C to tear down")
            try:
                signal.pause()
            except KeyboardInterrupt:
                print()
        ok = _delete_and_confirm(cluster, name, state_dir)
        return 0 if ok else 1
    except KeyboardInterrupt:
        return 130
    finally:
        if op is not None:
            op.stop()
        cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        _say("local cluster stopped and its files removed")
