"""Apply one planned step: record the intent in status, then make exactly one call.

Each function returns the status patch that records the step's outcome. The caller
writes the intent (``intent_patch``) before calling ``apply_step`` for any step that
touches a cloud, so a crash on any line leaves a record of what may exist.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..conditions import rfc3339
from ..errors import PermanentFailure, TransientFailure
from ..kube import Kube
from ..model import Spec
from ..naming import InstanceName, Stamp, secret_name
from ..providers.base import (
    BootConfig,
    EdgeProvider,
    HoldsVmSecrets,
    PendingOperation,
    VmProvider,
    VmRequest,
)
from ..settings import OperatorSettings
from .observe import Observed
from .plan import Step, instance_records

__all__ = ["PassContext", "apply_step", "intent_patch"]


@dataclass(frozen=True)
class PassContext:
    spec: Spec | None
    """None only in teardown of an object whose spec no longer parses."""
    stamp: Stamp
    generation: int
    status: Mapping[str, Any]
    observed: Observed
    settings: OperatorSettings
    vm_provider: VmProvider | None
    """None only in teardown when the object's provider is not configured here."""
    edge: EdgeProvider | None
    kube: Kube
    zones: tuple[str, ...]
    now: datetime


def intent_patch(step: Step, now: datetime) -> dict[str, Any]:
    return {"intent": {"step": step.kind, "target": step.target, "startedAt": rfc3339(now)}}


def _op_patch(op: PendingOperation | None) -> dict[str, Any]:
    if op is None:
        return {"operation": None}
    return {"operation": {"kind": op.kind, "name": op.name, "zone": op.zone, "target": op.target}}


def _update_instance(ctx: PassContext, name: str, **fields: Any) -> dict[str, Any]:
    records = instance_records(ctx.status)
    for rec in records:
        if rec["name"] == name:
            rec.update({k: v for k, v in fields.items() if v is not None})
            for k in [k for k, v in fields.items() if v is None]:
                rec.pop(k, None)
    return {"instances": records}


def _failure_patch(ctx: PassContext, name: str, error: PermanentFailure) -> dict[str, Any]:
    """Remember a permanent create failure for this generation: no retry until the spec changes."""
    return _update_instance(
        ctx,
        name,
        failedReason=error.reason,
        failedMessage=str(error)[:300],
        failedGeneration=ctx.generation,
    )


def _vm_request(ctx: PassContext, name: InstanceName) -> VmRequest:
    spec, s = ctx.spec, ctx.settings
    assert spec is not None
    rec = next((r for r in instance_records(ctx.status) if r["name"] == name), {})
    secret = ctx.observed.secret or {}
    ttl = spec.ttl.total_seconds() if spec.ttl else None
    return VmRequest(
        name=name,
        stamp=ctx.stamp,
        pull_request=spec.pull_request,
        boot=BootConfig(
            env=spec.env,
            owner=spec.owner,
            hostname=spec.hostname,
            build_sha=spec.commit_sha,
            port=s.control_plane_port,
            version=spec.control_plane.version,
            extra_env=spec.control_plane.env,
            tunnel_token=secret.get("tunnel-token", ""),
            attest_token=secret.get("attest-token", ""),
        ),
        zones=ctx.zones,
        machine_type=spec.vm.machine_type or s.gce.machine_type,
        disk_size_gb=spec.vm.disk_size_gb or s.gce.disk_size_gb,
        max_run_seconds=int(ttl + s.gce.ttl_grace_seconds) if ttl else None,
        attempt=int(rec.get("attempt") or 0),
    )


async def _finish_operation(ctx: PassContext, step: Step) -> dict[str, Any]:
    state = ctx.observed.operation
    op = ctx.status.get("operation") or {}
    patch: dict[str, Any] = {"operation": None}
    error = state.error if state is not None else None
    if error is None or op.get("kind") != "insert":
        if error is not None:
            raise error
        return patch
    rec = next((r for r in instance_records(ctx.status) if r["name"] == step.target), {})
    if isinstance(error, PermanentFailure):
        patch.update(
            _update_instance(
                ctx,
                step.target,
                failedReason=error.reason,
                failedMessage=str(error)[:300],
                failedGeneration=ctx.generation,
            )
        )
    else:  # zone exhausted, quota, 5xx: try again with a fresh requestId (maybe another zone)
        patch.update(_update_instance(ctx, step.target, attempt=int(rec.get("attempt") or 0) + 1))
    return patch


async def _write_secret(ctx: PassContext) -> dict[str, Any]:
    data = dict(ctx.observed.secret or {})
    data.setdefault("attest-token", secrets.token_urlsafe(32))
    tunnel = ctx.observed.tunnel
    if ctx.edge is not None and tunnel is not None:
        data["tunnel-token"] = await ctx.edge.tunnel_token(tunnel)
        data["tunnel-id"] = tunnel.id
    await ctx.kube.write_secret(
        ctx.stamp.namespace,
        secret_name(ctx.stamp),
        data,
        owner={"name": ctx.stamp.name, "uid": ctx.stamp.uid},
    )
    return {}


def _require_vm_provider(ctx: PassContext) -> VmProvider:
    if ctx.vm_provider is None:
        raise PermanentFailure("ProviderNotConfigured", "this step needs the object's VM provider")
    return ctx.vm_provider


def _require_edge(ctx: PassContext) -> EdgeProvider:
    if ctx.edge is None:
        raise PermanentFailure("EdgeNotConfigured", "this step needs DD_EDGE=cloudflare")
    return ctx.edge


async def apply_step(step: Step, ctx: PassContext) -> dict[str, Any]:
    """Make the one call ``step`` asks for; return the status patch recording its outcome."""
    o = ctx.observed
    vm = o.vms.get(InstanceName(step.target)) if step.target else None
    match step.kind:
        case "finish-operation":
            return await _finish_operation(ctx, step)
        case "write-secret":
            return await _write_secret(ctx)
        case "create-tunnel":
            await _require_edge(ctx).create_tunnel(ctx.stamp)
            return {}  # recorded in status by configure-tunnel, once it routes
        case "configure-tunnel":
            assert o.tunnel is not None and ctx.spec is not None
            await _require_edge(ctx).configure_tunnel(
                o.tunnel,
                ctx.spec.hostname,
                ctx.settings.control_plane_port,
                suspended=ctx.spec.suspend,
            )
            return {
                "tunnel": {"id": o.tunnel.id, "name": o.tunnel.name, "suspended": ctx.spec.suspend}
            }
        case "create-dns":
            assert o.tunnel is not None and ctx.spec is not None
            r = await _require_edge(ctx).create_dns(ctx.stamp, ctx.spec.hostname, o.tunnel)
            return {"dns": {"recordId": r.id, "name": r.name}}
        case "delete-dns":
            if o.dns is not None:
                await _require_edge(ctx).delete_dns(o.dns)
            return {"dns": None}
        case "record-instance":
            assert ctx.spec is not None
            records = instance_records(ctx.status)
            records.append({"name": step.target, "build": ctx.spec.commit_sha, "attempt": 0})
            return {"instances": records}
        case "create-vm":
            try:
                op = await _require_vm_provider(ctx).create_vm(
                    _vm_request(ctx, InstanceName(step.target))
                )
            except PermanentFailure as exc:  # refused outright: a condition, no hot loop
                return _failure_patch(ctx, step.target, exc)
            return {
                **_op_patch(op),
                **_update_instance(ctx, step.target, zone=op.zone if op else None),
            }
        case "start-vm" | "stop-vm" | "delete-vm":
            if vm is None:
                return {}
            provider = _require_vm_provider(ctx)
            call = {
                "start-vm": provider.start_vm,
                "stop-vm": provider.stop_vm,
                "delete-vm": provider.delete_vm,
            }[step.kind]
            return _op_patch(await call(vm))
        case "renew-insert":  # status only: the next create-vm sends a fresh requestId
            rec = next((r for r in instance_records(ctx.status) if r["name"] == step.target), {})
            return _update_instance(
                ctx, step.target, attempt=int(rec.get("attempt") or 0) + 1, zone=None
            )
        case "forget-instance":
            return {
                "instances": [r for r in instance_records(ctx.status) if r["name"] != step.target]
            }
        case "record-attestation":
            att = o.attestation
            assert att is not None
            return _update_instance(ctx, step.target, mrtd=att.mrtd, dev=att.dev)
        case "promote":
            rec = next(r for r in instance_records(ctx.status) if r["name"] == step.target)
            assert vm is not None and ctx.spec is not None
            return {
                "vm": {
                    "name": vm.name,
                    "zone": vm.zone,
                    "status": vm.status,
                    "build": ctx.spec.commit_sha,
                    "mrtd": rec.get("mrtd", ""),
                    "dev": bool(rec.get("dev")),
                }
            }
        case "delete-tunnel":
            if o.tunnel is not None:
                await _require_edge(ctx).delete_tunnel(o.tunnel)
            return {"tunnel": None}
        case "delete-secret":
            # The provider's copies first (gce: Secret Manager); while they fail, the
            # Secret stays, so this step runs again (both deletes count 404 as done).
            if isinstance(ctx.vm_provider, HoldsVmSecrets):
                await ctx.vm_provider.delete_secrets(ctx.stamp)
            await ctx.kube.delete_secret(ctx.stamp.namespace, secret_name(ctx.stamp))
            return {}
    raise TransientFailure(f"step {step.kind} cannot be applied")
