"""Sub-benchmarks 1 and 4: apply -> Ready with N objects at once, and the operator's memory.

For each provider one operator process watches one fresh namespace per N. The N objects
go to the apiserver in one ``kubectl apply``; the apiserver is then polled (one LIST every
0.1 s) and each object's time to ``Ready=True`` with the applied build is recorded. Between
two N the objects are deleted and the finalizers waited for, so every N starts from an
idle operator (``--quick`` skips that wait after the last N). Alongside the times: the
operator's CPU seconds and, for gce, the Compute API calls during the run, which say
whether the operator or the API is the limit; and the median time from creation to each
condition's ``lastTransitionTime``. Memory is the operator's own RSS (control planes are
separate processes): once settled before the first apply, then with each N converged.

``gce`` runs against the fake Compute API (``tests/integration/providers/gce/fake.py``)
with its ``delay`` fault on every request: a fixed added latency per API call. Its VMs
"boot" real control-plane processes from the rendered user-data, as ``local`` starts them
directly, so both providers pay the same per-VM process cost.
"""

from __future__ import annotations

import contextlib
import math
import statistics
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tests.integration.providers.gce.fake import FakeCompute, Fault
from tests.support.k8s import SHA_A, is_ready_with, preview

from .harness import (
    CLUSTER_ID,
    BenchCluster,
    cpu_seconds,
    memory_kib,
    stop_local_control_planes,
    wait_settled,
)
from .report import percentile, print_table, ratio, section

__all__ = [
    "ApplyReadyResult",
    "MemorySample",
    "ReadyRun",
    "measure_provider",
    "print_apply_ready",
    "print_memory",
    "run_apply_ready",
]

GCE_ZONES = "us-central1-a,us-central1-b"
MILESTONES = ("VMReady", "TunnelReady", "DNSReady", "ControlPlaneHealthy", "Attested", "Ready")
POLL_SECONDS = 0.1


@dataclass(frozen=True)
class ReadyRun:
    provider: str
    n: int
    total: float
    per_object: tuple[float, ...]
    ready: int
    cloud_calls: int | None = None
    """Compute API calls from apply to the last Ready (gce only)."""
    operator_cpu: float = float("nan")
    """CPU seconds the operator process used from apply to the last Ready."""
    milestones: tuple[tuple[str, float], ...] = ()
    """Median seconds from creation to each condition's True transition (1 s resolution)."""


@dataclass(frozen=True)
class MemorySample:
    provider: str
    state: str
    rss_kib: int
    hwm_kib: int


@dataclass
class ApplyReadyResult:
    runs: list[ReadyRun] = field(default_factory=list)
    memory: list[MemorySample] = field(default_factory=list)


@dataclass
class CloudCounter:
    """Reads and resets the fake Compute API's call count; a no-op for ``local``."""

    compute: FakeCompute | None = None

    def reset(self) -> None:
        if self.compute is not None:
            self.compute.reset_calls()

    def total(self) -> int | None:
        return None if self.compute is None else sum(self.compute.calls().values())


def _measure(
    bench: BenchCluster, namespace: str, provider: str, n: int, counter: CloudCounter,
    operator_pid: int,
) -> ReadyRun:
    names = [f"pe-{i + 1}" for i in range(n)]
    objects = [preview(name, pr=i + 1, sha=SHA_A, provider=provider, ttl="2h")
               for i, name in enumerate(names)]
    counter.reset()
    cpu_before = cpu_seconds(operator_pid)
    started = time.monotonic()
    bench.apply(namespace, objects)
    ready: dict[str, float] = {}
    deadline = started + 90 + 10 * n
    while len(ready) < n and time.monotonic() < deadline:
        now = time.monotonic()
        for obj in bench.list(namespace):
            name = obj["metadata"]["name"]
            if name not in ready and is_ready_with(obj, SHA_A):
                ready[name] = now - started
        time.sleep(POLL_SECONDS)
    times = tuple(sorted(ready.values()))
    total = times[-1] if len(times) == n else float("nan")
    return ReadyRun(provider, n, total, times, len(times), counter.total(),
                    cpu_seconds(operator_pid) - cpu_before, _milestones(bench.list(namespace)))


def _parse_time(text: object) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _milestones(objects: list[dict[str, Any]]) -> tuple[tuple[str, float], ...]:
    """Where the time went: creationTimestamp -> each condition's lastTransitionTime."""
    found: dict[str, list[float]] = {}
    for obj in objects:
        created = _parse_time(obj["metadata"]["creationTimestamp"])
        for c in obj.get("status", {}).get("conditions", []):
            at = _parse_time(c.get("lastTransitionTime"))
            if c.get("status") == "True" and created and at:
                found.setdefault(c["type"], []).append((at - created).total_seconds())
    order = [t for t in MILESTONES if t in found]
    return tuple((t, statistics.median(found[t])) for t in order)


@contextlib.contextmanager
def _provider_env(
    provider: str, latency: float
) -> Iterator[tuple[dict[str, str], CloudCounter]]:
    if provider == "local":
        yield {}, CloudCounter()
        return
    with FakeCompute(project="bench-project", step_seconds=0.05,
                     boot_control_planes=True) as compute:
        compute.add_fault(Fault(kind="delay", seconds=latency))
        yield {**compute.env(), "DD_GCP_ZONES": GCE_ZONES,
               "DD_GCE_REQUEST_TIMEOUT_SECONDS": "10"}, CloudCounter(compute)


def measure_provider(
    bench: BenchCluster, provider: str, sizes: Sequence[int], latency: float,
    result: ApplyReadyResult, *, quick: bool = False,
) -> None:
    """Measure every N in ``sizes``; ``quick`` skips the teardown wait after the last N
    (the operator stops and the run's control planes are stopped by their stamp)."""
    namespaces = {n: bench.namespace(f"ready-{provider}-{n}") for n in sizes}
    with _provider_env(provider, latency) as (env, counter):
        op = bench.operator(list(namespaces.values()), env)
        wait_settled(op)
        assert op.proc is not None
        result.memory.append(MemorySample(provider, "idle", *memory_kib(op.proc.pid)))
        try:
            for n in sizes:
                run = _measure(bench, namespaces[n], provider, n, counter, op.proc.pid)
                result.runs.append(run)
                rss, hwm = memory_kib(op.proc.pid)
                result.memory.append(MemorySample(provider, f"{n} converged", rss, hwm))
                print(f"  {provider} N={n}: {run.ready}/{n} Ready, last at {run.total:.2f} s",
                      flush=True)
                if quick and n == sizes[-1]:
                    break
                if not bench.delete_all(namespaces[n]):
                    print(f"  {provider} N={n}: objects still present after 120 s", flush=True)
        finally:
            op.stop()
            stop_local_control_planes(CLUSTER_ID)


def run_apply_ready(
    bench: BenchCluster, sizes: Sequence[int], latency: float, providers: Sequence[str],
    *, quick: bool = False,
) -> ApplyReadyResult:
    result = ApplyReadyResult()
    for provider in providers:
        try:
            measure_provider(bench, provider, sizes, latency, result, quick=quick)
        except Exception as exc:  # a benchmark reports what it could not measure
            print(f"  {provider}: not run to the end: {type(exc).__name__}: {exc}", flush=True)
    return result


def print_apply_ready(result: ApplyReadyResult, latency: float) -> None:
    section("1. apply -> Ready, N PreviewEnvironments applied at once "
            f"(gce: fake Compute API, +{latency * 1000:.0f} ms per request)")
    rows = []
    for run in result.runs:
        base = next((r.total for r in result.runs if r.provider == run.provider and r.n == 1),
                    float("nan"))
        calls = "-" if run.cloud_calls is None else (
            f"{run.cloud_calls} ({run.cloud_calls / run.total:.0f}/s)"
            if not math.isnan(run.total) else str(run.cloud_calls))
        rows.append([run.provider, run.n, f"{run.ready}/{run.n}", run.total,
                     percentile(run.per_object, 50), percentile(run.per_object, 95),
                     ratio(run.total, base), ratio(run.total / run.n, base),
                     run.operator_cpu, calls])
    print_table(["provider", "N", "ready", "total s", "p50 s", "p95 s", "total vs N=1",
                 "per object vs N=1", "operator CPU s", "Compute API calls"], rows)
    print("  where the time goes: median s from creation to each condition turning True "
          "(lastTransitionTime, 1 s resolution)")
    print_table(["provider", "N", *MILESTONES],
                [[run.provider, run.n, *(dict(run.milestones).get(m, "-") for m in MILESTONES)]
                 for run in result.runs])


def print_memory(result: ApplyReadyResult) -> None:
    section("4. operator memory (its own process; /proc/<pid>/status)")
    rows = []
    for m in result.memory:
        idle = next((x.rss_kib for x in result.memory
                     if x.provider == m.provider and x.state == "idle"), 0)
        rows.append([m.provider, m.state, m.rss_kib / 1024, m.hwm_kib / 1024,
                     ratio(m.rss_kib, idle)])
    print_table(["provider", "state", "VmRSS MiB", "VmHWM MiB", "RSS vs idle"], rows)
