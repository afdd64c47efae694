"""The ``operator`` fixture: dd-preview's operator as a separate process for one test.

It watches only the test's namespace and keeps its local VMs in the test's tmp_path,
so tests never see each other's environments. On failure the operator log and
``kubectl describe`` are printed; on teardown every control plane it started is gone.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from dd_devcluster.cluster import LocalCluster
from dd_devcluster.operator_process import OperatorProcess

from .k8s import describe


@pytest.fixture
def operator_factory(
    cluster: LocalCluster, namespace: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[type[OperatorProcess] | object]:
    started: list[OperatorProcess] = []

    def make(
        *, env: dict[str, str] | None = None, args: tuple[str, ...] = ("--standalone",), tag: str = "op"
    ) -> OperatorProcess:
        op = OperatorProcess(
            cluster, state_dir=tmp_path / "vms", namespaces=[namespace],
            env={"DD_CLUSTER_ID": "test", "DD_HEALTH_CHECKS": "2",
                 # /metrics and /healthz off unless a test asks (then on 127.0.0.1 only)
                 "DD_METRICS_HOST": "127.0.0.1", "DD_METRICS_PORT": "0", **(env or {})},
            args=args, log_path=tmp_path / f"{tag}-{len(started)}.log",
        )
        started.append(op)
        return op.start()

    yield make
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        for op in started:
            print(f"--- operator log {op.log_path} ---\n{op.log_tail(120)}")
        print(describe(cluster, namespace))
    for op in started:
        op.stop()


@pytest.fixture
def operator(operator_factory) -> OperatorProcess:  # type: ignore[no-untyped-def]
    return operator_factory()  # type: ignore[no-any-return, operator]


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    rep = yield
    if rep.when == "call":
        item.rep_call = rep  # type: ignore[attr-defined]
    return rep


def _control_planes_under(root: Path) -> list[int]:
    """Control planes whose working directory is under ``root`` (the local provider runs
    each in its state dir): exactly this test's, by pid, and nobody else's."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if b"DD_INSTANCE=" in (entry / "environ").read_bytes() and Path(
                os.readlink(entry / "cwd")
            ).is_relative_to(root):
                pids.append(int(entry.name))
    return pids


@pytest.fixture(autouse=True)
def no_stray_control_planes(tmp_path: Path) -> Iterator[None]:
    """Local "VMs" outlive their operator on purpose (like real VMs); not a test's."""
    yield
    for pid in _control_planes_under(tmp_path):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
