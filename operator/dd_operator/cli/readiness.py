"""Pure: is a PreviewEnvironment object serving the commit CI asked for, and if not, why?

``dd-preview wait`` polls the object and asks ``assess`` each time. Ready counts only
when the operator has seen the current spec: ``status.observedGeneration`` and the
``Ready`` condition's ``observedGeneration`` both equal ``metadata.generation``. Without
that, a push would "be ready" at once on the previous commit's ``Ready=True``.

A blocking condition whose reason is in ``PERMANENT_REASONS`` ends the wait early with a
failure: these are the reasons the operator sets from ``PermanentFailure`` (bad config,
a hostname owned by someone else), which no amount of waiting fixes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ..conditions import PERMANENT_REASONS, SUB_CONDITIONS

__all__ = ["PERMANENT_REASONS", "Readiness", "assess", "blocking_condition", "ready_condition"]


State = Literal["ready", "pending", "failed", "deleting", "superseded"]


@dataclass(frozen=True)
class Readiness:
    state: State
    url: str = ""
    condition: str = ""
    """The blocking condition's type (``Ready`` itself when no sub-condition is named)."""
    reason: str = ""
    message: str = ""


def _conditions(obj: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    items = (obj.get("status") or {}).get("conditions") or []
    return {str(c.get("type")): c for c in items if isinstance(c, Mapping)}


def ready_condition(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    return _conditions(obj).get("Ready")


def blocking_condition(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The first sub-condition that is not True, in pipeline order (VM before tunnel ...)."""
    conditions = _conditions(obj)
    ready = conditions.get("Ready")
    if ready is not None and ready.get("reason") in conditions:
        named = conditions[str(ready.get("reason"))]
        if named.get("status") != "True":
            return named
    for kind in SUB_CONDITIONS:
        c = conditions.get(kind)
        if c is not None and c.get("status") != "True":
            return c
    return ready


def assess(obj: Mapping[str, Any], *, commit_sha: str = "") -> Readiness:
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    url = str(status.get("url") or "")
    if meta.get("deletionTimestamp"):
        return Readiness("deleting", url, "Ready", "Deleting", "the environment is being torn down")
    if commit_sha and spec.get("commitSha") != commit_sha:
        return Readiness(
            "superseded", url, "Ready", "Superseded",
            f"the environment now tracks commit {str(spec.get('commitSha'))[:12]}, "
            f"not {commit_sha[:12]} (a newer push?)",
        )
    generation = meta.get("generation")
    ready = ready_condition(obj)
    if ready is None or status.get("observedGeneration") != generation:
        return Readiness(
            "pending", url, "Ready", "NotObserved",
            f"the operator has not yet processed generation {generation} of the spec",
        )
    current = ready.get("observedGeneration") in (None, generation)
    if ready.get("status") == "True" and current:
        reason, message = str(ready.get("reason") or ""), str(ready.get("message") or "")
        return Readiness("ready", url, "Ready", reason, message)
    blocking = blocking_condition(obj) or ready
    reason = str(blocking.get("reason") or ready.get("reason") or "")
    readiness = Readiness(
        "pending", url, str(blocking.get("type") or "Ready"), reason,
        str(blocking.get("message") or ready.get("message") or ""),
    )
    if reason in PERMANENT_REASONS or str(ready.get("reason") or "") in PERMANENT_REASONS:
        return Readiness("failed", url, readiness.condition, readiness.reason, readiness.message)
    return readiness
