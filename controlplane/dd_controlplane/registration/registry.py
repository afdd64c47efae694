"""Registered agents, by VM name. Re-registration is idempotent.

The agent id is derived from (vm_name, public key), so the same agent registering again
- after a reconnect or a control-plane restart - gets the same id and updates its record
instead of adding one. Memory only: agents re-register on their own after a restart,
and the TOFU pins are rebuilt from those registrations.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from .policy import Admit

__all__ = ["AgentRecord", "Registry"]


@dataclass(frozen=True)
class AgentRecord:
    agent_id: str
    vm_name: str
    public_key: bytes
    mrtd: str | None
    first_registered: float
    last_registered: float
    registrations: int

    def to_json(self, now: float) -> dict[str, Any]:
        return {
            "agent_id": self.agent_id,
            "vm_name": self.vm_name,
            "public_key": base64.b64encode(self.public_key).decode(),
            "mrtd": self.mrtd,
            "status": "registered",
            "registrations": self.registrations,
            "first_registered": self.first_registered,
            "last_registered": self.last_registered,
            "seconds_since_registration": round(max(0.0, now - self.last_registered), 1),
        }


def agent_id_for(vm_name: str, public_key: bytes) -> str:
    return hashlib.sha256(vm_name.encode() + b"\0" + public_key).hexdigest()[:16]


class Registry:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._agents: dict[str, AgentRecord] = {}

    @property
    def pins(self) -> Mapping[str, bytes]:
        return {name: rec.public_key for name, rec in self._agents.items()}

    def record(self, admitted: Admit) -> tuple[AgentRecord, bool]:
        """Store the admission; returns the record and whether it was new."""
        now = self._clock()
        mrtd = admitted.quote.mrtd.hex() if admitted.quote else None
        previous = self._agents.get(admitted.vm_name)
        agent_id = agent_id_for(admitted.vm_name, admitted.public_key)
        if previous is not None and previous.agent_id == agent_id:
            record = replace(
                previous, last_registered=now, registrations=previous.registrations + 1,
                mrtd=mrtd or previous.mrtd,
            )
        else:
            record = AgentRecord(
                agent_id=agent_id, vm_name=admitted.vm_name, public_key=admitted.public_key,
                mrtd=mrtd, first_registered=now, last_registered=now, registrations=1,
            )
        self._agents[admitted.vm_name] = record
        return record, previous is None or previous.agent_id != agent_id

    def agents(self) -> list[AgentRecord]:
        return sorted(self._agents.values(), key=lambda r: r.vm_name)
