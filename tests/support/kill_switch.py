"""A crash switch the fakes share: SIGKILL a process right after the Nth API call they serve.

Why a shared object: a create talks to Compute Engine *and* Cloudflare, and the call that
matters (say, the tunnel create that happens between two GCE reads) is only the Nth call
when both fakes count into one sequence. Each fake takes an optional ``kill_switch`` and
calls ``served()`` once per API request (never for its ``/_fake`` controls or the edge),
after the request's work is done and *before* its response is written: the cloud did
the thing, the caller never hears about it. That is the worst moment for a crash and
the one DESIGN §3.2 (intent before side effect) has to survive.

``pattern`` narrows the count to calls whose label (``"gce instances.insert"``,
``"cloudflare POST /accounts/.../cfd_tunnel"``) matches a regular expression, e.g. only the
mutating ones (``MUTATING``): the n-th side effect is the same call in every run, while the
number of reads in between depends on timing.

Controls: in process (``kill_after``, ``disarm``, ``reset``) or over HTTP on either fake
(``POST /_fake/kill {"after": n, "pid": p, "pattern": optional}``, ``GET`` / ``DELETE
/_fake/kill``).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import threading
from dataclasses import dataclass, field
from typing import Any

__all__ = ["MUTATING", "KillSwitch"]

MUTATING = (
    r"^gce instances\.(insert|start|stop|delete)$|^cloudflare (POST|PUT|PATCH|DELETE) "
    r"|^secretmanager secrets\.(create|addVersion|delete)$"
)
"""Labels of the calls that change something in either cloud."""


@dataclass
class KillSwitch:
    """Thread-safe: the fakes call ``served`` from their own server threads."""

    served_calls: list[str] = field(default_factory=list)
    """Every API call served since the last ``reset``, as ``"<fake> <call>"``."""
    fired_on: str | None = None
    """The call after which the last armed kill fired (None: not fired)."""
    _armed_at: int | None = None
    _pid: int | None = None
    _pattern: re.Pattern[str] | None = None
    _matched: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.served_calls)

    def count_matching(self, pattern: str) -> int:
        compiled = re.compile(pattern)
        with self._lock:
            return sum(bool(compiled.search(c)) for c in self.served_calls)

    def reset(self) -> None:
        """Start counting from zero (and forget the last firing)."""
        with self._lock:
            self.served_calls.clear()
            self.fired_on = None

    def kill_after(self, n: int, pid: int, pattern: str | None = None) -> None:
        """SIGKILL ``pid`` right after the ``n``-th call (matching ``pattern``) from now on.

        One shot: the switch disarms itself when it fires.
        """
        if n < 1:
            raise ValueError("n counts calls from 1")
        compiled = re.compile(pattern) if pattern else None
        with self._lock:
            self._armed_at, self._pid, self.fired_on = n, pid, None
            self._pattern, self._matched = compiled, 0

    def disarm(self) -> None:
        with self._lock:
            self._armed_at = self._pid = None

    def served(self, call: str) -> None:
        """Count one served API call; kill the armed pid if this is the one."""
        with self._lock:
            self.served_calls.append(call)
            if self._armed_at is None:
                return
            if self._pattern is None or self._pattern.search(call):
                self._matched += 1
            if self._matched != self._armed_at:
                return
            pid, self._armed_at, self._pid, self.fired_on = self._pid, None, None, call
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def to_json(self) -> dict[str, Any]:
        with self._lock:
            return {
                "served": len(self.served_calls),
                "armed_at": self._armed_at,
                "pattern": self._pattern.pattern if self._pattern else None,
                "matched": self._matched,
                "pid": self._pid,
                "fired_on": self.fired_on,
            }

    def apply_json(self, body: Any) -> None:
        """``{"after": n, "pid": p, "pattern": optional}`` arms the switch; else ValueError."""
        if not isinstance(body, dict) or not {"after", "pid"} <= set(body) <= {
            "after", "pid", "pattern"
        }:
            raise ValueError('expected {"after": <calls>, "pid": <process id>, "pattern"?}')
        try:
            self.kill_after(int(body["after"]), int(body["pid"]), body.get("pattern"))
        except (TypeError, re.error) as exc:
            raise ValueError(str(exc)) from exc
