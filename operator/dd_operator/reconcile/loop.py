"""One reconcile pass, and the teardown pass, over plain values.

A pass observes everything it needs, plans the next step, writes the status (only
what changed, intent included, before any cloud call), applies the step and returns
how long to wait before the next pass (0: go again now).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from ..conditions import (
    PROGRESS_REASONS,
    SUB_CONDITIONS,
    Cond,
    merge_conditions,
    status_changes,
    summarise_ready,
)
from ..errors import DDError, PermanentFailure, TransientFailure
from ..kube import Kube
from ..model import Spec, parse_spec
from ..naming import InstanceName, secret_name
from ..providers.base import (
    DnsRecord,
    EdgeProvider,
    PullRequestReporter,
    Tunnel,
    VmProvider,
)
from ..settings import OperatorSettings
from .apply import PassContext, apply_step, intent_patch
from .context import Identity, desired_instance
from .observe import Observed, observe_cloud, observe_serving
from .plan import (
    PlanSettings,
    Situation,
    Step,
    conditions_for,
    expires_at,
    instance_records,
    plan_next_step,
    renewed_at,
)
from .report import ready_condition, report_deleted, report_state
from .teardown import plan_teardown

__all__ = [
    "Deps",
    "PassResult",
    "reconcile_once",
    "record_failure",
    "report_deleted",
    "teardown_once",
]

log = logging.getLogger(__name__)

Emit = Callable[[str, str, str], None]
"""(type, reason, message) -> posts a Kubernetes event on the object."""


@dataclass
class Deps:
    """Long-lived collaborators, built once at operator start-up."""

    settings: OperatorSettings
    kube: Kube
    vm_providers: Mapping[str, VmProvider]
    edge: EdgeProvider | None
    http: httpx.AsyncClient
    reporter: PullRequestReporter | None = None
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    edge_views: dict[str, tuple[datetime, Tunnel | None, DnsRecord | None]] = field(
        default_factory=dict
    )
    """Per object uid: the last tunnel/record reading, once they need nothing more.

    Why: two Cloudflare lookups per pass per environment would spend the token's shared
    budget (1,200 calls per 5 minutes) while a VM boots or sits converged. A settled edge
    is re-read every ``edge_recheck_seconds``, and at once when it changes or stops
    serving the promoted VM (``_edge_settled``)."""

    def vm_provider(self, name: str) -> VmProvider:
        try:
            return self.vm_providers[name]
        except KeyError:
            raise PermanentFailure(
                "ProviderNotConfigured",
                f"provider {name!r} is not configured in this operator (see README: configuration)",
            ) from None

    def zones(self, provider: str, override: tuple[str, ...]) -> tuple[str, ...]:
        if provider == "local":
            return ("local",)
        return override or self.settings.gce.zones

    @property
    def plan_settings(self) -> PlanSettings:
        return PlanSettings(
            edge=self.edge is not None,
            require_tdx=self.settings.require_tdx,
            expected_mrtd=self.settings.expected_mrtd,
        )


@dataclass(frozen=True)
class PassResult:
    delay: float
    status: dict[str, Any]
    step: str
    done: bool = False
    seen: frozenset[InstanceName] = frozenset()
    """Teardown only: the VMs this pass found, to read by name in the next one."""


def _apply_patch(status: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(status)
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = v
    return out


async def _write(
    deps: Deps, ident: Identity, status: dict[str, Any], patch: Mapping[str, Any]
) -> dict[str, Any]:
    if patch:
        await deps.kube.patch_status(ident.namespace, ident.name, patch)
    return _apply_patch(status, patch)


def _invalid_spec_status(
    status: Mapping[str, Any], ident: Identity, exc: PermanentFailure, now: datetime
) -> dict[str, Any]:
    conds = [Cond("Ready", "False", exc.reason, str(exc))]
    return {
        "observedGeneration": ident.generation,
        "conditions": merge_conditions(
            status.get("conditions") or [], conds, generation=ident.generation, now=now
        ),
    }


async def reconcile_once(
    deps: Deps,
    meta: Mapping[str, Any],
    raw_spec: Mapping[str, Any],
    status: dict[str, Any],
    emit: Emit,
) -> PassResult:
    now = deps.clock()
    ident = Identity.from_meta(meta)
    try:
        spec = parse_spec(raw_spec, domain=deps.settings.domain)
        vm_provider = deps.vm_provider(spec.provider)
    except PermanentFailure as exc:
        patch = status_changes(status, _invalid_spec_status(status, ident, exc, now))
        if patch:
            emit("Warning", exc.reason, str(exc))
        return PassResult(600, await _write(deps, ident, status, patch), "invalid")

    stamp = ident.stamp(deps.settings.cluster_id)
    desired = desired_instance(stamp, spec)
    zones = deps.zones(spec.provider, spec.vm.zones)
    active_name = (status.get("vm") or {}).get("name")
    candidates = [desired, *(InstanceName(r["name"]) for r in instance_records(status))]
    if active_name:
        candidates.append(InstanceName(active_name))
    secret = await deps.kube.read_secret(ident.namespace, secret_name(stamp))
    view = deps.edge_views.get(ident.uid)
    recheck = deps.settings.edge_recheck_seconds
    fresh = view is not None and (now - view[0]).total_seconds() < recheck
    observed = await observe_cloud(
        stamp=stamp,
        candidates=candidates,
        zones=zones,
        status=status,
        hostname=spec.hostname,
        vm_provider=vm_provider,
        edge=deps.edge,
        secret=secret,
        edge_view=(view[1], view[2]) if view is not None and fresh else None,
    )
    rec = next((r for r in instance_records(status) if r["name"] == desired), {})
    active = observed.vms.get(InstanceName(active_name)) if active_name else None
    observed = await observe_serving(
        observed,
        client=deps.http,
        desired=observed.vms.get(desired),
        desired_needs_attestation=not rec.get("mrtd"),
        active=active,
        expected_build=spec.commit_sha,
        checks=deps.settings.health_checks,
        edge=deps.edge,
        hostname=spec.hostname,
    )
    situation = Situation(
        spec=spec,
        stamp=stamp,
        generation=ident.generation,
        status=status,
        observed=observed,
        desired=desired,
        settings=deps.plan_settings,
    )
    step = plan_next_step(situation)
    conds = conditions_for(situation)
    renewed = renewed_at(spec, status, now)
    url = (
        deps.edge.public_url(spec.hostname)
        if deps.edge
        else (active.endpoint if active and active.endpoint else status.get("url"))
    )
    base: dict[str, Any] = {
        "observedGeneration": ident.generation,
        "shortSha": spec.commit_sha[:7],
        "renewedAt": renewed.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "expiresAt": expires_at(spec, renewed),
        "url": url,
        "conditions": merge_conditions(
            status.get("conditions") or [], conds, generation=ident.generation, now=now
        ),
    }
    if active is not None and (status.get("vm") or {}).get("status") != active.status:
        base["vm"] = {**status.get("vm", {}), "status": active.status}
    if step.kind in ("wait", "done"):
        base["intent"] = None
        if step.why == "DNSConflict" and (status.get("conditions") or []) != base["conditions"]:
            emit("Warning", "DNSConflict", conds[2].message)
    elif step.mutates_cloud:
        base.update(intent_patch(step, now))
    patch = {
        k: v for k, v in status_changes(status, base).items() if not (v is None and k not in status)
    }
    _emit_transitions(emit, status, base)
    status = await _write(deps, ident, status, patch)
    status = await report_state(deps, ident, spec, status)
    if deps.edge is not None and _edge_settled(step, status, observed, desired):
        if not fresh:
            deps.edge_views[ident.uid] = (now, observed.tunnel, observed.dns)
    else:
        deps.edge_views.pop(ident.uid, None)
    if step.kind in ("wait", "done"):
        return PassResult(step.delay, status, step.kind)
    log.info("%s/%s: %s %s %s", ident.namespace, ident.name, step.kind, step.target, step.why)
    ctx = PassContext(
        spec=spec,
        stamp=stamp,
        generation=ident.generation,
        status=status,
        observed=observed,
        settings=deps.settings,
        vm_provider=vm_provider,
        edge=deps.edge,
        kube=deps.kube,
        zones=zones,
        now=now,
    )
    status = await _write(deps, ident, status, await apply_step(step, ctx))
    if step.kind == "promote":
        emit("Normal", "Promoted", f"{step.target} now serves build {spec.commit_sha[:7]}")
    return PassResult(0, status, step.kind)


async def record_failure(
    deps: Deps, meta: Mapping[str, Any], status: dict[str, Any], exc: DDError, emit: Emit
) -> dict[str, Any]:
    """A pass that failed still tells kubectl why (DESIGN 3.2, invariant 7).

    A permanent failure (e.g. 403 on every read) becomes VMReady/Ready False with its
    reason; a transient one (e.g. every zone out of quota) becomes ``Retrying`` with its
    message, but only while the environment is not serving yet, so a one-off 503 never
    flips a serving Ready. Returns the status as written (the daemon keeps it).
    """
    if isinstance(exc, PermanentFailure):
        vm = Cond("VMReady", "False", exc.reason, str(exc))
    elif isinstance(exc, TransientFailure) and ready_condition(status).get("status") != "True":
        vm = Cond("VMReady", "False", "Retrying", str(exc))
    else:
        return status
    ident = Identity.from_meta(meta)
    old = {c.get("type"): c for c in status.get("conditions") or []}
    conds = {
        t: Cond(t, old[t]["status"], old[t].get("reason", ""), old[t].get("message", ""))
        for t in SUB_CONDITIONS
        if t in old
    }
    conds["VMReady"] = vm
    wanted = [*conds.values(), summarise_ready(conds)]
    merged = merge_conditions(
        status.get("conditions") or [], wanted, generation=ident.generation, now=deps.clock()
    )
    patch = status_changes(status, {"conditions": merged})
    try:
        written = await _write(deps, ident, status, patch)
    except Exception as write_exc:  # the daemon's own backoff must go on regardless
        log.warning(
            "%s/%s: could not record %s: %s", ident.namespace, ident.name, vm.reason, write_exc
        )
        return status
    _emit_transitions(emit, status, written)
    return written


EDGE_STEPS = frozenset(
    {"create-tunnel", "configure-tunnel", "write-secret", "create-dns", "delete-dns"}
)


def _edge_settled(step: Step, status: Mapping[str, Any], observed: Observed, desired: str) -> bool:
    """The tunnel and CNAME need nothing (so a recent reading may stand in for a new one),
    unless the promoted VM stopped answering through them: then read them again at once."""
    if step.kind in EDGE_STEPS or step.why == "DNSConflict":
        return False
    promoted = (status.get("vm") or {}).get("name") == desired
    serving = observed.public_health is not None and observed.public_health.ok
    return serving or not promoted


def _emit_transitions(emit: Emit, old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
    """One event per Ready transition, not per pass (events fan out like status writes)."""

    before, after = ready_condition(old), ready_condition(new)
    if (after.get("status"), after.get("reason")) == (before.get("status"), before.get("reason")):
        return
    reason = str(after.get("reason", ""))
    warn = after.get("status") == "False" and reason not in PROGRESS_REASONS
    emit("Warning" if warn else "Normal", reason, str(after.get("message", "")))


async def teardown_once(
    deps: Deps,
    meta: Mapping[str, Any],
    raw_spec: Mapping[str, Any],
    status: dict[str, Any],
    *,
    listed: frozenset[InstanceName] | None = None,
) -> PassResult:
    """One teardown pass; ``done`` means every external object is confirmed gone.

    ``listed``: VM names a listing of our stamp already found in an earlier pass of this
    teardown. None means "list now" (the first pass): the list is the safety net for a VM
    that status forgot, and one list per teardown is enough, since every later pass reads
    those names one by one (``PassResult.seen`` carries them to the next pass).
    """
    ident = Identity.from_meta(meta)
    stamp = ident.stamp(deps.settings.cluster_id)
    provider = str(raw_spec.get("provider") or "local")
    vm_provider: VmProvider | None
    try:
        vm_provider = deps.vm_provider(provider)
    except PermanentFailure:
        if instance_records(status) or status.get("vm") or status.get("operation"):
            raise  # it may own VMs we cannot see: keep the finalizer, say why
        vm_provider = None  # nothing was ever created through it
    try:
        spec: Spec | None = parse_spec(raw_spec, domain=deps.settings.domain)
    except DDError:
        spec = None  # stored before a schema change: tear down by status and stamp alone
    candidates = [desired_instance(stamp, spec)] if spec else []
    candidates += [InstanceName(r["name"]) for r in instance_records(status)]
    if (status.get("vm") or {}).get("name"):
        candidates.append(InstanceName(status["vm"]["name"]))
    candidates += sorted(listed or ())
    zones = deps.zones(provider, spec.vm.zones if spec else ())
    secret = await deps.kube.read_secret(ident.namespace, secret_name(stamp))
    observed = await observe_cloud(
        stamp=stamp,
        candidates=candidates,
        zones=zones,
        status=status,
        hostname=spec.hostname if spec else (status.get("dns") or {}).get("name"),
        vm_provider=vm_provider,
        edge=deps.edge,
        secret=secret,
        include_listing=listed is None,
    )
    seen = frozenset(name for name, vm in observed.vms.items() if vm is not None)
    step = plan_teardown(status=status, observed=observed, edge=deps.edge is not None)
    if step.kind == "done":
        deps.edge_views.pop(ident.uid, None)
        return PassResult(0, status, "done", done=True)
    if step.kind == "wait":
        return PassResult(step.delay, status, "wait", seen=seen)
    if step.mutates_cloud:
        status = await _write(deps, ident, status, intent_patch(step, deps.clock()))
    log.info("%s/%s: teardown %s %s", ident.namespace, ident.name, step.kind, step.target)
    ctx = PassContext(
        spec=spec,
        stamp=stamp,
        generation=ident.generation,
        status=status,
        observed=observed,
        settings=deps.settings,
        vm_provider=vm_provider,
        edge=deps.edge,
        kube=deps.kube,
        zones=zones,
        now=deps.clock(),
    )
    outcome = await apply_step(step, ctx)
    return PassResult(0, await _write(deps, ident, status, outcome), step.kind, seen=seen)
