"""Pure text for the ``dd-preview`` CLI: tables, ``describe``, ``-o json`` and wait results.

Everything returns strings; ``main`` decides where they go. ``now`` is a parameter so
ages render the same in tests as in a CI log.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from ..conditions import parse_rfc3339
from .readiness import Readiness, ready_condition

__all__ = [
    "actions_annotation",
    "age",
    "describe",
    "table",
    "to_json",
    "wait_line",
]

_COLUMNS = ("NAME", "PR", "SHA", "READY", "REASON", "URL", "EXPIRES", "AGE")


def age(since: object, now: datetime) -> str:
    """kubectl's style: 45s, 12m, 5h, 3d."""
    start = parse_rfc3339(since)
    if start is None:
        return "<unknown>"
    seconds = max(0, int((now - start).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size * (2 if unit != "m" else 1):
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _row(obj: Mapping[str, Any], now: datetime) -> tuple[str, ...]:
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    ready = ready_condition(obj) or {}
    expires = parse_rfc3339(status.get("expiresAt"))
    return (
        str(meta.get("name", "")),
        str(spec.get("pullRequest", "")),
        str(spec.get("commitSha", ""))[:7],
        str(ready.get("status", "Unknown")),
        str(ready.get("reason", "") or "-"),
        str(status.get("url", "") or "-"),
        expires.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if expires else "-",
        age(meta.get("creationTimestamp"), now),
    )


def _columns(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "   ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )


def table(objects: Iterable[Mapping[str, Any]], now: datetime) -> str:
    rows = [_row(o, now) for o in objects]
    if not rows:
        return "No PreviewEnvironments found."
    return _columns([_COLUMNS, *rows])


def to_json(value: object) -> str:
    return json.dumps(value, indent=2, sort_keys=True)


def describe(obj: Mapping[str, Any], events: Sequence[Mapping[str, Any]], now: datetime) -> str:
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    lines = [
        f"Name:          {meta.get('name', '')}",
        f"Namespace:     {meta.get('namespace', '')}",
        f"Repository:    {spec.get('repository', '')}",
        f"Pull request:  {spec.get('pullRequest', '')}",
        f"Commit:        {spec.get('commitSha', '')}",
        f"Owner:         {spec.get('owner', '')}",
        f"Provider:      {spec.get('provider', 'local')}",
        f"TTL:           {spec.get('ttl', '-') or '-'}",
        f"Suspended:     {'yes' if spec.get('suspend') else 'no'}",
        f"URL:           {status.get('url', '') or '-'}",
        f"Expires:       {status.get('expiresAt', '') or '-'}",
        f"Generation:    {meta.get('generation', '?')} "
        f"(observed {status.get('observedGeneration', '-')})",
        f"Age:           {age(meta.get('creationTimestamp'), now)}",
    ]
    if meta.get("deletionTimestamp"):
        lines.append(
            f"Deleting since: {meta['deletionTimestamp']} (finalizers: "
            f"{', '.join(meta.get('finalizers') or []) or 'none'})"
        )
    vm = status.get("vm") or {}
    if vm:
        lines.append(
            f"VM:            {vm.get('name', '-')} in {vm.get('zone', '-')} "
            f"({vm.get('status', '-')}), build {str(vm.get('build', '-'))[:12]}"
        )
        if vm.get("mrtd"):
            lines.append(f"MRTD:          {vm['mrtd']}")
    lines.append("Conditions:")
    conditions = status.get("conditions") or []
    if conditions:
        rows = [("TYPE", "STATUS", "REASON", "AGE", "MESSAGE")] + [
            (
                str(c.get("type", "")),
                str(c.get("status", "")),
                str(c.get("reason", "") or "-"),
                age(c.get("lastTransitionTime"), now),
                str(c.get("message", "") or ""),
            )
            for c in conditions
        ]
        lines.extend("  " + line for line in _columns(rows).splitlines())
    else:
        lines.append("  none yet (has the operator seen this object?)")
    lines.append("Events:")
    if events:
        event_rows = [("TYPE", "REASON", "AGE", "MESSAGE")] + [
            (
                str(e.get("type", "")),
                str(e.get("reason", "")),
                age(e.get("lastTimestamp") or e.get("eventTime"), now),
                str(e.get("message", "")),
            )
            for e in events
        ]
        lines.extend("  " + line for line in _columns(event_rows).splitlines())
    else:
        lines.append("  none")
    return "\n".join(lines)


def wait_line(namespace: str, name: str, readiness: Readiness) -> str:
    """One line a CI log reader understands, for each outcome of ``wait``."""
    where = f"previewenvironment {namespace}/{name}"
    detail = f"{readiness.condition}: {readiness.reason}" + (
        f": {readiness.message}" if readiness.message else ""
    )
    if readiness.state == "ready":
        return f"{where} is ready at {readiness.url or '(no URL reported)'}"
    if readiness.state == "failed":
        return f"{where} failed and will not recover without a change: {detail}"
    if readiness.state == "deleting":
        return f"{where} is being deleted; it will not become ready"
    if readiness.state == "superseded":
        return f"{where} was superseded: {readiness.message}"
    return f"{where} is not ready; blocked on {detail}"


def actions_annotation(level: str, title: str, message: str) -> str:
    """A GitHub Actions workflow command, so the failure shows on the run's summary page.

    Newlines and ``%`` are escaped as the runner requires.
    """

    def escape(text: str) -> str:
        return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")

    safe_title = escape(title).replace(":", "%3A").replace(",", "%2C")
    return f"::{level} title={safe_title}::{escape(message)}"
