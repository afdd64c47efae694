"""Liveness tied to what the operator actually does, not to "the process is up".

Two signals (anchors.md section 4, idea 15; kopf #955 is the silent watch stall):

- **Watch activity.** ``WatchActivity`` records every PreviewEnvironment event the watch
  delivers (resourceVersion, Ready, deletionTimestamp). Age alone cannot tell a quiet
  cluster from a stalled watch, so the reaper, which lists every object anyway, compares
  its listing with the watch: an object whose listed resourceVersion the watch has not
  delivered, with no event for it since, for ``stall_seconds``, means the watch stalled.
  Only objects the watch has seen at least once are compared (others belong to namespaces
  this replica does not watch).
- **Reaper progress.** While this replica holds the reaper Lease, a sweep must complete
  at least every 3 intervals. A sweep that deleted nothing because a listing failed still
  completed: a cloud outage is reported by metrics and events, not fixed by a restart.

``Health.problems`` feeds both kopf's liveness endpoint (a ``@kopf.on.probe`` handler that
raises) and our own ``/healthz`` next to ``/metrics`` (``serve``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiohttp import web

from . import metrics
from .conditions import parse_rfc3339
from .metrics import EnvironmentState

__all__ = ["Health", "ReaperProgress", "WatchActivity", "serve"]


def _ready(body: Mapping[str, Any]) -> tuple[str, str]:
    for c in (body.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return str(c.get("status", "Unknown")), str(c.get("reason", ""))
    return "Unknown", "Pending"


@dataclass
class _Seen:
    resource_version: str
    at: datetime
    state: EnvironmentState


@dataclass
class WatchActivity:
    """What the watch delivered, per object uid."""

    last_event_at: datetime | None = None
    seen: dict[str, _Seen] = field(default_factory=dict)
    behind_since: dict[str, datetime] = field(default_factory=dict)

    def record(self, event_type: str | None, body: Mapping[str, Any], now: datetime) -> None:
        self.last_event_at = now
        meta = body.get("metadata") or {}
        uid = str(meta.get("uid", ""))
        if not uid:
            return
        if event_type == "DELETED":
            self.seen.pop(uid, None)
            self.behind_since.pop(uid, None)
            return
        ready, reason = _ready(body)
        state = EnvironmentState(
            namespace=str(meta.get("namespace", "")),
            name=str(meta.get("name", "")),
            ready=ready,
            reason=reason,
            deleting_since=parse_rfc3339(meta.get("deletionTimestamp")),
        )
        self.seen[uid] = _Seen(str(meta.get("resourceVersion", "")), now, state)

    def states(self) -> list[EnvironmentState]:
        return [s.state for s in self.seen.values()]

    def compare(self, listed: Iterable[Mapping[str, Any]], now: datetime) -> None:
        """Note objects whose listed resourceVersion the watch has not delivered yet."""
        behind: dict[str, datetime] = {}
        for body in listed:
            meta = body.get("metadata") or {}
            uid = str(meta.get("uid", ""))
            seen = self.seen.get(uid)
            if seen is None or seen.resource_version == str(meta.get("resourceVersion", "")):
                continue
            since = self.behind_since.get(uid, now)
            if seen.at <= since:  # nothing delivered for it since we first noticed
                behind[uid] = since
        self.behind_since = behind

    def stalled_for(self, now: datetime) -> float:
        """Seconds the oldest undelivered change has waited (0 when the watch is current)."""
        if not self.behind_since:
            return 0.0
        return (now - min(self.behind_since.values())).total_seconds()


@dataclass
class ReaperProgress:
    interval_seconds: float
    holding_since: datetime | None = None
    last_sweep_at: datetime | None = None

    def holding(self, held: bool, now: datetime) -> None:
        if held and self.holding_since is None:
            self.holding_since = now
        elif not held:
            self.holding_since = None
        metrics.REAPER_LEADER.set(1 if held else 0)

    def swept(self, now: datetime) -> None:
        self.last_sweep_at = now

    def overdue_for(self, now: datetime) -> float:
        """Seconds past 3 intervals without a completed sweep while leading (0 if fine)."""
        if self.holding_since is None:
            return 0.0
        since = max(self.holding_since, self.last_sweep_at or self.holding_since)
        return max(0.0, (now - since).total_seconds() - 3 * self.interval_seconds)


@dataclass
class Health:
    watch: WatchActivity
    reaper: ReaperProgress
    stall_seconds: float

    @classmethod
    def create(cls, interval_seconds: float) -> Health:
        return cls(
            WatchActivity(), ReaperProgress(interval_seconds), max(3 * interval_seconds, 90.0)
        )

    def ages(self, now: datetime) -> dict[str, float | None]:
        def age(t: datetime | None) -> float | None:
            return None if t is None else (now - t).total_seconds()

        return {
            "last_watch_event_age_seconds": age(self.watch.last_event_at),
            "reaper_last_sweep_age_seconds": age(self.reaper.last_sweep_at),
        }

    def problems(self, now: datetime) -> list[str]:
        found = []
        stalled = self.watch.stalled_for(now)
        if stalled > self.stall_seconds:
            found.append(
                f"the watch has not delivered a listed change for {stalled:.0f}s "
                "(watch stalled)"
            )
        overdue = self.reaper.overdue_for(now)
        if overdue > 0:
            found.append(
                f"holding the reaper Lease but no sweep completed in 3 intervals "
                f"(+{overdue:.0f}s)"
            )
        return found


async def serve(health: Health, host: str, port: int, clock: Any) -> web.AppRunner:
    """``/metrics`` (Prometheus text format) and ``/healthz`` (200 or 500 with the problems)."""

    async def metrics_route(request: web.Request) -> web.Response:
        return web.Response(body=metrics.render(), content_type="text/plain", charset="utf-8")

    async def healthz(request: web.Request) -> web.Response:
        now = clock()
        problems = health.problems(now)
        body = {"ok": not problems, "problems": problems, **health.ages(now)}
        return web.json_response(body, status=500 if problems else 200)

    app = web.Application()
    app.router.add_get("/metrics", metrics_route)
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
