"""Prometheus metrics: every series the operator exports, declared in one place.

Names (all prefixed ``dd_preview_``):

- ``environments{ready, reason}``: PreviewEnvironments this replica's watch sees, by the
  Ready condition's status and reason (a gauge computed at scrape time);
- ``teardown_age_seconds{namespace, name}``: seconds since deletionTimestamp for objects
  still present: the "stuck in deletion" gauge (alert when it passes a few minutes);
- ``cloud_api_calls_total{provider}`` and ``cloud_api_errors_total{provider, code}``:
  counted at each provider's edge (``record_cloud_call`` / ``record_cloud_error``);
- ``reaper_sweeps_total{outcome}`` (complete, incomplete, failed), ``reaper_candidates{kind}``,
  ``reaper_deletions_total{kind, reason}``, ``reaper_would_delete{kind}`` (dry-run),
  ``reaper_skips_total{reason}``, ``reaper_incomplete_listings_total{source}``,
  ``reaper_delete_failures_total{kind}``, ``reaper_expirations_total``,
  ``reaper_expiry_warnings_total``, ``reaper_leader`` (1 while holding the Lease);
- ``last_watch_event_age_seconds`` and ``reaper_last_sweep_age_seconds``.

Everything lives in ``REGISTRY`` (not prometheus_client's global one), served by
``probes.serve`` on ``/metrics``. Label values are bounded: kinds, reasons, providers,
HTTP codes; never object names except in the teardown gauge, which only lists objects
stuck in deletion.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = [
    "CLOUD_CALLS",
    "CLOUD_ERRORS",
    "REAPER_CANDIDATES",
    "REAPER_DELETE_FAILURES",
    "REAPER_DELETIONS",
    "REAPER_EXPIRATIONS",
    "REAPER_EXPIRY_WARNINGS",
    "REAPER_INCOMPLETE",
    "REAPER_LEADER",
    "REAPER_SKIPS",
    "REAPER_SWEEPS",
    "REAPER_WOULD_DELETE",
    "REGISTRY",
    "EnvironmentState",
    "StateCollector",
    "error_code",
    "record_cloud_call",
    "record_cloud_error",
    "render",
]

REGISTRY = CollectorRegistry(auto_describe=True)
_P = "dd_preview_"

CLOUD_CALLS = Counter(
    f"{_P}cloud_api_calls", "Cloud API calls made", ["provider"], registry=REGISTRY
)
CLOUD_ERRORS = Counter(
    f"{_P}cloud_api_errors", "Cloud API calls that failed, by HTTP status or error kind",
    ["provider", "code"], registry=REGISTRY,
)
REAPER_SWEEPS = Counter(
    f"{_P}reaper_sweeps", "Reaper sweeps by outcome", ["outcome"], registry=REGISTRY
)
REAPER_CANDIDATES = Gauge(
    f"{_P}reaper_candidates", "Orphan candidates in the last sweep", ["kind"], registry=REGISTRY
)
REAPER_DELETIONS = Counter(
    f"{_P}reaper_deletions", "Cloud objects the reaper deleted", ["kind", "reason"],
    registry=REGISTRY,
)
REAPER_WOULD_DELETE = Gauge(
    f"{_P}reaper_would_delete", "Dry-run: what the last sweep would have deleted", ["kind"],
    registry=REGISTRY,
)
REAPER_SKIPS = Counter(
    f"{_P}reaper_skips", "Candidates the reaper left alone this sweep, by reason", ["reason"],
    registry=REGISTRY,
)
REAPER_INCOMPLETE = Counter(
    f"{_P}reaper_incomplete_listings",
    "Listings that did not complete (the sweep then deletes nothing)", ["source"],
    registry=REGISTRY,
)
REAPER_DELETE_FAILURES = Counter(
    f"{_P}reaper_delete_failures", "Reaper deletions that failed (retried next sweep)",
    ["kind"], registry=REGISTRY,
)
REAPER_EXPIRATIONS = Counter(
    f"{_P}reaper_expirations", "PreviewEnvironments deleted because their ttl passed",
    registry=REGISTRY,
)
REAPER_EXPIRY_WARNINGS = Counter(
    f"{_P}reaper_expiry_warnings", "ExpiringSoon warnings emitted", registry=REGISTRY
)
REAPER_LEADER = Gauge(
    f"{_P}reaper_leader", "1 while this replica holds the reaper Lease", registry=REGISTRY
)


def error_code(exc: BaseException) -> str:
    """An HTTP status when the SDK exception carries one, else the exception's class name."""
    for attr in ("code", "status_code", "status"):
        value = getattr(exc, attr, None)
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
    return type(exc).__name__


def record_cloud_call(provider: str) -> None:
    CLOUD_CALLS.labels(provider).inc()


def record_cloud_error(provider: str, exc: BaseException) -> None:
    CLOUD_ERRORS.labels(provider, error_code(exc)).inc()


@dataclass(frozen=True)
class EnvironmentState:
    namespace: str
    name: str
    ready: str
    reason: str
    deleting_since: datetime | None


class StateCollector(Collector):
    """Gauges computed at scrape time from what the watch has seen (``probes.WatchActivity``)."""

    def __init__(
        self,
        states: Callable[[], Iterable[EnvironmentState]],
        ages: Callable[[], dict[str, float | None]],
        clock: Callable[[], datetime],
    ) -> None:
        self._states, self._ages, self._clock = states, ages, clock

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = self._clock()
        by_condition = GaugeMetricFamily(
            f"{_P}environments", "PreviewEnvironments by Ready status and reason",
            labels=["ready", "reason"],
        )
        stuck = GaugeMetricFamily(
            f"{_P}teardown_age_seconds",
            "Seconds since deletionTimestamp, for objects still present (stuck in deletion)",
            labels=["namespace", "name"],
        )
        counts: dict[tuple[str, str], int] = {}
        for s in self._states():
            counts[(s.ready, s.reason)] = counts.get((s.ready, s.reason), 0) + 1
            if s.deleting_since is not None:
                stuck.add_metric(
                    [s.namespace, s.name], max(0.0, (now - s.deleting_since).total_seconds())
                )
        for (ready, reason), n in sorted(counts.items()):
            by_condition.add_metric([ready, reason], n)
        yield by_condition
        yield stuck
        for name, age in self._ages().items():
            g = GaugeMetricFamily(f"{_P}{name}", f"{name.replace('_', ' ')} (-1: never)")
            g.add_metric([], -1.0 if age is None else age)
            yield g


def render() -> bytes:
    return generate_latest(REGISTRY)
