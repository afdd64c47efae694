"""kopf handlers, and nothing else: parse, call ``reconcile``, translate errors.

How the pieces fit:

- one **daemon** per PreviewEnvironment runs the reconcile loop (``reconcile.loop``):
  a single task per object, so two passes never race each other;
- **create/update/resume** handlers only wake that loop, so a new commit is acted on
  at once instead of at the next poll;
- the **delete** handler runs the ordered teardown and releases the finalizer only
  when every external object is confirmed gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import kopf

from . import metrics, probes
from .errors import DDError, PermanentFailure, TransientFailure
from .httpclient import new_client
from .kube import Kube
from .model import PLURAL, VERSION
from .naming import API_GROUP, FINALIZER, InstanceName
from .probes import Health
from .providers import build_edge_provider, build_vm_providers
from .providers.github import reporter_from_settings
from .reaper.runner import Reaper
from .reconcile.loop import Deps, reconcile_once, record_failure, report_deleted, teardown_once
from .retry import RequestBudget, backoff
from .settings import OperatorSettings

__all__: list[str] = []

RESOURCE = (API_GROUP, VERSION, PLURAL)
PERMANENT_RETRY = 300.0


def build_deps(settings: OperatorSettings) -> Deps:
    budget = RequestBudget(
        settings.cloudflare.budget_requests, settings.cloudflare.budget_window_seconds
    )
    return Deps(
        settings=settings,
        kube=Kube(),
        vm_providers=build_vm_providers(settings),
        edge=build_edge_provider(settings, budget),
        http=new_client(timeout=5.0),
        reporter=reporter_from_settings(settings.github, cluster_id=settings.cluster_id),
    )


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=API_GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=API_GROUP, key="last-handled-configuration"
    )
    settings.posting.level = logging.WARNING
    memo.deps = build_deps(OperatorSettings.from_env())


@kopf.on.cleanup()
async def close(memo: kopf.Memo, **_: Any) -> None:
    await stop_reaper(memo)
    deps: Deps = memo.deps
    await deps.http.aclose()
    for provider in deps.vm_providers.values():
        await provider.close()
    if deps.edge is not None:
        await deps.edge.close()
    if deps.reporter is not None:
        await deps.reporter.close()
    deps.kube.close()


def _wake_event(memo: kopf.Memo) -> asyncio.Event:
    if "wake" not in memo:
        memo["wake"] = asyncio.Event()
    event: asyncio.Event = memo["wake"]
    return event


@kopf.on.create(*RESOURCE)
@kopf.on.update(*RESOURCE, field="spec")
@kopf.on.resume(*RESOURCE)
async def wake_reconcile(memo: kopf.Memo, **_: Any) -> None:
    _wake_event(memo).set()


def _delay_for(exc: Exception, attempt: int) -> float:
    if isinstance(exc, TransientFailure):
        return backoff(attempt, retry_after=exc.retry_after)
    if isinstance(exc, PermanentFailure):
        return PERMANENT_RETRY
    return backoff(attempt)


@kopf.daemon(*RESOURCE, cancellation_timeout=5.0)
async def run_environment(
    stopped: kopf.DaemonStopped,
    body: kopf.Body,
    meta: kopf.Meta,
    spec: kopf.Spec,
    memo: kopf.Memo,
    logger: logging.Logger | logging.LoggerAdapter[Any],
    **_: Any,
) -> None:
    deps: Deps = memo.deps
    wake = _wake_event(memo)
    status = dict(body.get("status") or {})
    attempt = 0

    def emit(type_: str, reason: str, message: str) -> None:
        kopf.event(body, type=type_, reason=reason, message=message)

    while not stopped and not meta.get("deletionTimestamp"):
        wake.clear()
        try:
            result = await reconcile_once(deps, dict(meta), dict(spec), status, emit)
            status, delay, attempt = result.status, result.delay, 0
        except DDError as exc:
            delay, attempt = _delay_for(exc, attempt), attempt + 1
            logger.warning("%s; next attempt in %.0fs", exc, delay)
            status = await record_failure(deps, dict(meta), status, exc, emit)
        except Exception:
            delay, attempt = _delay_for(Exception(), attempt), attempt + 1
            logger.exception("reconcile failed; next attempt in %.0fs", delay)
        if delay > 0:
            await _sleep_until_woken(wake, stopped, delay)


async def _sleep_until_woken(
    wake: asyncio.Event, stopped: kopf.DaemonStopped, delay: float
) -> None:
    """Sleep ``delay`` seconds, ending early on a spec change or when kopf stops the daemon."""
    waiters = [asyncio.ensure_future(wake.wait()), asyncio.ensure_future(stopped.wait(delay))]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()


@kopf.on.delete(*RESOURCE)
async def teardown(
    meta: kopf.Meta,
    spec: kopf.Spec,
    status: kopf.Status,
    memo: kopf.Memo,
    retry: int,
    logger: logging.Logger | logging.LoggerAdapter[Any],
    **_: Any,
) -> None:
    """Ordered teardown; raising TemporaryError keeps the finalizer until it is done."""
    deps: Deps = memo.deps
    current = dict(status)
    try:
        listed: frozenset[InstanceName] | None = None  # the first pass lists our stamp
        for _step in range(100):
            result = await teardown_once(deps, dict(meta), dict(spec), current, listed=listed)
            listed = (listed or frozenset()) | result.seen
            if result.done:
                logger.info("teardown complete: every external object is gone")
                await report_deleted(deps, dict(meta), dict(spec))
                return
            current = result.status
            if result.delay:
                raise kopf.TemporaryError(f"teardown: {result.step}", delay=result.delay)
    except DDError as exc:
        delay = _delay_for(exc, retry)
        raise kopf.TemporaryError(f"teardown blocked: {exc}", delay=delay) from exc
    raise kopf.TemporaryError("teardown still in progress", delay=1)


# -- the reaper, liveness and metrics ---------------------------------------------------
# One reaper across replicas (a Lease, see reaper/runner.py), started here so it runs
# whether or not kopf peering is on; kopf's liveness endpoint and our /healthz both
# report ``probes.Health``.


@kopf.on.startup()
async def start_reaper(
    memo: kopf.Memo, logger: logging.Logger | logging.LoggerAdapter[Any], **_: Any
) -> None:
    deps: Deps = memo.deps  # set by ``configure``: kopf runs startup handlers in order
    settings, clock = deps.settings, deps.clock
    health = Health.create(settings.reaper.interval_seconds)
    metrics.REGISTRY.register(
        metrics.StateCollector(health.watch.states, lambda: health.ages(clock()), clock)
    )
    memo.health = health
    host, port = settings.health.metrics_host, settings.health.metrics_port
    try:
        if port:
            memo.health_server = await probes.serve(health, host, port, clock)
    except OSError as exc:  # a taken port must not keep the operator from reconciling
        logger.error("cannot serve /metrics and /healthz on %s:%s: %s", host, port, exc)
    reaper = Reaper(
        settings=settings,
        kube=deps.kube,
        vm_providers=deps.vm_providers,
        edge=deps.edge,
        health=health,
        clock=clock,
        reporter=deps.reporter,
    )
    memo.reaper_stop = asyncio.Event()
    memo.reaper_task = asyncio.create_task(reaper.run(memo.reaper_stop), name="dd-reaper")


async def stop_reaper(memo: kopf.Memo) -> None:
    """Called first by ``close``: no sweep may run on closed providers."""
    if "reaper_task" in memo:
        memo.reaper_stop.set()
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(memo.reaper_task, 10)
    if "health_server" in memo:
        await memo.health_server.cleanup()


@kopf.on.event(*RESOURCE)
async def watch_activity(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    if "health" in memo:
        health: Health = memo.health
        health.watch.record(type, body, memo.deps.clock())


@kopf.on.probe(id="dd-preview")
async def liveness(memo: kopf.Memo, **_: Any) -> dict[str, float | None]:
    """kopf's liveness endpoint answers 500 when this raises."""
    health: Health = memo.health
    now = memo.deps.clock()
    problems = health.problems(now)
    if problems:
        raise kopf.PermanentError("; ".join(problems))
    return health.ages(now)
