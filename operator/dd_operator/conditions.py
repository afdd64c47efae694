"""Condition bookkeeping, following the Kubernetes API conventions.

``lastTransitionTime`` moves only when ``status`` flips, and ``Ready`` summarises the
sub-conditions with the reason of the first one that blocks. ``status_changes`` tells
whether a status write would change anything, so we write only on real transitions
(every write fans out to every watcher).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

__all__ = [
    "PERMANENT_REASONS",
    "PROGRESS_REASONS",
    "SUB_CONDITIONS",
    "Cond",
    "merge_conditions",
    "parse_rfc3339",
    "rfc3339",
    "status_changes",
    "summarise_ready",
]

CondStatus = Literal["True", "False", "Unknown"]

SUB_CONDITIONS = ("VMReady", "TunnelReady", "DNSReady", "ControlPlaneHealthy", "Attested")
"""In the order a person would fix them; Ready names the first that is not True."""

PERMANENT_REASONS = frozenset(
    {
        "InvalidSpec",
        "InvalidConfig",
        "InvalidMachineType",
        "ImageNotFound",
        "InvalidImage",
        "PermissionDenied",
        "ProviderNotConfigured",
        "EdgeNotConfigured",
        "CloudflareAuth",
        "CloudflareRejected",
        "DNSConflict",
        "NotOurs",
        "NotTDX",
        "MeasurementMismatch",
        "PermanentFailure",
    }
)
"""Reasons that will not fix themselves: `dd-preview wait` stops, the PR shows a failure.
Every ``PermanentFailure.reason`` a provider raises belongs here."""

PROGRESS_REASONS = frozenset({"Creating", "Provisioning", "Starting", "Pending", "Updating"})
"""Ready=False for these is normal progress, not a warning anyone should act on."""


@dataclass(frozen=True)
class Cond:
    type: str
    status: CondStatus
    reason: str
    message: str = ""


def rfc3339(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(text: object) -> datetime | None:
    """The inverse of ``rfc3339`` for values read back from the API; None if absent or bad."""
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def summarise_ready(conds: Mapping[str, Cond]) -> Cond:
    for name in SUB_CONDITIONS:
        c = conds.get(name)
        if c is None or c.status != "True":
            reason = c.reason if c else "Pending"
            message = f"{name}: {c.message}" if c and c.message else f"waiting for {name}"
            return Cond(
                "Ready", "False" if c and c.status == "False" else "Unknown", reason, message
            )
    return Cond("Ready", "True", "Serving", "the control plane is serving the requested build")


def merge_conditions(
    current: Sequence[Mapping[str, Any]],
    desired: Sequence[Cond],
    *,
    generation: int,
    now: datetime,
) -> list[dict[str, Any]]:
    """The new ``status.conditions`` list: unchanged entries keep their transition time."""
    by_type = {c.get("type"): c for c in current}
    out: list[dict[str, Any]] = []
    for d in desired:
        old = by_type.get(d.type)
        flipped = old is None or old.get("status") != d.status
        out.append(
            {
                "type": d.type,
                "status": d.status,
                "reason": d.reason,
                "message": d.message[:512],
                "observedGeneration": generation,
                "lastTransitionTime": rfc3339(now)
                if flipped or old is None
                else old.get("lastTransitionTime", rfc3339(now)),
            }
        )
    return out


def status_changes(current: Mapping[str, Any], desired: Mapping[str, Any]) -> dict[str, Any]:
    """The merge patch that turns ``current`` into ``desired`` (top-level keys); {} if none."""
    patch: dict[str, Any] = {}
    for key, value in desired.items():
        if current.get(key) != value:
            patch[key] = value
    return patch
