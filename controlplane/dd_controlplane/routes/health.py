"""``GET /health``: who is serving, which build, for how long. No auth, no secrets.

The operator polls this to decide ``ControlPlaneHealthy`` and compares ``build`` with the
commit it deployed, so an old VM still answering cannot pass for the new one.
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint

from ..state import current_state

__all__ = ["blueprint"]

blueprint = Blueprint("health", __name__)


@blueprint.get("/health")
async def health() -> dict[str, Any]:
    state = current_state()
    return {
        "service": "dd-controlplane",
        "env": state.settings.env,
        "build": state.settings.build_sha,
        "uptime_seconds": round(state.uptime_seconds(), 3),
        "hostname": state.settings.hostname,
    }
