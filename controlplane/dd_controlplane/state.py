"""What one running control plane holds: settings, start time, shared clients, the registry.

One ``State`` lives on each app (``app.extensions["dd"]``), built by ``create_app`` and
completed in ``before_serving`` (the httpx client needs a running loop). Routes reach it
with ``current_state()``; everything below ``routes/`` takes what it needs as arguments.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from quart import current_app

from .settings import Settings

__all__ = ["State", "current_state"]


@dataclass
class State:
    settings: Settings
    started_monotonic: float = field(default_factory=time.monotonic)

    def uptime_seconds(self) -> float:
        return time.monotonic() - self.started_monotonic


def current_state() -> State:
    state = current_app.extensions["dd"]
    assert isinstance(state, State)
    return state
