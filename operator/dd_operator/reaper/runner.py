"""The reaper's actions: hold the Lease, list every source, plan, then act (or only say).

One active reaper across replicas: each replica tries to claim the Lease
``dd-preview-reaper`` in the operator's namespace (``Kube.claim_lease``) every tick; only
the holder sweeps. A Lease, not kopf peering, because peering is optional here (``--standalone``),
freezes both replicas when priorities are equal, and says nothing about the reaper; the
Lease works whichever way kopf runs. The holder renews it again just before deleting
anything, and deletes nothing if it lost it during a slow listing.

A sweep lists, in this order: each configured VM provider (every zone, every page), the
edge's tunnels and DNS records, and then, last, the live PreviewEnvironments (an owner
created while we listed the clouds is then still seen). Each failed source is recorded
rather than raised, so ``plan_sweep`` sees exactly which view is incomplete and deletes
nothing. Dry-run is the one ``if`` in ``_delete``.

What happened goes to the log (every decision that is not "keep"), to metrics, and to
events: on the Lease (``kubectl describe lease -n <operator ns> dd-preview-reaper``) for
cloud objects and incomplete sweeps, on the PreviewEnvironment for ExpiringSoon/Expired.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from .. import metrics
from ..errors import DDError
from ..kube import Kube
from ..model import KIND, VERSION, parse_spec
from ..naming import API_GROUP
from ..probes import Health
from ..providers.base import (
    DnsRecord,
    EdgeProvider,
    PullRequestReporter,
    Tunnel,
    Vm,
    VmProvider,
)
from ..reconcile.context import Identity
from ..reconcile.report import preview_report, tell_pull_request
from ..settings import OperatorSettings
from .sweep import (
    Decision,
    ListedVm,
    Listings,
    Sighting,
    SweepPlan,
    live_object,
    plan_sweep,
)

__all__ = ["LEASE_NAME", "Reaper"]

log = logging.getLogger(__name__)

LEASE_NAME = "dd-preview-reaper"


def _holder_identity() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


@dataclass
class Reaper:
    settings: OperatorSettings
    kube: Kube
    vm_providers: Mapping[str, VmProvider]
    edge: EdgeProvider | None
    health: Health
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    reporter: PullRequestReporter | None = None
    holder: str = field(default_factory=_holder_identity)
    sightings: dict[str, Sighting] = field(default_factory=dict)
    """In memory only: a restart forgets them, which only delays deletions (safe)."""
    lease: dict[str, Any] | None = None
    _last_failures: tuple[str, ...] = ()

    # -- the loop -------------------------------------------------------------------------

    @property
    def tick_seconds(self) -> float:
        r = self.settings.reaper
        return max(0.2, min(float(r.interval_seconds), r.lease_seconds / 3))

    async def run(self, stop: asyncio.Event) -> None:
        interval = self.settings.reaper.interval_seconds
        last_start: datetime | None = None
        while not stop.is_set():
            held = await self._claim()
            now = self.clock()
            if held and (last_start is None or (now - last_start).total_seconds() >= interval):
                last_start = now
                try:
                    await self.sweep_once()
                except Exception:
                    metrics.REAPER_SWEEPS.labels("failed").inc()
                    log.exception("reaper sweep failed; next attempt in %ss", interval)
            if not held:
                last_start = None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.tick_seconds)

    async def _claim(self) -> bool:
        r = self.settings.reaper
        try:
            self.lease = await self.kube.claim_lease(
                r.lease_namespace, LEASE_NAME, self.holder, r.lease_seconds
            )
        except DDError as exc:
            log.warning("reaper Lease %s/%s: %s", r.lease_namespace, LEASE_NAME, exc)
            self.lease = None
        self.health.reaper.holding(self.lease is not None, self.clock())
        return self.lease is not None

    # -- one sweep ------------------------------------------------------------------------

    async def list_sources(self) -> tuple[Listings, list[dict[str, Any]]]:
        cluster = self.settings.cluster_id
        vms: list[ListedVm] = []
        tunnels: list[Tunnel] = []
        records: list[DnsRecord] = []
        failures: list[str] = []
        for name, provider in self.vm_providers.items():
            try:
                vms += [ListedVm(name, vm) for vm in await provider.list_vms(cluster)]
            except Exception as exc:
                failures.append(f"vms/{name}: {exc}")
                metrics.REAPER_INCOMPLETE.labels(f"vms/{name}").inc()
        if self.edge is not None:
            for source, lister in (
                ("tunnels", self.edge.list_tunnels),
                ("dns", self.edge.list_dns),
            ):
                try:
                    found = await lister(cluster)
                except Exception as exc:
                    failures.append(f"{source}: {exc}")
                    metrics.REAPER_INCOMPLETE.labels(source).inc()
                    continue
                if source == "tunnels":
                    tunnels = [t for t in found if isinstance(t, Tunnel)]
                else:
                    records = [r for r in found if isinstance(r, DnsRecord)]
        live: list[dict[str, Any]] = []
        try:  # last: the freshest view of which owners exist
            live = await self.kube.list_environments()
        except Exception as exc:
            failures.append(f"kubernetes: {exc}")
            metrics.REAPER_INCOMPLETE.labels("kubernetes").inc()
        return Listings(tuple(vms), tuple(tunnels), tuple(records), tuple(failures)), live

    async def sweep_once(self) -> SweepPlan:
        listings, bodies = await self.list_sources()
        now = self.clock()
        kube_ok = not any(f.startswith("kubernetes:") for f in listings.failures)
        if kube_ok:
            self.health.watch.compare(bodies, now)
        cluster = self.settings.cluster_id
        plan = plan_sweep(
            listings,
            [live_object(b, cluster) for b in bodies],
            self.sightings,
            now,
            self.settings.reaper,
            cluster_id=cluster,
        )
        self.sightings = dict(plan.sightings)
        await self._report_plan(plan)
        if plan.deletions or plan.expirations:
            if await self._claim():  # renew right before acting; a lost Lease acts on nothing
                await self._apply(plan)
            else:
                log.warning("reaper lost its Lease during the sweep; nothing deleted")
        if kube_ok:
            for warning in plan.warnings:
                await self._warn(warning.body, warning.expires_at)
        self.health.reaper.swept(self.clock())
        return plan

    async def _report_plan(self, plan: SweepPlan) -> None:
        candidates: dict[str, int] = {"dns": 0, "vm": 0, "tunnel": 0}
        would: dict[str, int] = {"dns": 0, "vm": 0, "tunnel": 0}
        for d in plan.candidates:
            candidates[d.kind] += 1
        for d in plan.skips:
            metrics.REAPER_SKIPS.labels(d.reason).inc()
            log.info("reaper: skipped %s (%s; would be %s) owner %s", d.label, d.reason,
                     d.candidate_reason, d.owner)
        for d in plan.deletions:
            would[d.kind] += 1
        for kind, n in candidates.items():
            metrics.REAPER_CANDIDATES.labels(kind).set(n)
            metrics.REAPER_WOULD_DELETE.labels(kind).set(
                would[kind] if self.settings.reaper.dry_run else 0
            )
        if plan.incomplete:
            metrics.REAPER_SWEEPS.labels("incomplete").inc()
            why = plan.incomplete[0]
            log.warning("reaper: listing incomplete, deleting nothing this sweep: %s", why)
            if self._last_failures != (why,):
                await self._lease_event(
                    "Warning", "SweepIncomplete",
                    f"a listing did not complete; nothing deleted this sweep: {why}"[:1000],
                )
            self._last_failures = (why,)
        else:
            metrics.REAPER_SWEEPS.labels("complete").inc()
            self._last_failures = ()
        log.info(
            "reaper: sweep: %d candidates, %d to delete, %d skipped, %d expired, %d warned%s",
            len(plan.candidates), len(plan.deletions), len(plan.skips),
            len(plan.expirations), len(plan.warnings),
            " (dry run)" if self.settings.reaper.dry_run else "",
        )

    # -- acting ---------------------------------------------------------------------------

    async def _apply(self, plan: SweepPlan) -> None:
        failed: set[str] = set()
        for d in plan.deletions:
            if any(k in failed for k in d.after):
                metrics.REAPER_SKIPS.labels("dns-still-points-here").inc()
                failed.add(d.key)
                continue
            try:
                await self._delete(d)
            except Exception as exc:
                failed.add(d.key)
                metrics.REAPER_DELETE_FAILURES.labels(d.kind).inc()
                log.warning("reaper: deleting %s failed (next sweep retries): %s", d.label, exc)
        for e in plan.expirations:
            await self._expire(e.body, e.namespace, e.name, e.uid, e.expires_at)

    async def _delete(self, d: Decision) -> None:
        why = f"{d.label}: owner {d.owner} ({d.reason})"
        if self.settings.reaper.dry_run:
            log.info("reaper (dry run): would delete %s", why)
            await self._lease_event("Normal", "WouldDelete", f"dry run: would delete {why}")
            return
        log.info("reaper: deleting %s", why)
        if d.kind == "vm":
            assert isinstance(d.target, Vm)
            await self.vm_providers[d.provider].delete_vm(d.target)
        elif d.kind == "dns":
            assert isinstance(d.target, DnsRecord) and self.edge is not None
            await self.edge.delete_dns(d.target)
        else:
            assert isinstance(d.target, Tunnel) and self.edge is not None
            await self.edge.delete_tunnel(d.target)
        metrics.REAPER_DELETIONS.labels(d.kind, d.reason).inc()
        await self._lease_event("Normal", "Deleted", f"deleted orphan {why}")

    async def _expire(
        self, body: Mapping[str, Any], namespace: str, name: str, uid: str, expires_at: str
    ) -> None:
        what = f"{KIND} {namespace}/{name}"
        if self.settings.reaper.dry_run:
            log.info("reaper (dry run): would expire %s (expired at %s)", what, expires_at)
            await self._object_event(body, "Normal", "WouldExpire",
                                     f"dry run: ttl passed at {expires_at}; would delete")
            return
        log.info("reaper: %s expired at %s; deleting it", what, expires_at)
        await self._object_event(
            body, "Normal", "Expired", f"ttl passed at {expires_at}; deleting the environment"
        )
        try:
            await self.kube.delete_environment(namespace, name, uid)
        except DDError as exc:
            log.warning("reaper: could not delete expired %s: %s", what, exc)
            return
        metrics.REAPER_EXPIRATIONS.inc()

    async def _warn(self, body: Mapping[str, Any], expires_at: str) -> None:
        meta = body.get("metadata") or {}
        namespace, name = str(meta.get("namespace")), str(meta.get("name"))
        message = (
            f"this environment expires at {expires_at}; push a commit to renew it or annotate "
            f"it with preview.devopsdefender.com/keep=true to keep it"
        )
        await self._object_event(body, "Warning", "ExpiringSoon", message)
        await self._tell_expiring(body)
        try:
            await self.kube.patch_status(namespace, name, {"expiryWarnedFor": expires_at})
        except DDError as exc:
            log.warning("reaper: could not record the expiry warning of %s/%s: %s",
                        namespace, name, exc)
            return
        metrics.REAPER_EXPIRY_WARNINGS.inc()

    async def _tell_expiring(self, body: Mapping[str, Any]) -> None:
        if self.reporter is None:
            return
        ident = Identity.from_meta(body.get("metadata") or {})
        try:
            spec = parse_spec(body.get("spec") or {}, domain=self.settings.domain)
        except DDError:
            return
        report = replace(preview_report(spec, ident, body.get("status") or {}), expiring_soon=True)
        await tell_pull_request(self.reporter, ident, report)

    async def _lease_event(self, type_: str, reason: str, message: str) -> None:
        if self.lease is None:
            return
        involved = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", **self.lease}
        await self._post(involved, type_, reason, message)

    async def _object_event(
        self, body: Mapping[str, Any], type_: str, reason: str, message: str
    ) -> None:
        meta = body.get("metadata") or {}
        involved = {
            "apiVersion": f"{API_GROUP}/{VERSION}", "kind": KIND, "name": meta.get("name"),
            "namespace": meta.get("namespace"), "uid": meta.get("uid"),
        }
        await self._post(involved, type_, reason, message)

    async def _post(self, involved: Mapping[str, Any], type_: str, reason: str, msg: str) -> None:
        try:
            await self.kube.post_event(involved, type_, reason, msg)
        except DDError as exc:
            log.warning("reaper: could not post event %s: %s", reason, exc)
