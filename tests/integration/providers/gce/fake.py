"""A stateful fake of the Compute Engine REST API, for the real google-cloud-compute SDK.

Serves the paths and JSON shapes the SDK uses (research/testing.md section 3) on
127.0.0.1, from its own thread, so sync and async tests (and an operator subprocess)
can all talk to it:

    POST   /compute/v1/projects/{p}/zones/{z}/instances?requestId=   instances.insert
    GET    /compute/v1/projects/{p}/zones/{z}/instances              instances.list
    GET    /compute/v1/projects/{p}/aggregated/instances             instances.aggregatedList
    GET    /compute/v1/projects/{p}/zones/{z}/instances/{name}       instances.get
    POST   .../instances/{name}/stop | /start                        instances.stop | start
    DELETE .../instances/{name}                                      instances.delete
    GET    /compute/v1/projects/{p}/zones/{z}/operations/{op}        zoneOperations.get
    POST   .../operations/{op}/wait                                  zoneOperations.wait

Lists take ``filter`` (``labels.k = "v"``, AND), ``maxResults`` and ``pageToken``.
``requestId`` de-duplicates inserts. Validation lives in ``fake_state``; booting VMs
(running their control plane from the user-data) in ``fake_boot``. Each FakeCompute has
a fake Secret Manager (``fake_secrets``; its own unless one is passed in, sharing the
kill switch): the operator stores the VMs' tokens there and booting VMs read them back,
and ``env()`` points the operator at both.

Test controls, in process (``add_fault``, ``calls``...) or over HTTP:

    POST   /_fake/faults   {"kind": ..., ...Fault fields}     add a fault switch
    GET    /_fake/faults / DELETE /_fake/faults               list / clear them
    GET    /_fake/calls  / DELETE /_fake/calls                calls per API method / reset
    POST   /_fake/kill_pid_after {"method", "n", "pid"}         crash injection (below)

Fault kinds: ``http`` (answer ``status`` with ``reason`` and optional Retry-After: 429,
403 rateLimitExceeded, 403 forbidden, 500, 503), ``delay`` (answer ``seconds`` late, after
doing the work, as a timed-out real call would), ``zone_exhausted`` and ``quota_exceeded``
(the insert's operation ends with that error), ``list_lag`` (lists omit instances younger
than ``seconds``), ``purge_operations`` (a finished operation answers 404).

Crash injection: ``kill_pid_after(method, n, pid)`` SIGKILLs ``pid`` right after the fake
has *done* the n-th call of ``method`` (counted from now) and before it answers, so the
caller dies with the side effect made and its answer never read: the window between a
cloud call and the status write that records it. ``kill_switch`` (``tests/support/
kill_switch.py``, shared with the Cloudflare fake) does the same counting *every* API call
of both fakes in one sequence; over HTTP: ``GET/POST/DELETE /_fake/kill``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import secrets
import signal
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.support.kill_switch import KillSwitch

from .fake_boot import BootedVm, ConnectorHook, boot_vm, halt_vm
from .fake_secrets import FakeSecretManager
from .fake_state import (
    ApiError,
    FakeInstance,
    FakeOperation,
    Timeline,
    match_filter,
    validate_insert,
)

__all__ = ["FakeCompute", "Fault"]

API = "/compute/v1/projects/{project}"
_CAPACITY = {
    "zone_exhausted": (
        "ZONE_RESOURCE_POOL_EXHAUSTED",
        (503, "SERVICE UNAVAILABLE"),
        "The zone 'projects/{p}/zones/{z}' does not have enough resources available to fulfill "
        "the request. Try a different zone, or try again later.",
    ),
    "quota_exceeded": (
        "QUOTA_EXCEEDED",
        (403, "FORBIDDEN"),
        "Quota 'C3_CPUS' exceeded. Limit: 0.0 in region {z}.",
    ),
}


@dataclass
class Fault:
    """One fault switch; ``times`` None means until cleared."""

    kind: str
    method: str = "*"
    zone: str = "*"
    status: int = 503
    reason: str = ""
    retry_after: float | None = None
    seconds: float = 0.0
    times: int | None = None

    def applies(self, kind: str, method: str, zone: str) -> bool:
        return (
            self.kind == kind
            and self.method in ("*", method)
            and self.zone in ("*", zone)
            and (self.times is None or self.times > 0)
        )


def _error(exc: ApiError) -> web.Response:
    return web.json_response(exc.body(), status=exc.status, headers=exc.headers)


class FakeCompute:
    """Start with ``start()`` (or ``with FakeCompute() as fake``); ``url`` is the endpoint."""

    def __init__(
        self,
        *,
        project: str = "test-project",
        step_seconds: float = 0.05,
        advance_on_read: bool = True,
        boot_control_planes: bool = False,
        connector_hook: ConnectorHook | None = None,
        kill_switch: KillSwitch | None = None,
        secret_manager: FakeSecretManager | None = None,
    ) -> None:
        self.project = project
        self.kill_switch = kill_switch or KillSwitch()
        self._owns_secret_manager = secret_manager is None
        self.secret_manager = secret_manager or FakeSecretManager(
            project=project, kill_switch=self.kill_switch
        )
        self.step_seconds = step_seconds
        self.advance_on_read = advance_on_read
        self.boot_control_planes = boot_control_planes
        self.connector_hook = connector_hook
        self.url = ""
        self._lock = threading.Lock()
        self._instances: dict[tuple[str, str], FakeInstance] = {}
        self._operations: dict[tuple[str, str], FakeOperation] = {}
        self._by_request_id: dict[str, FakeOperation] = {}
        self._faults: list[Fault] = []
        self._calls: Counter[str] = Counter()
        self._kills: list[list[Any]] = []
        """``[method, calls still to let through, pid]`` for ``kill_pid_after``."""
        self._booted: dict[int, BootedVm] = {}
        self._ids = iter(range(10**12, 10**13))
        self._ip_base = (random.randint(100, 250), 0)
        self._tmp = tempfile.TemporaryDirectory(prefix="fake-gce-")
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._halting: set[asyncio.Task[None]] = set()

    # -- in-process controls ---------------------------------------------------------

    def add_fault(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def calls(self) -> dict[str, int]:
        with self._lock:
            return dict(self._calls)

    def reset_calls(self) -> None:
        with self._lock:
            self._calls.clear()

    def env(self) -> dict[str, str]:
        """Operator environment variables that point the ``gce`` provider at this fake."""
        return {
            "DD_GCP_PROJECT": self.project, "DD_GCE_ENDPOINT": self.url,
            "DD_GCE_ANONYMOUS": "true",
            "DD_SECRET_MANAGER_ENDPOINT": self.secret_manager.url,
            "DD_GCP_SERVICE_ACCOUNT": f"preview-vm@{self.project}.iam.gserviceaccount.com",
        }

    def kill_pid_after(self, method: str, n: int, pid: int) -> None:
        """SIGKILL ``pid`` once the n-th ``method`` call from now is done, before answering."""
        with self._lock:
            self._kills.append([method, n, pid])

    def instance_names(self) -> list[str]:
        with self._lock:
            return sorted(name for _, name in self._instances)

    def instances_labelled(self, key: str, value: str) -> list[tuple[str, str]]:
        """``(name, status)`` of every instance whose label ``key`` is ``value``."""
        with self._lock:
            return sorted(
                (i.name, i.status) for i in self._instances.values() if i.labels().get(key) == value
            )

    def remove_instance(self, name: str) -> bool:
        """Delete an instance out of band (as a person in the console would); False if absent."""
        with self._lock:
            key = next((k for k in self._instances if k[1] == name), None)
            if key is None:
                return False
            booted = self._booted.pop(self._instances.pop(key).id, None)
        if booted is not None:  # the VM is gone: so are its control plane and connector
            halt_vm(booted, self.connector_hook)
        return True

    def booted_log(self, name: str) -> str:
        with self._lock:
            inst = next((i for (_, n), i in self._instances.items() if n == name), None)
            vm = self._booted.get(inst.id) if inst else None
        return vm.log_path.read_text(errors="replace") if vm else ""

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> FakeCompute:
        if self._owns_secret_manager:
            self.secret_manager.start()
        ready = threading.Event()
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(ready),), daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("fake Compute API did not start")
        return self

    def stop(self) -> None:
        if self._loop and self._stop:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread:
            self._thread.join(15)
        for vm in list(self._booted.values()):
            halt_vm(vm, self.connector_hook)
        self._booted.clear()
        self._tmp.cleanup()
        if self._owns_secret_manager:
            self.secret_manager.stop()

    def __enter__(self) -> FakeCompute:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _serve(self, ready: threading.Event) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        app = web.Application(middlewares=[self._middleware])
        self._routes(app)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        ready.set()
        ticker = asyncio.create_task(self._tick())
        await self._stop.wait()
        ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticker
        await asyncio.gather(*self._halting, return_exceptions=True)
        await runner.cleanup()

    async def _tick(self) -> None:
        while True:
            with self._lock:
                self._refresh()
            await asyncio.sleep(0.02)

    def _routes(self, app: web.Application) -> None:
        zone = API + "/zones/{zone}"
        r = app.router
        r.add_post(zone + "/instances", self._insert, name="instances.insert")
        r.add_get(zone + "/instances", self._list, name="instances.list")
        r.add_get(API + "/aggregated/instances", self._aggregated, name="instances.aggregatedList")
        r.add_get(zone + "/instances/{name}", self._get, name="instances.get")
        r.add_delete(zone + "/instances/{name}", self._delete, name="instances.delete")
        r.add_post(zone + "/instances/{name}/stop", self._stop_instance, name="instances.stop")
        r.add_post(zone + "/instances/{name}/start", self._start_instance, name="instances.start")
        r.add_get(zone + "/operations/{op}", self._get_operation, name="zoneOperations.get")
        r.add_post(zone + "/operations/{op}/wait", self._wait_operation, name="zoneOperations.wait")
        r.add_get("/_fake/faults", self._faults_get, name="_fake.faults.get")
        r.add_post("/_fake/faults", self._faults_post, name="_fake.faults.post")
        r.add_delete("/_fake/faults", self._faults_delete, name="_fake.faults.delete")
        r.add_get("/_fake/calls", self._calls_get, name="_fake.calls.get")
        r.add_delete("/_fake/calls", self._calls_delete, name="_fake.calls.delete")
        r.add_post("/_fake/kill_pid_after", self._kill_post, name="_fake.kill_pid_after")
        r.add_get("/_fake/kill", self._kill_switch_get, name="_fake.kill.get")
        r.add_post("/_fake/kill", self._kill_switch_post, name="_fake.kill.post")
        r.add_delete("/_fake/kill", self._kill_switch_delete, name="_fake.kill.delete")

    # -- faults, counting, state upkeep -----------------------------------------------

    def _take(self, kind: str, method: str, zone: str) -> Fault | None:
        fault = next((f for f in self._faults if f.applies(kind, method, zone)), None)
        if fault is not None and fault.times is not None:
            fault.times -= 1
        return fault

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        method = request.match_info.route.name or "unknown"
        if method.startswith("_fake"):
            return await handler(request)  # type: ignore[no-any-return]
        zone = request.match_info.get("zone", "*")
        with self._lock:
            self._calls[method] += 1
            delay = self._take("delay", method, zone)
            failure = self._take("http", method, zone)
        try:
            if request.match_info.get("project") != self.project:
                raise ApiError(
                    404,
                    "notFound",
                    f"The resource 'projects/{request.match_info.get('project')}' was not found",
                )
            if failure is not None:
                default = "rateLimitExceeded" if failure.status == 429 else "backendError"
                headers = (
                    {"Retry-After": str(int(failure.retry_after))}
                    if failure.retry_after is not None
                    else {}
                )
                raise ApiError(
                    failure.status,
                    failure.reason or default,
                    f"Fake fault: {failure.reason or failure.status}",
                    headers,
                )
            response: web.StreamResponse = await handler(request)
        except ApiError as exc:
            response = _error(exc)
        self._kill_if_due(method)
        self.kill_switch.served(f"gce {method}")
        if delay is not None:
            await asyncio.sleep(delay.seconds)
        return response

    def _kill_if_due(self, method: str) -> None:
        with self._lock:
            due = [k for k in self._kills if k[0] == method and k[1] <= 1]
            for k in self._kills:
                k[1] -= k[0] == method
            self._kills = [k for k in self._kills if k[1] > 0]
        for _, _, pid in due:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def _next_ip(self) -> str:
        a, n = self._ip_base[0], self._ip_base[1] + 1
        self._ip_base = (a, n)
        return f"127.{a}.{n // 250}.{n % 250 + 1}"

    def _refresh(self) -> None:
        """Apply finished transitions: remove deleted instances, boot and halt control planes."""
        for key, inst in list(self._instances.items()):
            status = inst.status
            if status == "DELETED":
                del self._instances[key]
            running = status == "RUNNING"
            if running and self.boot_control_planes and inst.id not in self._booted:
                root = Path(self._tmp.name) / f"{inst.zone}-{inst.name}-{inst.id}"
                self._booted[inst.id] = boot_vm(
                    inst.user_data(), inst.ip, root, self.connector_hook,
                    secret_manager=self.secret_manager.url,
                )
            elif not running and inst.id in self._booted:
                vm = self._booted.pop(inst.id)
                task = asyncio.get_running_loop().create_task(
                    asyncio.to_thread(halt_vm, vm, self.connector_hook)
                )
                self._halting.add(task)
                task.add_done_callback(self._halting.discard)

    def _timeline(self, *states: str) -> Timeline:
        return Timeline(states, self.step_seconds, self.advance_on_read)

    def _operation(
        self, zone: str, kind: str, target: str, timeline: Timeline, **error: Any
    ) -> FakeOperation:
        name = f"operation-{int(time.time() * 1000)}-{secrets.token_hex(6)}"
        op = FakeOperation(self.project, zone, name, kind, target, timeline, **error)
        self._operations[(zone, name)] = op
        return op

    def _path(self, zone: str, collection: str, name: str) -> str:
        return f"projects/{self.project}/zones/{zone}/{collection}/{name}"

    def _base(self, request: web.Request) -> str:
        return f"{request.scheme}://{request.host}/compute/v1"

    def _op_response(self, request: web.Request, op: FakeOperation) -> web.Response:
        return web.json_response(op.to_json(self._base(request)))

    def _find(self, request: web.Request) -> FakeInstance:
        zone, name = request.match_info["zone"], request.match_info["name"]
        inst = self._instances.get((zone, name))
        if inst is None:
            raise ApiError(
                404,
                "notFound",
                f"The resource '{self._path(zone, 'instances', name)}' was not found",
            )
        return inst

    # -- instances -------------------------------------------------------------------

    async def _insert(self, request: web.Request) -> web.Response:
        zone, body = request.match_info["zone"], await request.json()
        request_id = request.query.get("requestId", "")
        with self._lock:
            if request_id in self._by_request_id:
                op = self._by_request_id[request_id]
                op.timeline.read()
                self._refresh()
                return self._op_response(request, op)
            validate_insert(self.project, zone, body)
            name = body["name"]
            for kind, (code, http_error, template) in _CAPACITY.items():
                if self._take(kind, "instances.insert", zone):
                    message = template.format(p=self.project, z=zone)
                    error = {"errors": [{"code": code, "message": message}]}
                    op = self._operation(
                        zone,
                        "insert",
                        name,
                        self._timeline("RUNNING", "DONE"),
                        error=error,
                        http_error=http_error,
                    )
                    break
            else:
                if (zone, name) in self._instances:
                    raise ApiError(
                        409,
                        "alreadyExists",
                        f"The resource '{self._path(zone, 'instances', name)}' already exists",
                    )
                timeline = self._timeline("PROVISIONING", "STAGING", "RUNNING")
                self._instances[(zone, name)] = FakeInstance(
                    self.project, zone, name, body, self._next_ip(), next(self._ids), timeline
                )
                op = self._operation(zone, "insert", name, timeline)
            if request_id:
                self._by_request_id[request_id] = op
            return self._op_response(request, op)

    async def _get(self, request: web.Request) -> web.Response:
        with self._lock:
            self._find(request).timeline.read()
            self._refresh()
            return web.json_response(self._find(request).to_json(self._base(request)))

    async def _transition(
        self, request: web.Request, kind: str, states: tuple[str, ...], already: set[str]
    ) -> web.Response:
        with self._lock:
            self._refresh()
            inst = self._find(request)
            if inst.status in already:
                timeline = self._timeline(inst.status)
            else:
                timeline = inst.timeline = self._timeline(*states)
            return self._op_response(request, self._operation(inst.zone, kind, inst.name, timeline))

    async def _stop_instance(self, request: web.Request) -> web.Response:
        return await self._transition(request, "stop", ("STOPPING", "TERMINATED"), {"TERMINATED"})

    async def _start_instance(self, request: web.Request) -> web.Response:
        return await self._transition(request, "start", ("STAGING", "RUNNING"), {"RUNNING"})

    async def _delete(self, request: web.Request) -> web.Response:
        return await self._transition(request, "delete", ("STOPPING", "DELETED"), set())

    def _visible(self, request: web.Request, zone: str | None) -> list[FakeInstance]:
        lag = self._take("list_lag", request.match_info.route.name or "", zone or "*")
        newest = time.monotonic() - (lag.seconds if lag else 0.0)
        expression = request.query.get("filter", "")
        match_filter(expression, {})  # a malformed filter is refused even on an empty list
        base = self._base(request)
        found = [
            inst
            for (z, _), inst in sorted(self._instances.items())
            if (zone is None or z == zone)
            and inst.created <= newest
            and (not expression or match_filter(expression, inst.to_json(base)))
        ]
        return found

    def _page(
        self, request: web.Request, items: list[FakeInstance]
    ) -> tuple[list[FakeInstance], str]:
        try:
            start = int(request.query.get("pageToken") or 0)
            size = max(1, min(500, int(request.query.get("maxResults") or 500)))
        except ValueError:
            raise ApiError(400, "invalid", "Invalid value for field 'pageToken'.") from None
        end = start + size
        return items[start:end], (str(end) if end < len(items) else "")

    async def _list(self, request: web.Request) -> web.Response:
        zone = request.match_info["zone"]
        with self._lock:
            self._refresh()
            page, token = self._page(request, self._visible(request, zone))
            base = self._base(request)
            body: dict[str, Any] = {
                "kind": "compute#instanceList",
                "id": f"projects/{self.project}/zones/{zone}/instances",
                "items": [i.to_json(base) for i in page],
            }
        if token:
            body["nextPageToken"] = token
        return web.json_response(body)

    async def _aggregated(self, request: web.Request) -> web.Response:
        with self._lock:
            self._refresh()
            page, token = self._page(request, self._visible(request, None))
            base = self._base(request)
            items: dict[str, Any] = {}
            for inst in page:
                items.setdefault(f"zones/{inst.zone}", {"instances": []})["instances"].append(
                    inst.to_json(base)
                )
        body: dict[str, Any] = {
            "kind": "compute#instanceAggregatedList",
            "id": f"projects/{self.project}/aggregated/instances",
            "items": items,
        }
        if token:
            body["nextPageToken"] = token
        return web.json_response(body)

    # -- operations ------------------------------------------------------------------

    def _read_operation(self, request: web.Request) -> FakeOperation:
        key = (request.match_info["zone"], request.match_info["op"])
        op = self._operations.get(key)
        if op is not None:
            op.timeline.read()
            self._refresh()
            if op.done and self._take("purge_operations", "*", key[0]):
                del self._operations[key]
                op = None
        if op is None:
            raise ApiError(
                404,
                "notFound",
                f"The resource '{self._path(key[0], 'operations', key[1])}' was not found",
            )
        return op

    async def _get_operation(self, request: web.Request) -> web.Response:
        with self._lock:
            return self._op_response(request, self._read_operation(request))

    async def _wait_operation(self, request: web.Request) -> web.Response:
        deadline = time.monotonic() + 2.0
        while True:
            with self._lock:
                op = self._read_operation(request)
                if op.done or time.monotonic() > deadline:
                    return self._op_response(request, op)
            await asyncio.sleep(0.01)

    # -- controls over HTTP ----------------------------------------------------------

    async def _faults_get(self, request: web.Request) -> web.Response:
        with self._lock:
            return web.json_response([asdict(f) for f in self._faults])

    async def _faults_post(self, request: web.Request) -> web.Response:
        data = await request.json()
        known = {f.name for f in fields(Fault)}
        if not isinstance(data, dict) or "kind" not in data or set(data) - known:
            return web.json_response({"error": f"fault fields are {sorted(known)}"}, status=400)
        self.add_fault(Fault(**data))
        return web.json_response(data, status=201)

    async def _faults_delete(self, request: web.Request) -> web.Response:
        self.clear_faults()
        return web.json_response({})

    async def _calls_get(self, request: web.Request) -> web.Response:
        return web.json_response(self.calls())

    async def _calls_delete(self, request: web.Request) -> web.Response:
        self.reset_calls()
        return web.json_response({})

    async def _kill_post(self, request: web.Request) -> web.Response:
        data = await request.json()
        try:
            method, n, pid = str(data["method"]), int(data["n"]), int(data["pid"])
        except (KeyError, TypeError, ValueError):
            return web.json_response({"error": "fields are method, n, pid"}, status=400)
        self.kill_pid_after(method, n, pid)
        return web.json_response(data, status=201)

    async def _kill_switch_get(self, request: web.Request) -> web.Response:
        return web.json_response(self.kill_switch.to_json())

    async def _kill_switch_post(self, request: web.Request) -> web.Response:
        try:
            self.kill_switch.apply_json(await request.json())
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response(self.kill_switch.to_json(), status=201)

    async def _kill_switch_delete(self, request: web.Request) -> web.Response:
        self.kill_switch.disarm()
        return web.json_response(self.kill_switch.to_json())
