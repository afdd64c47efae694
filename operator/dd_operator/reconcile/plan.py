"""Pure planning: given what we want and what we saw, what is the next single step?

No I/O and no clock: ``now`` is a parameter, so every branch is a table test.
The order encodes the design's invariants:

- an operation in flight is watched to its end before anything else happens;
- the edge (tunnel, token, CNAME) exists before any VM needs it;
- a VM's name is recorded in status before it is created (intent before side effect);
- a new commit's VM must be healthy and attested before it is promoted, and old VMs
  are stopped and deleted only after that (blue/green; no VM fences itself).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from ..conditions import Cond, parse_rfc3339, rfc3339, summarise_ready
from ..errors import PermanentFailure, TransientFailure
from ..model import Spec
from ..naming import InstanceName, Stamp, is_ours
from .observe import Observed

__all__ = [
    "PlanSettings",
    "Situation",
    "Step",
    "conditions_for",
    "instance_records",
    "plan_next_step",
]

StepKind = Literal[
    "finish-operation",
    "write-secret",
    "create-tunnel",
    "configure-tunnel",
    "create-dns",
    "delete-dns",
    "record-instance",
    "create-vm",
    "start-vm",
    "stop-vm",
    "delete-vm",
    "forget-instance",
    "renew-insert",
    "record-attestation",
    "promote",
    "delete-tunnel",
    "delete-secret",
    "wait",
    "done",
]

RUNNING = "RUNNING"
BOOTING = frozenset({"PROVISIONING", "STAGING", "REPAIRING"})
HALTED = frozenset({"TERMINATED", "STOPPED", "SUSPENDED"})
HALTING = frozenset({"STOPPING", "SUSPENDING"})


@dataclass(frozen=True)
class PlanSettings:
    edge: bool
    require_tdx: bool
    expected_mrtd: str


@dataclass(frozen=True)
class Step:
    kind: StepKind
    target: str = ""
    delay: float = 0.0
    """For ``wait``/``done``: seconds until the next pass."""
    why: str = ""

    @property
    def mutates_cloud(self) -> bool:
        return self.kind in {
            "create-tunnel",
            "configure-tunnel",
            "create-dns",
            "delete-dns",
            "create-vm",
            "start-vm",
            "stop-vm",
            "delete-vm",
            "delete-tunnel",
        }


def instance_records(status: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [dict(i) for i in status.get("instances") or [] if i.get("name")]


def _record(status: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    return next((i for i in instance_records(status) if i["name"] == name), None)


def _edge_step(
    spec: Spec, stamp: Stamp, status: Mapping[str, Any], observed: Observed
) -> Step | None:
    tunnel, dns, secret = observed.tunnel, observed.dns, observed.secret or {}
    if tunnel is None:
        return Step("create-tunnel", why="no tunnel for this environment yet")
    if (status.get("tunnel") or {}).get("id") != tunnel.id:
        return Step("configure-tunnel", tunnel.id, why="route the hostname to the control plane")
    if bool((status.get("tunnel") or {}).get("suspended")) != spec.suspend:
        why = "suspended: the hostname answers 503" if spec.suspend else "resumed"
        return Step("configure-tunnel", tunnel.id, why=why)
    if secret.get("tunnel-id") != tunnel.id:
        return Step("write-secret", why="store the tunnel token for the VM")
    if dns is None:
        return Step("create-dns", spec.hostname, why="no CNAME yet")
    if not is_ours(dns.comment, stamp):
        return Step("wait", delay=300, why="DNSConflict")
    if dns.content != f"{tunnel.id}.cfargotunnel.com":
        return Step("delete-dns", dns.id, why="our CNAME points at another tunnel")
    return None


@dataclass(frozen=True)
class Situation:
    """Everything one planning decision looks at: what we want and what we saw."""

    spec: Spec
    stamp: Stamp
    generation: int
    status: Mapping[str, Any]
    observed: Observed
    desired: InstanceName
    """The VM name for this spec's commit (``context.desired_instance``)."""
    settings: PlanSettings


def plan_next_step(situation: Situation) -> Step:
    spec, stamp, generation = situation.spec, situation.stamp, situation.generation
    status, observed, desired = situation.status, situation.observed, situation.desired
    settings = situation.settings
    op = observed.operation
    if status.get("operation", {}) and status["operation"].get("name"):
        if op is not None and not op.done:
            return Step("wait", delay=2, why=f"{status['operation'].get('kind')} in progress")
        return Step("finish-operation", str(status["operation"].get("target", "")))

    secret = observed.secret or {}
    if not secret.get("attest-token"):
        return Step("write-secret", why="create the environment's attest token")
    if settings.edge and (step := _edge_step(spec, stamp, status, observed)) is not None:
        return step

    records = instance_records(status)
    active = (status.get("vm") or {}).get("name")
    if spec.suspend:
        for rec in records:
            vm = observed.vms.get(InstanceName(rec["name"]))
            if vm is not None and (vm.status == RUNNING or vm.status in BOOTING):
                return Step("stop-vm", rec["name"], why="suspended")
        return Step("done", delay=60, why="suspended")

    found = _record(status, desired)
    if found is None:
        return Step("record-instance", desired, why=f"new build {spec.commit_sha[:7]}")
    rec = found
    vm = observed.vms.get(desired)
    failed_at = rec.get("failedGeneration")
    if rec.get("failedReason") and failed_at is not None and failed_at >= generation:
        return Step("wait", delay=600, why=str(rec["failedReason"]))
    if vm is None:
        if rec.get("zone"):
            # An insert of this record was accepted and the VM is now confirmed absent
            # (deleted out of band). Its requestId would be de-duplicated by GCE, answering
            # the old DONE operation and creating nothing: take a new attempt first.
            return Step("renew-insert", desired, why="the VM is gone; insert it again")
        return Step("create-vm", desired)
    if vm.status in HALTED:
        return Step("start-vm", desired)
    if vm.status != RUNNING:
        return Step("wait", delay=3, why=f"VM is {vm.status}")
    if active != desired:
        health = observed.health
        if health is None or not health.ok:
            return Step("wait", delay=3, why="waiting for /health to report the new build")
        if not rec.get("mrtd"):
            att = observed.attestation
            if att is None or not att.mrtd:
                return Step("wait", delay=5, why="waiting for an attestation quote")
            return Step("record-attestation", desired)
        if not attestation_acceptable(rec.get("mrtd", ""), bool(rec.get("dev")), settings)[0]:
            return Step("wait", delay=300, why="attestation not acceptable")
        return Step("promote", desired)

    for other in records:
        name = InstanceName(other["name"])
        if name == desired:
            continue
        old = observed.vms.get(name)
        if old is None:
            return Step("forget-instance", name)
        if old.status == RUNNING or old.status in BOOTING:
            return Step("stop-vm", name, why="replaced by a newer build")
        if old.status in HALTING:
            return Step("wait", delay=2, why=f"old VM {name} is stopping")
        return Step("delete-vm", name, why="replaced by a newer build")
    if observed.public_health is not None and not observed.public_health.ok:
        # Converged but not answering (a crashed control plane, a broken route): look again
        # soon, so Ready reflects it and recovery is noticed in seconds, not half a minute.
        return Step("done", delay=5, why="not serving")
    return Step("done", delay=30)


def attestation_acceptable(mrtd: str, dev: bool, settings: PlanSettings) -> tuple[bool, str, str]:
    """(ok, reason, message) for a recorded measurement."""
    if dev and settings.require_tdx:
        return False, "NotTDX", "the VM answered with a development stand-in, not a TDX quote"
    if settings.expected_mrtd and mrtd != settings.expected_mrtd:
        return False, "MeasurementMismatch", f"MRTD {mrtd[:16]}... is not the expected measurement"
    if dev:
        return True, "DevelopmentQuote", "unsigned development stand-in (no TDX on this host)"
    return True, "TDXQuote", f"MRTD {mrtd[:16]}..."


def _vm_condition(
    spec: Spec,
    status: Mapping[str, Any],
    observed: Observed,
    desired: InstanceName,
    generation: int,
    error: Exception | None,
) -> Cond:
    if spec.suspend:
        return Cond("VMReady", "False", "Suspended", "spec.suspend is true: the VM is stopped")
    rec = _record(status, desired) or {}
    if rec.get("failedReason") and (rec.get("failedGeneration") or 0) >= generation:
        return Cond("VMReady", "False", str(rec["failedReason"]), str(rec.get("failedMessage", "")))
    if isinstance(error, PermanentFailure):
        return Cond("VMReady", "False", error.reason, str(error))
    vm = observed.vms.get(desired)
    active = (status.get("vm") or {}).get("name")
    if vm is not None and vm.status == RUNNING and active == desired:
        return Cond("VMReady", "True", "Running", f"{vm.name} in {vm.zone}")
    if isinstance(error, TransientFailure):
        return Cond("VMReady", "False", "Retrying", str(error))
    if vm is None:
        return Cond("VMReady", "False", "Creating", f"creating {desired}")
    if vm.status == RUNNING:
        return Cond(
            "VMReady", "False", "Starting", f"{vm.name} is running; waiting for its control plane"
        )
    return Cond("VMReady", "False", "Provisioning", f"{vm.name} is {vm.status}")


def conditions_for(situation: Situation, *, error: Exception | None = None) -> list[Cond]:
    """Every condition, computed from the same observation as the step."""
    spec, stamp, generation = situation.spec, situation.stamp, situation.generation
    status, observed, desired = situation.status, situation.observed, situation.desired
    settings = situation.settings
    conds: dict[str, Cond] = {}
    conds["VMReady"] = _vm_condition(spec, status, observed, desired, generation, error)
    if not settings.edge:
        conds["TunnelReady"] = Cond("TunnelReady", "True", "DirectURL", "no edge configured")
        conds["DNSReady"] = Cond("DNSReady", "True", "DirectURL", "no edge configured")
    else:
        t, d = observed.tunnel, observed.dns
        configured = t is not None and (status.get("tunnel") or {}).get("id") == t.id
        conds["TunnelReady"] = (
            Cond("TunnelReady", "True", "Configured", f"tunnel {t.name}")
            if configured and t is not None
            else Cond("TunnelReady", "False", "Creating", "creating the Cloudflare tunnel")
        )
        if d is None:
            conds["DNSReady"] = Cond(
                "DNSReady", "False", "Creating", f"creating CNAME {spec.hostname}"
            )
        elif not is_ours(d.comment, stamp):
            conds["DNSReady"] = Cond(
                "DNSReady",
                "False",
                "DNSConflict",
                f"{spec.hostname} already has a DNS record that dd-preview does not own; "
                "remove it or choose another spec.hostname",
            )
        elif t is not None and d.content == f"{t.id}.cfargotunnel.com":
            conds["DNSReady"] = Cond("DNSReady", "True", "RecordPresent", f"{d.name} -> tunnel")
        else:
            conds["DNSReady"] = Cond(
                "DNSReady", "False", "Updating", "pointing the CNAME at the tunnel"
            )
    ph = observed.public_health
    if spec.suspend:
        conds["ControlPlaneHealthy"] = Cond(
            "ControlPlaneHealthy", "False", "Suspended", "suspended"
        )
    elif ph is not None and ph.ok:
        conds["ControlPlaneHealthy"] = Cond(
            "ControlPlaneHealthy", "True", "Healthy", f"serving build {spec.commit_sha[:7]}"
        )
    else:
        detail = ph.detail if ph is not None else "not reachable yet"
        conds["ControlPlaneHealthy"] = Cond("ControlPlaneHealthy", "False", "NotServing", detail)
    vm = status.get("vm") or {}
    if vm.get("mrtd"):
        ok, reason, message = attestation_acceptable(vm["mrtd"], bool(vm.get("dev")), settings)
        conds["Attested"] = Cond("Attested", "True" if ok else "False", reason, message)
    else:
        att = observed.attestation
        detail = att.error if att is not None and att.error else "no quote recorded yet"
        conds["Attested"] = Cond("Attested", "Unknown", "Pending", detail)
    ordered = [
        conds[k] for k in ("VMReady", "TunnelReady", "DNSReady", "ControlPlaneHealthy", "Attested")
    ]
    return [*ordered, summarise_ready(conds)]


def expires_at(spec: Spec, renewed_at: datetime) -> str | None:
    return rfc3339(renewed_at + spec.ttl) if spec.ttl else None


def renewed_at(spec: Spec, status: Mapping[str, Any], now: datetime) -> datetime:
    """The ttl clock restarts whenever a new commitSha is first seen."""
    seen = parse_rfc3339(status.get("renewedAt"))
    if status.get("shortSha") == spec.commit_sha[:7] and seen is not None:
        return seen
    return now.replace(microsecond=0)
