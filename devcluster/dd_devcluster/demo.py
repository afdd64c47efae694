"""The README's main job: a PreviewEnvironment from ``kubectl apply`` to a live URL.

Starts the local cluster, installs the CRD, runs the operator with the local
provider, applies ``examples/preview.yaml``, waits for Ready, prints ``kubectl get pe``
and fetches ``/health`` through ``status.url``. On Ctrl-C (or at once with ``--once``)
it deletes the object and confirms that nothing is left.
"""

from __future__ import annotations

import asyncio
import contextlib
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
    print(cluster.kubectl("describe", "pe", name, "-n", NAMESPACE, check=False).stdout)
    _say("the object still exists after 60 s: its finalizer was not released (described above)")
    return False


def _stop_leftover_vms(state_dir: Path) -> None:
    """Last line of defence: no control-plane process outlives the demo, whatever failed."""
    from dd_operator.providers.local import LocalVmProvider
    from dd_operator.settings import LocalSettings

    if not state_dir.exists():
        return
    provider = LocalVmProvider(LocalSettings(state_dir=state_dir), cluster_id="local")

    async def sweep() -> list[str]:
        leftovers = await provider.list_vms("local")
        for vm in leftovers:
            await provider.delete_vm(vm)
        return [vm.name for vm in leftovers]

    stopped = asyncio.run(sweep())
    if stopped:
        _say(f"stopped leftover control planes: {', '.join(stopped)}")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_demo(*, once: bool, timeout: float = 180) -> int:
    # Ctrl-C and SIGTERM both mean "tear down and exit", even when started from a script
    # that left SIGINT ignored (background jobs of a non-interactive shell).
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    workdir = Path(tempfile.mkdtemp(prefix="dd-demo-"))
    state_dir = workdir / "vms"
    _say("starting a local Kubernetes (kube-apiserver + etcd) on 127.0.0.1")
    cluster = LocalCluster().start()
    op: OperatorProcess | None = None
    name, applied, code = "pr-95", False, 1
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
        op = OperatorProcess(cluster, state_dir=state_dir, log_path=workdir / "operator.log")
        op.start()
        example = REPO / "examples" / "preview.yaml"
        _say(f"kubectl apply -f {example.relative_to(REPO)}")
        print(cluster.kubectl("apply", "-n", NAMESPACE, "-f", str(example)).stdout, end="")
        applied = True
        obj = _wait_ready(cluster, op, name, timeout)
        print(cluster.kubectl("get", "pe", "-n", NAMESPACE).stdout, flush=True)
        url = obj["status"]["url"]
        _say(f"URL: {url}")
        with urllib.request.urlopen(f"{url}/health", timeout=5) as resp:  # noqa: S310 - our own URL
            _say(f"GET {url}/health -> {resp.status} {resp.read().decode()}")
        if not once:
            bindir = cluster.binaries.kubectl.parent
            _say("to look around from another shell (Ctrl-C here tears everything down):")
            print(f"    export PATH={bindir}:$PATH KUBECONFIG={cluster.kubeconfig}")
            print(f"    kubectl get pe; kubectl describe pe {name}; curl {url}/health", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                signal.pause()
            print()
        code = 0
    except KeyboardInterrupt:
        print()
        code = 130
    except SystemExit as exc:  # not Ready in time, or the operator exited
        print(exc, flush=True)
    finally:
        try:
            if (
                applied
                and op is not None
                and op.running
                and not _delete_and_confirm(cluster, name, state_dir)
            ):
                code = code or 1
                print(f"operator log (tail):\n{op.log_tail()}", flush=True)
        except KeyboardInterrupt:
            _say("interrupted again: skipping the orderly delete")
            code = code or 130
        _stop_leftover_vms(state_dir)
        if op is not None:
            op.stop()
        cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        _say("local cluster stopped and its files removed")
    return code
