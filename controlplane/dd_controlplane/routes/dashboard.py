"""``GET /`` (HTML) and ``GET /api/status`` (JSON): the owner's view of this preview.

Both need an owner (session or bearer). The page renders the status once and then polls
``/api/status`` every ``DD_DASHBOARD_REFRESH_SECONDS`` (5). The attestation summary is
the last evidence this process produced (``/cp/attest``), or one taken for the dashboard
with a fixed nonce, re-tried at most once a minute when attestation is unavailable.
"""

from __future__ import annotations

import time
from typing import Any

from quart import Blueprint, g, render_template_string
from quart.typing import ResponseReturnValue

from ..attestation.evidence import collect_evidence
from ..errors import AttestationError
from ..state import State, current_state
from . import pages
from .attest import remember_summary
from .guard import owner_required

__all__ = ["blueprint"]

blueprint = Blueprint("dashboard", __name__)

_RETRY_SECONDS = 60.0
_DASHBOARD_NONCE = b"dd-preview dashboard summary"


async def _attestation(state: State) -> dict[str, Any]:
    summary = state.attestation_summary
    if summary and (summary["available"] or
                    time.monotonic() - state.attestation_summary_at < _RETRY_SECONDS):
        return summary
    a = state.settings.attestation
    try:
        evidence = await collect_evidence(
            tsm_root=a.tsm_root, dev=a.dev, build=state.settings.build_sha,
            nonce=_DASHBOARD_NONCE,
        )
    except AttestationError as exc:
        state.attestation_summary = {"available": False, "tee": "unavailable", "mrtd": None,
                                     "dev": False, "reason": str(exc)}
        state.attestation_summary_at = time.monotonic()
        return state.attestation_summary
    remember_summary(state, evidence)
    assert state.attestation_summary is not None
    return state.attestation_summary


def _human(seconds: float) -> str:
    s = int(seconds)
    days, hours, minutes = s // 86400, s % 86400 // 3600, s % 3600 // 60
    return (f"{days}d " if days else "") + (f"{hours}h " if hours else "") + f"{minutes}m {s % 60}s"


async def _status() -> dict[str, Any]:
    state = current_state()
    s = state.settings
    now = time.time()
    uptime = state.uptime_seconds()
    return {
        "env": s.env,
        "owner": s.owner,
        "hostname": s.hostname,
        "build": s.build_sha,
        "uptime_seconds": round(uptime, 1),
        "uptime_human": _human(uptime),
        "viewer": g.principal.login,
        "attestation": await _attestation(state),
        "agents": [a.to_json(now) for a in state.registry.agents()],
    }


@blueprint.get("/api/status")
@owner_required
async def status() -> ResponseReturnValue:
    return await _status(), 200, {"Cache-Control": "no-store"}


@blueprint.get("/")
@owner_required
async def dashboard() -> ResponseReturnValue:
    html = await render_template_string(
        pages.DASHBOARD, status=await _status(),
        refresh_ms=int(current_state().settings.dashboard_refresh_seconds * 1000),
    )
    return html, 200, {"Cache-Control": "no-store"}
