"""Crash injection: SIGKILL the operator right after its Nth cloud call, restart, check §3.2.

The rig: the real apiserver, the operator as a separate process (``OperatorProcess``), the
fake Compute API booting real control planes and the fake Cloudflare API + edge, linked by
``cloudflare_connector_hook``. Both fakes count into one ``KillSwitch``
(``tests/support/kill_switch.py``), so N runs over every API call of a phase, GCE and
Cloudflare interleaved as the operator made them; the kill lands after the fake has done
the work and before the operator reads the answer.

A *lifecycle* is one object going through three phases: ``create`` (apply sha A, until Ready
on A), ``replace`` (apply sha B: blue/green, until Ready on B with the old VM gone) and
``delete`` (until the object is gone). Lifecycle ``i`` kills once in each phase, at that
phase's ``i``-th call (when the phase has that many), so one lifecycle buys three kill
points. A watchdog restarts the operator whenever it finds it dead. After each phase the
invariants are checked by counting this object's stamp in the fakes' state:

- while the object exists: exactly one VM, one live tunnel and one DNS record;
- after deletion: none, and the object is gone (no finalizer left stuck).

``python -m tests.reliability.crash_harness [--full] [--stride K]`` starts its own cluster,
measures each phase's call count without faults, sweeps, and prints a table.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from dd_devcluster.cluster import LocalCluster
from dd_devcluster.operator_process import OperatorProcess
from dd_operator.naming import Stamp, is_ours
from tests.integration.providers.cloudflare.fake import FakeCloudflare, cloudflare_connector_hook
from tests.integration.providers.gce.fake import FakeCompute
from tests.support.k8s import SHA_A, SHA_B, apply, describe, get, is_ready_with, preview
from tests.support.kill_switch import MUTATING, KillSwitch

__all__ = [
    "PHASES",
    "CrashRig",
    "Phase",
    "PointResult",
    "Totals",
    "format_table",
    "lifecycle_points",
    "measure",
    "sweep",
]

Phase = Literal["create", "replace", "delete"]
PHASES: tuple[Phase, ...] = ("create", "replace", "delete")
CLUSTER_ID = "crash"
PROJECT = "crash-project"
ZONES = ("us-central1-a", "us-central1-b")
CONVERGE_SECONDS = 90.0
"""Per phase, restart included. The slowest honest path is a kill mid-attestation: the
restarted operator waits for the new VM's /health and quote again (a few seconds)."""


@dataclass(frozen=True)
class Census:
    """This object's stamped resources, counted in the fakes' state."""

    vms: tuple[tuple[str, str], ...]
    tunnels: tuple[str, ...]
    records: tuple[str, ...]
    secrets: tuple[str, ...] = ()
    """The VM's tokens in Secret Manager: two while the object exists, none after."""

    def counts(self) -> tuple[int, int, int]:
        return len(self.vms), len(self.tunnels), len(self.records)

    @property
    def nothing_left(self) -> bool:
        return self.counts() == (0, 0, 0) and not self.secrets

    def __str__(self) -> str:
        vms = ", ".join(f"{n}:{s}" for n, s in self.vms) or "-"
        return (
            f"vms[{vms}] tunnels={len(self.tunnels)} records={len(self.records)}"
            f" secrets={len(self.secrets)}"
        )


@dataclass(frozen=True)
class Totals:
    """Calls per phase in a fault-free run: every call, and the mutating ones alone."""

    calls: dict[Phase, int]
    mutating: dict[Phase, int]


@dataclass
class PointResult:
    phase: Phase
    kill_at: int | None
    mutating_only: bool
    fired_on: str | None
    converged: bool
    seconds: float
    restarts: int
    census: str
    detail: str = ""

    @property
    def leaked(self) -> bool:
        return not self.converged


@dataclass
class CrashRig:
    """Fakes + one operator process for one namespace; use as a context manager."""

    cluster: LocalCluster
    namespace: str
    workdir: Path
    switch: KillSwitch = field(default_factory=KillSwitch)
    log: Callable[[str], None] = print
    _stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    compute: FakeCompute | None = None
    cloudflare: FakeCloudflare | None = None
    operator: OperatorProcess | None = None
    restarts: int = 0
    operator_args: tuple[str, ...] = ("--standalone",)
    """The first operator's arguments; ``start_operator=False`` leaves starting to the test."""
    start_operator: bool = True
    extra_operators: list[OperatorProcess] = field(default_factory=list)

    def __enter__(self) -> CrashRig:
        cf = self._stack.enter_context(FakeCloudflare(kill_switch=self.switch))
        self.cloudflare = cf
        self.compute = self._stack.enter_context(
            FakeCompute(
                project=PROJECT,
                step_seconds=0.05,
                boot_control_planes=True,
                connector_hook=cloudflare_connector_hook(cf),
                kill_switch=self.switch,
            )
        )
        if self.start_operator:
            self.operator = self.new_operator(self.operator_args, "operator").start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.switch.disarm()
        for op in [self.operator, *self.extra_operators]:
            if op is not None:
                op.stop()
        self._stack.close()

    def new_operator(self, args: Sequence[str], tag: str) -> OperatorProcess:
        """An operator process (not started) for this namespace, pointed at the fakes."""
        assert self.compute is not None and self.cloudflare is not None
        op = OperatorProcess(
            self.cluster,
            state_dir=self.workdir / "vms",
            namespaces=[self.namespace],
            env={
                **self.cloudflare.env(),
                **self.compute.env(),
                "DD_GCP_ZONES": ",".join(ZONES),
                "DD_CLUSTER_ID": CLUSTER_ID,
                "DD_HEALTH_CHECKS": "1",
            },
            args=args,
            log_path=self.workdir / f"{tag}.log",
        )
        if self.operator is not None or not self.start_operator:
            self.extra_operators.append(op)
        return op

    # -- the operator ------------------------------------------------------------------

    @property
    def pid(self) -> int:
        assert self.operator is not None and self.operator.proc is not None
        return self.operator.proc.pid

    def keep_alive(self) -> None:
        """The watchdog a Deployment would be: a dead operator is started again."""
        assert self.operator is not None
        if not self.operator.running:
            self.restarts += 1
            self.operator.start()

    # -- observation -------------------------------------------------------------------

    def census(self, stamp: Stamp) -> Census:
        assert self.compute is not None and self.cloudflare is not None
        return Census(
            vms=tuple(self.compute.instances_labelled("dd-uid", stamp.uid)),
            tunnels=tuple(t.name for t in self.cloudflare.live_tunnels() if is_ours(t.name, stamp)),
            records=tuple(
                r.name for r in self.cloudflare.all_records() if is_ours(r.comment, stamp)
            ),
            secrets=tuple(self.compute.secret_manager.secrets_labelled("dd-uid", stamp.uid)),
        )

    def stamp_of(self, name: str) -> Stamp:
        obj = get(self.cluster, self.namespace, name)
        assert obj is not None, f"{name} does not exist"
        return Stamp(CLUSTER_ID, self.namespace, name, obj["metadata"]["uid"])

    def _until(self, done: Callable[[], bool], deadline: float) -> bool:
        """Poll ``done`` (keeping the operator alive) until it holds or the deadline passes."""
        while time.monotonic() < deadline:
            self.keep_alive()
            if done():
                return True
            time.sleep(0.2)
        return False

    # -- phases ------------------------------------------------------------------------

    def run_phase(
        self,
        phase: Phase,
        name: str,
        pr: int,
        kill_at: int | None,
        stamp: Stamp | None = None,
        *,
        mutating_only: bool = False,
    ) -> tuple[PointResult, Stamp]:
        """Start ``phase`` for object ``name``, kill at its ``kill_at``-th call, converge.

        ``mutating_only``: count only the calls that change something (``MUTATING``).
        """
        self.keep_alive()
        self.restarts = 0
        self.switch.reset()
        if kill_at is not None:
            self.switch.kill_after(kill_at, self.pid, MUTATING if mutating_only else None)
        started = time.monotonic()
        deadline = started + CONVERGE_SECONDS
        if phase == "delete":
            assert stamp is not None
            gone = stamp
            self.cluster.kubectl("delete", "pe", name, "-n", self.namespace, "--wait=false")

            def converged() -> bool:
                return get(self.cluster, self.namespace, name) is None and self.census(
                    gone
                ).nothing_left

        else:
            sha = SHA_A if phase == "create" else SHA_B
            apply(self.cluster, self.namespace, preview(name, pr=pr, sha=sha, provider="gce"))
            if stamp is None:
                stamp = self.stamp_of(name)
            current = stamp

            def converged() -> bool:
                census = self.census(current)
                return (
                    census.counts() == (1, 1, 1)
                    and census.vms[0][1] == "RUNNING"
                    and is_ready_with(get(self.cluster, self.namespace, name), sha)
                )

        ok = self._until(converged, deadline)
        fired = self.switch.fired_on
        self.switch.disarm()
        result = PointResult(
            phase=phase,
            kill_at=kill_at,
            mutating_only=mutating_only,
            fired_on=fired,
            converged=ok,
            seconds=round(time.monotonic() - started, 1),
            restarts=self.restarts,
            census=str(self.census(stamp)),
            detail="" if ok else self.diagnostics(),
        )
        kind = "mutation" if mutating_only else "call"
        self.log(
            f"{phase:8} kill@{kind} {kill_at or '-':>3} "
            f"{'converged' if ok else 'NOT CONVERGED'} in {result.seconds:5.1f}s "
            f"after {fired or 'no kill'} ({result.census})"
        )
        return result, stamp

    def count_calls(
        self, phase: Phase, name: str, pr: int, stamp: Stamp | None
    ) -> tuple[int, int, Stamp]:
        """Run ``phase`` without faults: (calls, mutating calls) until it converged."""
        result, stamp = self.run_phase(phase, name, pr, None, stamp)
        if not result.converged:
            raise AssertionError(f"baseline {phase} did not converge:\n{result.detail}")
        return self.switch.count, self.switch.count_matching(MUTATING), stamp

    def diagnostics(self) -> str:
        logs = "".join(
            f"--- {op.log_path.name} (tail) ---\n{op.log_tail(60)}\n"
            for op in [self.operator, *self.extra_operators]
            if op is not None
        )
        return f"{logs}--- kubectl describe ---\n{describe(self.cluster, self.namespace)[-4000:]}"


def lifecycle_points(totals: dict[Phase, int], stride: int = 1) -> list[dict[Phase, int | None]]:
    """Kill points per lifecycle: lifecycle i kills each phase at its i-th point.

    With ``stride`` > 1 only every stride-th call of each phase is visited (1, 1+k, ...),
    always including the phase's last call.
    """
    per_phase: dict[Phase, list[int]] = {}
    for phase, total in totals.items():
        points = list(range(1, total + 1, stride))
        if total and points[-1] != total:
            points.append(total)
        per_phase[phase] = points
    longest = max((len(p) for p in per_phase.values()), default=0)
    return [
        {phase: (points[i] if i < len(points) else None) for phase, points in per_phase.items()}
        for i in range(longest)
    ]


def run_lifecycle(
    rig: CrashRig, label: str, pr: int, kills: dict[Phase, int | None], *, mutating_only: bool
) -> list[PointResult]:
    name = f"{label}-{uuid.uuid4().hex[:4]}"
    results: list[PointResult] = []
    stamp: Stamp | None = None
    for phase in PHASES:
        result, stamp = rig.run_phase(
            phase, name, pr, kills.get(phase), stamp, mutating_only=mutating_only
        )
        results.append(result)
        if not result.converged:
            break  # later phases would only measure the wreckage
    return results


def measure(rig: CrashRig) -> Totals:
    """Each phase's cloud calls, fault-free, on a fresh object."""
    calls: dict[Phase, int] = {}
    mutating: dict[Phase, int] = {}
    name, stamp = f"baseline-{uuid.uuid4().hex[:4]}", None
    for phase in PHASES:
        calls[phase], mutating[phase], stamp = rig.count_calls(phase, name, 999, stamp)
    rig.log(f"calls per phase without faults: {calls}; mutating: {mutating}")
    return Totals(calls, mutating)


def sweep(
    rig: CrashRig, totals: dict[Phase, int], *, stride: int = 1, mutating_only: bool = False
) -> list[PointResult]:
    """One lifecycle per row of ``lifecycle_points``; returns every phase's result."""
    results: list[PointResult] = []
    prefix = "mut" if mutating_only else "call"
    for i, kills in enumerate(lifecycle_points(totals, stride)):
        pr = (2000 if mutating_only else 1000) + i
        results += run_lifecycle(rig, f"{prefix}-{i}", pr, kills, mutating_only=mutating_only)
    return results


def format_table(totals: Totals, results: Sequence[PointResult]) -> str:
    lines = [
        f"{'phase':8} {'counting':9} {'calls':>5} {'kill points':>11} {'fired':>5} "
        f"{'converged':>9} {'leaks':>5} {'max s':>6}"
    ]
    for mutating_only in (True, False):
        kind = "mutating" if mutating_only else "all"
        for phase in PHASES:
            mine = [
                r
                for r in results
                if r.phase == phase and r.kill_at is not None and r.mutating_only == mutating_only
            ]
            if not mine:
                continue
            total = (totals.mutating if mutating_only else totals.calls).get(phase, 0)
            lines.append(
                f"{phase:8} {kind:9} {total:>5} {len(mine):>11} "
                f"{sum(r.fired_on is not None for r in mine):>5} "
                f"{sum(r.converged for r in mine):>9} {sum(r.leaked for r in mine):>5} "
                f"{max((r.seconds for r in mine), default=0):>6}"
            )
    for r in results:
        if r.leaked:
            lines.append(
                f"NOT CONVERGED: {r.phase} kill@{r.kill_at} after {r.fired_on}: {r.census}"
            )
    return "\n".join(lines)


@contextlib.contextmanager
def standalone_rig() -> Iterator[CrashRig]:
    """A cluster of its own (CRD applied), a namespace, and the rig: for ``main``."""
    crd = Path(__file__).resolve().parents[2] / "crds" / "previewenvironments.yaml"
    with LocalCluster() as cluster, tempfile.TemporaryDirectory(prefix="dd-crash-") as tmp:
        cluster.kubectl("apply", "-f", str(crd))
        cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                        "crd/previewenvironments.preview.devopsdefender.com")
        namespace = f"crash-{uuid.uuid4().hex[:6]}"
        cluster.kubectl("create", "namespace", namespace)
        with CrashRig(cluster, namespace, Path(tmp)) as rig:
            yield rig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.reliability.crash_harness",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="every call of every phase")
    parser.add_argument("--stride", type=int, default=5, help="without --full: every k-th call")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    with standalone_rig() as rig:
        totals = measure(rig)
        results = sweep(rig, totals.mutating, mutating_only=True)
        results += sweep(rig, totals.calls, stride=1 if args.full else args.stride)
    print(format_table(totals, results))
    if args.json:
        args.json.write_text(json.dumps([r.__dict__ for r in results], indent=1))
    return 0 if all(r.converged for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
