"""Observe: read the world by name, through the same providers that change it.

Every read that fails raises (``TransientFailure``): the planner only ever sees
"present", "confirmed absent" (None) or "unknown" (this pass aborts and retries).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from ..naming import InstanceName, Stamp, is_instance_of, is_ours
from ..providers.base import (
    DnsRecord,
    EdgeProvider,
    OperationState,
    PendingOperation,
    Tunnel,
    Vm,
    VmProvider,
)
from .probe import Attestation, Health, check_health, fetch_attestation, health_from_response

__all__ = ["Observed", "observe_cloud", "observe_serving", "pending_operation"]


@dataclass(frozen=True)
class Observed:
    vms: Mapping[InstanceName, Vm | None]
    operation: OperationState | None = None
    tunnel: Tunnel | None = None
    dns: DnsRecord | None = None
    secret: Mapping[str, str] | None = None
    health: Health | None = None
    """Direct health of the desired VM (gates promotion)."""
    public_health: Health | None = None
    """Health as users see it: through the edge, or the active VM's own URL."""
    attestation: Attestation | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


def pending_operation(status: Mapping[str, Any]) -> PendingOperation | None:
    op = status.get("operation") or {}
    if not op.get("name"):
        return None
    return PendingOperation(
        kind=op["kind"], name=op["name"], zone=op.get("zone", ""), target=InstanceName(op["target"])
    )


async def observe_cloud(
    *,
    stamp: Stamp,
    candidates: Iterable[InstanceName],
    zones: tuple[str, ...],
    status: Mapping[str, Any],
    hostname: str | None,
    vm_provider: VmProvider | None,
    edge: EdgeProvider | None,
    secret: Mapping[str, str] | None,
    include_listing: bool = False,
    edge_view: tuple[Tunnel | None, DnsRecord | None] | None = None,
) -> Observed:
    """``edge_view``: a recent reading of the tunnel and record to reuse instead of listing."""
    vms: dict[InstanceName, Vm | None] = {}
    op = pending_operation(status)
    if vm_provider is None:  # teardown of an object whose provider was never configured here
        candidates, include_listing = [], False
    op_state = await vm_provider.check_operation(op) if op and vm_provider else None
    ours = (stamp.cluster_id, stamp.uid)
    for name in dict.fromkeys(candidates):
        assert vm_provider is not None
        if not is_instance_of(stamp, name):
            vms[name] = None  # a name in (writable) status that this environment never made
            continue
        vm = await vm_provider.get_vm(name, zones)
        vms[name] = vm if vm is None or vm.owner == ours else None  # no stamp, no touch
    if (
        include_listing and vm_provider is not None
    ):  # teardown: also anything stamped with our uid that status forgot
        for vm in await vm_provider.list_vms(stamp.cluster_id):
            if vm.owner == ours:
                vms.setdefault(vm.name, vm)
    tunnel = dns = None
    if edge is not None and edge_view is not None:
        tunnel, dns = edge_view
    elif edge is not None:
        tunnel = await edge.find_tunnel(stamp)
        dns = await edge.find_dns(hostname) if hostname else None
        if include_listing and dns is not None and not is_ours(dns.comment, stamp):
            dns = None  # never touch someone else's record on the way out
    return Observed(vms=vms, operation=op_state, tunnel=tunnel, dns=dns, secret=secret)


async def observe_serving(
    observed: Observed,
    *,
    client: httpx.AsyncClient,
    desired: Vm | None,
    desired_needs_attestation: bool,
    active: Vm | None,
    expected_build: str,
    checks: int,
    edge: EdgeProvider | None,
    hostname: str,
) -> Observed:
    """Add the health and attestation reads (only for VMs that are running)."""
    health = attestation = public = None
    if desired is not None and desired.status == "RUNNING" and desired.endpoint:
        health = await check_health(client, desired.endpoint, expected_build, checks=checks)
        token = (observed.secret or {}).get("attest-token", "")
        if health.ok and desired_needs_attestation and token:
            attestation = await fetch_attestation(client, desired.endpoint, token)
    if edge is not None:
        try:
            public = health_from_response(await edge.probe(hostname), expected_build)
        except httpx.HTTPError as exc:
            public = Health(False, detail=f"https://{hostname} unreachable ({type(exc).__name__})")
    elif active is not None and active.status == "RUNNING" and active.endpoint:
        public = await check_health(client, active.endpoint, expected_build, checks=1)
    return Observed(
        vms=observed.vms,
        operation=observed.operation,
        tunnel=observed.tunnel,
        dns=observed.dns,
        secret=observed.secret,
        health=health,
        public_health=public,
        attestation=attestation,
    )
