"""Pure: what one reaper sweep deletes, expires and warns about, and why not the rest.

``plan_sweep`` takes every listing, the live PreviewEnvironments (listed last), the
sightings remembered from earlier sweeps and ``now``; it does no I/O, so every rule
below is a table test (``tests/unit/test_sweep.py``). ``runner.py`` acts on the plan.

The rules, each from an incident of the predecessor (research/dd-spec.md section 4):

1. A listing that did not complete means "unknown", never "empty" (#282): if any source
   failed, no cloud object is deleted this sweep and every sighting is forgotten.
2. Only objects stamped with *our* cluster id are considered; unstamped objects and other
   clusters' objects are never touched (#186, #245).
3. An object whose owner (uid) is live is never an orphan, even mid-create. An owner with
   a deletionTimestamp is left to its finalizer. The one exception is a TERMINATED VM that
   its live owner does not record anywhere (instances, vm, operation, intent, or the VM
   its spec asks for): a suspended environment's stopped VM is recorded, so it stays.
4. A candidate is deleted only after two consecutive sightings and once older than the
   minimum age; at most ``max_deletions`` per sweep.
5. Order follows the finalizer: DNS records first, then VMs, then tunnels. A tunnel waits
   while a VM of its owner is still listed (Cloudflare refuses to delete a tunnel with
   live connectors) and while a CNAME still points at it, unless that CNAME is deleted
   earlier in the same sweep (``after``).

TTL: an object whose ``status.expiresAt`` has passed is expired (deleted with a uid
precondition so the finalizer tears it down) unless it carries the keep annotation; an
``ExpiringSoon`` warning is due once per renewal (``status.expiryWarnedFor``). Expiry needs
only the PreviewEnvironment listing, so a failed cloud listing does not hold it back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from ..conditions import parse_rfc3339
from ..errors import DDError
from ..model import parse_spec
from ..naming import KEEP_ANNOTATION, Stamp, instance_name, owner_of
from ..providers.base import DnsRecord, Tunnel, Vm
from ..settings import ReaperSettings

__all__ = [
    "Decision",
    "Expiration",
    "ExpiryWarning",
    "ListedVm",
    "Listings",
    "LiveObject",
    "Sighting",
    "SweepPlan",
    "live_object",
    "plan_sweep",
]

Kind = Literal["dns", "vm", "tunnel"]
Action = Literal["delete", "skip", "keep"]

KEEP_REASONS = ("unstamped", "other-cluster", "owner-live", "owner-deleting")
"""Not a candidate at all."""
CANDIDATE_REASONS = ("owner-gone", "terminated-unreferenced")
"""Why a candidate would be deleted."""
SKIP_REASONS = (
    "incomplete-listing",
    "first-sighting",
    "too-young",
    "over-cap",
    "vm-still-present",
    "dns-still-points-here",
)
"""Why a candidate was not deleted this sweep."""

TERMINATED = "TERMINATED"
REQUIRED_SIGHTINGS = 2


@dataclass(frozen=True)
class ListedVm:
    provider: str
    vm: Vm


@dataclass(frozen=True)
class Listings:
    """Everything the cloud listings returned; ``failures`` names each source that did not
    complete (``"gce: page 2 answered 503"``)."""

    vms: tuple[ListedVm, ...] = ()
    tunnels: tuple[Tunnel, ...] = ()
    dns: tuple[DnsRecord, ...] = ()
    failures: tuple[str, ...] = ()


@dataclass(frozen=True)
class LiveObject:
    """The part of a live PreviewEnvironment the reaper needs."""

    namespace: str
    name: str
    uid: str
    deleting: bool = False
    keep: bool = False
    expires_at: datetime | None = None
    expires_at_text: str = ""
    warned_for: str = ""
    """``status.expiryWarnedFor``: the expiresAt the last ExpiringSoon warning was about."""
    vm_names: frozenset[str] = frozenset()
    """Every VM name the object records or asks for."""
    body: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class Sighting:
    count: int
    first_seen: datetime


@dataclass(frozen=True)
class Decision:
    kind: Kind
    key: str
    """Stable identity across sweeps (sightings are keyed by it)."""
    label: str
    """For people: events and logs."""
    action: Action
    reason: str
    """A KEEP_, CANDIDATE_ or SKIP_REASON; for ``delete`` the candidate reason."""
    owner: str = ""
    target: Vm | Tunnel | DnsRecord | None = None
    provider: str = ""
    after: tuple[str, ...] = ()
    """Keys that must be deleted first in this sweep (a CNAME before its tunnel)."""
    candidate_reason: str = ""
    """For a skipped candidate: why it would have been deleted."""


@dataclass(frozen=True)
class Expiration:
    namespace: str
    name: str
    uid: str
    expires_at: str
    body: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class ExpiryWarning:
    namespace: str
    name: str
    uid: str
    expires_at: str
    body: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class SweepPlan:
    decisions: tuple[Decision, ...]
    expirations: tuple[Expiration, ...]
    warnings: tuple[ExpiryWarning, ...]
    sightings: Mapping[str, Sighting]
    """To remember for the next sweep."""
    incomplete: tuple[str, ...] = ()
    """Why no cloud object may be deleted this sweep (empty when every listing completed)."""

    @property
    def deletions(self) -> tuple[Decision, ...]:
        return tuple(d for d in self.decisions if d.action == "delete")

    @property
    def candidates(self) -> tuple[Decision, ...]:
        return tuple(d for d in self.decisions if d.action != "keep")

    @property
    def skips(self) -> tuple[Decision, ...]:
        return tuple(d for d in self.decisions if d.action == "skip")


def _vm_names(meta: Mapping[str, Any], spec: Mapping[str, Any], status: Mapping[str, Any],
              cluster_id: str) -> frozenset[str]:
    names = {str(i.get("name")) for i in status.get("instances") or [] if i.get("name")}
    for key in ("vm", "operation"):
        part = status.get(key) or {}
        names.add(str(part.get("name" if key == "vm" else "target") or ""))
    names.add(str((status.get("intent") or {}).get("target") or ""))
    try:
        parsed = parse_spec(spec, domain="")
        stamp = Stamp(cluster_id, str(meta.get("namespace")), str(meta.get("name")),
                      str(meta.get("uid")))
        names.add(instance_name(stamp, parsed.env, parsed.commit_sha))
    except DDError:
        pass  # a spec that no longer parses still protects what status records
    names.discard("")
    return frozenset(names)


def live_object(body: Mapping[str, Any], cluster_id: str) -> LiveObject:
    """A PreviewEnvironment as listed from the API -> ``LiveObject``."""
    meta = body.get("metadata") or {}
    status = body.get("status") or {}
    expires = str(status.get("expiresAt") or "")
    return LiveObject(
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        uid=str(meta.get("uid", "")),
        deleting=bool(meta.get("deletionTimestamp")),
        keep=str((meta.get("annotations") or {}).get(KEEP_ANNOTATION, "")).lower() == "true",
        expires_at=parse_rfc3339(expires),
        expires_at_text=expires,
        warned_for=str(status.get("expiryWarnedFor") or ""),
        vm_names=_vm_names(meta, body.get("spec") or {}, status, cluster_id),
        body=body,
    )


def _tunnel_target(tunnel_id: str) -> str:
    return f"{tunnel_id}.cfargotunnel.com"


@dataclass
class _Candidate:
    kind: Kind
    key: str
    label: str
    reason: str
    owner: str
    target: Vm | Tunnel | DnsRecord
    created_at: datetime | None
    provider: str = ""


def _classify(
    owner: tuple[str, str] | None,
    live: Mapping[str, LiveObject],
    cluster_id: str,
) -> tuple[Action, str]:
    if owner is None:
        return "keep", "unstamped"
    if owner[0] != cluster_id:
        return "keep", "other-cluster"
    obj = live.get(owner[1])
    if obj is None:
        return "skip", "owner-gone"
    return "keep", "owner-deleting" if obj.deleting else "owner-live"


def _owner_text(owner: tuple[str, str] | None) -> str:
    return f"ddp.{owner[0]}.{owner[1]}" if owner else ""


def plan_sweep(
    listings: Listings,
    live_objects: Iterable[LiveObject],
    sightings: Mapping[str, Sighting],
    now: datetime,
    settings: ReaperSettings,
    *,
    cluster_id: str,
) -> SweepPlan:
    live = {o.uid: o for o in live_objects}
    decisions: list[Decision] = []
    candidates: list[_Candidate] = []

    def consider(kind: Kind, key: str, label: str, owner: tuple[str, str] | None,
                 target: Vm | Tunnel | DnsRecord, created: datetime | None,
                 provider: str = "", vm_of_live_owner: Vm | None = None) -> None:
        action, reason = _classify(owner, live, cluster_id)
        if (
            reason == "owner-live"
            and vm_of_live_owner is not None
            and owner is not None
            and vm_of_live_owner.status == TERMINATED
            and vm_of_live_owner.name not in live[owner[1]].vm_names
        ):
            action, reason = "skip", "terminated-unreferenced"
        if action == "keep":
            decisions.append(Decision(kind, key, label, "keep", reason, _owner_text(owner),
                                      target, provider))
        else:
            candidates.append(_Candidate(kind, key, label, reason, _owner_text(owner), target,
                                         created, provider))

    for r in listings.dns:
        consider("dns", f"dns/{r.id}", f"DNS record {r.name} ({r.id})", owner_of(r.comment),
                 r, r.created_at)
    for lv in listings.vms:
        vm = lv.vm
        consider("vm", f"vm/{lv.provider}/{vm.zone}/{vm.name}",
                 f"VM {vm.name} ({lv.provider}, {vm.zone}, {vm.status})", vm.owner, vm,
                 vm.created_at, lv.provider, vm_of_live_owner=vm)
    for t in listings.tunnels:
        consider("tunnel", f"tunnel/{t.id}", f"tunnel {t.name} ({t.id})", owner_of(t.name), t,
                 t.created_at)

    expirations, warnings = _ttl(live.values(), now, settings)
    if listings.failures:
        why = "; ".join(listings.failures)
        decisions += [
            Decision(c.kind, c.key, c.label, "skip", "incomplete-listing", c.owner, c.target,
                     c.provider, candidate_reason=c.reason)
            for c in candidates
        ]
        return SweepPlan(tuple(decisions), expirations, warnings, {}, incomplete=(why,))

    new_sightings = {
        c.key: Sighting(
            sightings[c.key].count + 1 if c.key in sightings else 1,
            sightings[c.key].first_seen if c.key in sightings else now,
        )
        for c in candidates
    }
    min_age = timedelta(seconds=settings.min_age_seconds)
    deleted: dict[str, Decision] = {}
    listed_vm_owners = {lv.vm.owner for lv in listings.vms if lv.vm.owner}
    pointing: dict[str, list[str]] = {}
    for r in listings.dns:
        pointing.setdefault(r.content, []).append(f"dns/{r.id}")

    for c in candidates:  # already in dns, vm, tunnel order
        seen = new_sightings[c.key]
        born = c.created_at or seen.first_seen
        after: tuple[str, ...] = ()
        skip = ""
        if seen.count < REQUIRED_SIGHTINGS:
            skip = "first-sighting"
        elif now - born < min_age:
            skip = "too-young"
        elif c.kind == "tunnel":
            owner = owner_of(c.owner)
            assert isinstance(c.target, Tunnel)
            records = pointing.get(_tunnel_target(c.target.id), [])
            if owner in listed_vm_owners:
                skip = "vm-still-present"
            elif any(k not in deleted for k in records):
                skip = "dns-still-points-here"
            else:
                after = tuple(records)
        if not skip and len(deleted) >= settings.max_deletions:
            skip = "over-cap"
        if skip:
            decisions.append(Decision(c.kind, c.key, c.label, "skip", skip, c.owner, c.target,
                                      c.provider, candidate_reason=c.reason))
            continue
        d = Decision(c.kind, c.key, c.label, "delete", c.reason, c.owner, c.target, c.provider,
                     after=after, candidate_reason=c.reason)
        deleted[c.key] = d
        decisions.append(d)
    return SweepPlan(tuple(decisions), expirations, warnings, new_sightings)


def _ttl(
    objects: Iterable[LiveObject], now: datetime, settings: ReaperSettings
) -> tuple[tuple[Expiration, ...], tuple[ExpiryWarning, ...]]:
    expirations: list[Expiration] = []
    warnings: list[ExpiryWarning] = []
    window = timedelta(seconds=settings.expiry_warning_seconds)
    for o in sorted(objects, key=lambda o: (o.expires_at or now, o.namespace, o.name)):
        if o.deleting or o.keep or o.expires_at is None:
            continue
        if now >= o.expires_at:
            if len(expirations) < settings.max_deletions:
                expirations.append(Expiration(o.namespace, o.name, o.uid, o.expires_at_text,
                                              o.body))
        elif o.expires_at - now <= window and o.warned_for != o.expires_at_text:
            warnings.append(ExpiryWarning(o.namespace, o.name, o.uid, o.expires_at_text, o.body))
    return tuple(expirations), tuple(warnings)
