"""The real cluster tier for benchmarks: a kube-apiserver, the CRD, operator processes.

The same pieces the end-to-end tests use (``dd_devcluster``'s ``LocalCluster`` and
``OperatorProcess``), wrapped so that one benchmark run starts the apiserver once, gives
every measurement a fresh namespace and its own operator process, and reads objects
straight from the apiserver over HTTPS (one request per poll, far cheaper than forking
kubectl, so polling does not steal the CPU it is measuring).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import ssl
import tempfile
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import yaml

from dd_devcluster.cluster import LocalCluster
from dd_devcluster.operator_process import OperatorProcess

__all__ = ["BenchCluster", "cpu_seconds", "memory_kib", "stop_local_control_planes", "wait_settled"]

REPO = Path(__file__).resolve().parents[1]
CRD = REPO / "crds" / "previewenvironments.yaml"
API = "/apis/preview.devopsdefender.com/v1alpha1/namespaces/{ns}/previewenvironments"

CLUSTER_ID = f"bench-{uuid.uuid4().hex[:8]}"
"""Unique per run: every stamp this run makes says so, which is how leftovers are found."""

OPERATOR_ENV = {
    "DD_CLUSTER_ID": CLUSTER_ID,
    "DD_METRICS_PORT": "0",
    "DD_REAPER_INTERVAL_SECONDS": "3600",
}
"""Reaper and metrics server off the measured path; every other setting is the default."""


def memory_kib(pid: int) -> tuple[int, int]:
    """``(VmRSS, VmHWM)`` of ``pid`` in KiB, from /proc/<pid>/status."""
    fields: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0])
    return fields["VmRSS"], fields["VmHWM"]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time ``pid`` has used so far, from /proc/<pid>/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class BenchCluster:
    """One apiserver with the CRD installed; ``close()`` stops everything it started."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="dd-bench-"))
        self.cluster = LocalCluster()
        self.operators: list[OperatorProcess] = []
        self._http: httpx.Client | None = None

    def start(self) -> BenchCluster:
        self.cluster.start()
        self.cluster.kubectl("apply", "-f", str(CRD))
        self.cluster.kubectl(
            "wait", "--for=condition=Established", "--timeout=60s",
            "crd/previewenvironments.preview.devopsdefender.com",
        )
        context = ssl.create_default_context(
            cafile=str(self.cluster.dir / "certs" / "apiserver.crt")
        )
        self._http = httpx.Client(
            base_url=self.cluster.server, verify=context, timeout=10,
            headers={"Authorization": f"Bearer {self.cluster.token}"},
        )
        return self

    def namespace(self, prefix: str) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:6]}"
        self.cluster.kubectl("create", "namespace", name)
        return name

    def operator(
        self, namespaces: Sequence[str], env: Mapping[str, str] | None = None
    ) -> OperatorProcess:
        work = self.dir / namespaces[0]
        op = OperatorProcess(
            self.cluster, state_dir=work / "vms", namespaces=namespaces,
            env={**OPERATOR_ENV, **(env or {})}, log_path=work / "operator.log",
        )
        self.operators.append(op)
        return op.start()

    def apply(self, namespace: str, objects: Iterable[dict[str, Any]]) -> None:
        """One ``kubectl apply`` for all objects: they reach the apiserver together."""
        docs = yaml.safe_dump_all(list(objects))
        self.cluster.kubectl("apply", "-n", namespace, "-f", "-", input=docs)

    def list(self, namespace: str) -> list[dict[str, Any]]:
        assert self._http is not None
        response = self._http.get(API.format(ns=namespace))
        response.raise_for_status()
        return list(response.json()["items"])

    def delete_all(self, namespace: str, timeout: float = 120) -> bool:
        """Delete every PreviewEnvironment and wait for the finalizers; False on timeout."""
        self.cluster.kubectl("delete", "pe", "--all", "-n", namespace, "--wait=false")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.list(namespace):
                return True
            time.sleep(0.2)
        return False

    def close(self) -> None:
        for op in self.operators:
            op.stop()
        if self._http is not None:
            self._http.close()
        self.cluster.stop()
        stop_local_control_planes(CLUSTER_ID)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> BenchCluster:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def stop_local_control_planes(cluster_id: str) -> None:
    """SIGTERM control planes the local provider left behind for this run.

    They run in their own session (like VMs they outlive the operator), so a benchmark
    interrupted mid-run would leak them; each is found by pid, through the ownership
    stamp (``DD_OWNER_STAMP=ddp.<this run's cluster id>.<uid>``) in its environment.
    """
    marker = f"DD_OWNER_STAMP=ddp.{cluster_id}.".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if b"DD_INSTANCE=" in environ and any(
            item.startswith(marker) for item in environ.split(b"\0")
        ):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(entry.name), signal.SIGTERM)


def wait_settled(op: OperatorProcess, timeout: float = 90) -> None:
    """Until kopf has logged in and the RSS stopped growing for a second (imports done)."""
    assert op.proc is not None
    deadline = time.monotonic() + timeout
    while "Initial authentication has finished" not in op.log_tail(200):
        if not op.running or time.monotonic() > deadline:
            raise RuntimeError(f"operator did not start:\n{op.log_tail()}")
        time.sleep(0.2)
    last, stable_since = -1, time.monotonic()
    while time.monotonic() - stable_since < 1.0 and time.monotonic() < deadline:
        rss, _ = memory_kib(op.proc.pid)
        if abs(rss - last) > 256:
            last, stable_since = rss, time.monotonic()
        time.sleep(0.2)
