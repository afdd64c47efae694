"""Sub-benchmark 2: cloud API calls per lifecycle, counted by the fakes, against a minimum.

One PreviewEnvironment with ``provider: gce`` and ``DD_EDGE=cloudflare`` goes through
create -> Ready, a new commit (blue/green: new VM Ready, tunnel moved, old VM deleted),
a quiet converged window, and delete -> gone. The fake Compute API counts calls per API
method; the fake Cloudflare API logs every call (method and path, ids folded to ``{id}``).
Both fakes are the ones the end-to-end tests use, wired the same way
(``tests/e2e/test_cloudflare_edge.py``); the fake Compute API adds the same fixed latency
per request as sub-benchmark 1, because how often an operation is polled depends on it.

The "minimum" column is the smallest number of calls we can argue for each phase, given
the design's rules (deterministic names mean a lookup before each create; the operator
learns a VM's address from a GET); ``MINIMUM_NOTES`` says how each is counted.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.integration.providers.cloudflare.fake import FakeCloudflare, cloudflare_connector_hook
from tests.integration.providers.gce.fake import FakeCompute, Fault
from tests.support.k8s import SHA_A, SHA_B, is_ready_with, preview

from .harness import BenchCluster, wait_settled
from .report import print_table, section

__all__ = ["Phase", "print_lifecycle_calls", "run_lifecycle_calls"]

NAME = "pr-9"
GCE_ZONES = "us-central1-a,us-central1-b"

MINIMUM: dict[tuple[str, str], int] = {
    ("create", "gce"): 3,
    ("create", "cloudflare"): 6,
    ("new commit", "gce"): 6,
    ("new commit", "cloudflare"): 1,
    ("delete", "gce"): 3,
    ("delete", "cloudflare"): 3,
}
MINIMUM_NOTES = (
    "create/gce 3: instances.insert, one zoneOperations.wait, one instances.get (address)",
    "create/cloudflare 6: tunnel lookup by name + create, ingress PUT, token GET, "
    "CNAME lookup + create",
    "new commit/gce 6: insert + wait + get for the new VM; stop, delete, one wait for the old",
    "new commit/cloudflare 1: the tunnel token for the new VM's boot config "
    "(tunnel, ingress and CNAME stay)",
    "converged: 0 per minute, plus the edge drift re-check (2 reads per "
    "DD_EDGE_RECHECK_SECONDS, 300 s by default)",
    "delete/gce 3: instances.stop, instances.delete, one wait; delete/cloudflare 3: CNAME delete, "
    "connections cleanup, tunnel delete",
)

_ID = re.compile(r"/(?:[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})")


@dataclass(frozen=True)
class Phase:
    name: str
    seconds: float
    gce: dict[str, int]
    cloudflare: dict[str, int]


def _cloudflare_methods(log: list[dict[str, Any]]) -> dict[str, int]:
    return dict(Counter(f"{c['method']} {_ID.sub('/{id}', c['path'])}" for c in log))


def _wait(probe: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached within {timeout:.0f} s")
        time.sleep(0.1)


def _phase(
    name: str, compute: FakeCompute, cf: FakeCloudflare, act: Callable[[], None]
) -> Phase:
    compute.reset_calls()
    cf.clear_calls()
    started = time.monotonic()
    act()
    return Phase(name, time.monotonic() - started, compute.calls(),
                 _cloudflare_methods(cf.call_log()))


def run_lifecycle_calls(bench: BenchCluster, latency: float, quiet_seconds: float) -> list[Phase]:
    namespace = bench.namespace("calls")
    with FakeCloudflare() as cf, FakeCompute(
        project="bench-project", step_seconds=0.05, boot_control_planes=True,
        connector_hook=cloudflare_connector_hook(cf),
    ) as compute:
        compute.add_fault(Fault(kind="delay", seconds=latency))
        op = bench.operator([namespace], {
            **cf.env(), **compute.env(), "DD_GCP_ZONES": GCE_ZONES,
            "DD_GCE_REQUEST_TIMEOUT_SECONDS": "10",
        })
        wait_settled(op)
        try:
            return _lifecycle(bench, namespace, compute, cf)(quiet_seconds)
        finally:
            op.stop()


def _lifecycle(
    bench: BenchCluster, namespace: str, compute: FakeCompute, cf: FakeCloudflare
) -> Callable[[float], list[Phase]]:
    def current() -> dict[str, Any] | None:
        return next((o for o in bench.list(namespace) if o["metadata"]["name"] == NAME), None)

    def apply_and_wait(sha: str) -> Callable[[], None]:
        def act() -> None:
            bench.apply(namespace, [preview(NAME, pr=9, sha=sha, provider="gce")])
            _wait(lambda: is_ready_with(current(), sha), 180, f"Ready with {sha[:7]}")
            obj = current() or {}
            uid, vm = obj["metadata"]["uid"], obj["status"]["vm"]["name"]
            _wait(lambda: compute.instances_labelled("dd-uid", uid) == [(vm, "RUNNING")], 60,
                  "exactly one RUNNING instance")
            _wait(lambda: len((current() or {}).get("status", {}).get("instances") or [1]) <= 1,
                  60, "the old instance forgotten")
        return act

    def delete() -> None:
        bench.cluster.kubectl("delete", "pe", NAME, "-n", namespace, "--wait=false")
        _wait(lambda: current() is None, 180, "object gone")

    def run(quiet_seconds: float) -> list[Phase]:
        return [
            _phase("create", compute, cf, apply_and_wait(SHA_A)),
            _phase("new commit", compute, cf, apply_and_wait(SHA_B)),
            _phase("converged", compute, cf, lambda: time.sleep(quiet_seconds)),
            _phase("delete", compute, cf, delete),
        ]

    return run


def print_lifecycle_calls(phases: list[Phase], latency: float) -> None:
    section("2. cloud API calls per lifecycle, gce + cloudflare edge "
            f"(fake APIs; Compute +{latency * 1000:.0f} ms per request)")
    rows: list[list[object]] = []
    for p in phases:
        for api, calls in (("gce", p.gce), ("cloudflare", p.cloudflare)):
            total = sum(calls.values())
            if p.name == "converged":
                rows.append([p.name, api, f"{total} in {p.seconds:.0f} s",
                             f"{total * 60 / p.seconds:.1f}/min", "0/min", "-"])
                continue
            minimum = MINIMUM[(p.name, api)]
            rows.append([p.name, api, total, f"{p.seconds:.1f} s", minimum,
                         f"{total / minimum:.2f}x"])
    print_table(["phase", "api", "calls", "phase time", "minimum", "vs minimum"], rows)
    detail = [[p.name, api, method, count]
              for p in phases
              for api, calls in (("gce", p.gce), ("cloudflare", p.cloudflare))
              for method, count in sorted(calls.items(), key=lambda kv: -kv[1])]
    print_table(["phase", "api", "method", "calls"], detail)
    print("  minimum, argued:")
    for note in MINIMUM_NOTES:
        print(f"    {note}")
    print(flush=True)
