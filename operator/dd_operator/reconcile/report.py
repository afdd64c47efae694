"""Telling the pull request: one comment and a deployment, updated on real changes only.

Reporting never blocks an environment: a failed report is logged and retried when the
state next changes (``status.reported`` remembers what the PR was last told).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..conditions import PERMANENT_REASONS, parse_rfc3339
from ..errors import DDError
from ..model import Spec, parse_spec
from ..providers.base import PreviewReport, PullRequestReporter
from .context import Identity

if TYPE_CHECKING:
    from .loop import Deps

__all__ = [
    "preview_report",
    "ready_condition",
    "report_deleted",
    "report_state",
    "tell_pull_request",
]

log = logging.getLogger(__name__)


def ready_condition(status: Mapping[str, Any]) -> Mapping[str, Any]:
    return next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})


def preview_report(spec: Spec, ident: Identity, status: Mapping[str, Any]) -> PreviewReport:
    ready = ready_condition(status)
    return PreviewReport(
        repository=spec.repository,
        pull_request=spec.pull_request,
        commit_sha=spec.commit_sha,
        namespace=ident.namespace,
        name=ident.name,
        url=str(status.get("url") or ""),
        ready=ready.get("status") == "True",
        reason=str(ready.get("reason", "")),
        message=str(ready.get("message", "")),
        expires_at=parse_rfc3339(status.get("expiresAt")),
        failed=ready.get("reason") in PERMANENT_REASONS,
        uid=ident.uid,
    )


async def tell_pull_request(
    reporter: PullRequestReporter, ident: Identity, report: PreviewReport
) -> bool:
    """A reporting failure never blocks the environment; it is retried on the next change."""
    try:
        await reporter.report(report)
    except DDError as exc:
        log.warning(
            "%s/%s: could not update the pull request: %s", ident.namespace, ident.name, exc
        )
        return False
    return True


async def report_state(
    deps: Deps, ident: Identity, spec: Spec, status: dict[str, Any]
) -> dict[str, Any]:
    """Tell the pull request once per (Ready, reason, commit); a failed report is retried."""
    if deps.reporter is None:
        return status
    ready = ready_condition(status)
    key = f"{ready.get('status')}/{ready.get('reason')}/{status.get('shortSha')}"
    if status.get("reported") == key:
        return status
    if not await tell_pull_request(deps.reporter, ident, preview_report(spec, ident, status)):
        return status
    await deps.kube.patch_status(ident.namespace, ident.name, {"reported": key})
    return {**status, "reported": key}


async def report_deleted(deps: Deps, meta: Mapping[str, Any], raw_spec: Mapping[str, Any]) -> None:
    """Best effort, after teardown: the comment says "removed", the deployment goes inactive."""
    if deps.reporter is None:
        return
    ident = Identity.from_meta(meta)
    try:
        spec = parse_spec(raw_spec, domain=deps.settings.domain)
    except DDError:
        return
    report = replace(
        preview_report(spec, ident, {}), reason="Deleted", deleted=True, expires_at=None
    )
    await tell_pull_request(deps.reporter, ident, report)
