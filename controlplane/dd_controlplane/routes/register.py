"""``/register`` (websocket): Noise XX registration of an agent, then its bootstrap JSON.

The handshake itself is ``registration/noise.py``, the decision ``registration/policy.py``,
the bookkeeping ``registration/registry.py``; this handler moves frames and picks close
codes: 1000 after the bootstrap, 1008 (policy violation) for a refused agent, 1002/1003/
1009 for protocol, text or oversized frames, 1013 when too many handshakes are in flight.
Every refusal is logged with its reason. Each connection is its own task with its own
deadline, so a slow or broken client only ever costs its own slot.
"""

from __future__ import annotations

import json
import logging

from quart import Blueprint, websocket

from ..registration.noise import CLOSE_UNSUPPORTED_DATA, HandshakeFailed, respond
from ..registration.policy import Refuse, admit
from ..state import current_state

__all__ = ["blueprint"]

log = logging.getLogger(__name__)

blueprint = Blueprint("register", __name__)

CLOSE_NORMAL = 1000
CLOSE_POLICY = 1008
CLOSE_TRY_AGAIN = 1013


class _WebsocketFrames:
    async def send(self, data: bytes) -> None:
        await websocket.send(data)

    async def receive(self) -> bytes:
        frame = await websocket.receive()
        if not isinstance(frame, bytes):
            raise HandshakeFailed("text frame where a binary Noise message was expected",
                                  CLOSE_UNSUPPORTED_DATA)
        return frame


def _reason(text: str) -> str:
    """A close reason must fit 123 UTF-8 bytes."""
    return text.encode("ascii", "replace")[:120].decode()


@blueprint.websocket("/register")
async def register() -> None:
    state = current_state()
    settings = state.settings
    slots = state.handshake_slots
    await websocket.accept()
    if slots is None or slots.locked():
        log.warning("registration refused: too many handshakes in flight")
        await websocket.close(CLOSE_TRY_AGAIN, "busy, retry later")
        return
    async with slots:
        try:
            done = await respond(
                _WebsocketFrames(), settings.registration.static_key,
                deadline_seconds=settings.registration.handshake_timeout_seconds,
            )
        except HandshakeFailed as exc:
            log.warning("registration handshake failed: %s", exc.reason)
            await websocket.close(exc.close_code, _reason(exc.reason))
            return
        decision = admit(
            done.payload, done.peer_static, owner=settings.owner,
            allowed_keys=settings.registration.agent_keys, tofu=settings.registration.tofu,
            pins=state.registry.pins,
        )
        if isinstance(decision, Refuse):
            log.warning("registration refused: %s", decision.reason)
            await websocket.close(CLOSE_POLICY, _reason(decision.reason))
            return
        record, new = state.registry.record(decision)
        log.info("agent %s registered (%s, id %s)", record.vm_name,
                 "new" if new else "again", record.agent_id)
        bootstrap = {
            "status": "registered",
            "agent_id": record.agent_id,
            "vm_name": record.vm_name,
            "owner": settings.owner,
            "env": settings.env,
            "control_plane": settings.hostname,
            "build": settings.build_sha,
            "new": new,
            "registrations": record.registrations,
        }
        await websocket.send(done.connection.encrypt(json.dumps(bootstrap).encode()))
        await websocket.close(CLOSE_NORMAL)
