"""A stateful fake of the Secret Manager REST API (and of the VM's metadata token endpoint).

Serves, on 127.0.0.1 from its own thread, the paths and JSON the real
google-cloud-secret-manager SDK sends over REST, and the one call a booting VM makes:

    POST   /v1/projects/{p}/secrets?secretId=S            secrets.create (409 ALREADY_EXISTS)
    GET    /v1/projects/{p}/secrets                       secrets.list (``filter=labels.k=v``)
    GET    /v1/projects/{p}/secrets/{s}                   secrets.get
    DELETE /v1/projects/{p}/secrets/{s}                   secrets.delete (every version)
    POST   /v1/projects/{p}/secrets/{s}:addVersion        secrets.addVersion
    GET    /v1/projects/{p}/secrets/{s}/versions/{v}:access   versions.access (``latest``)
    GET    /computeMetadata/v1/instance/service-accounts/default/token   the VM's access token

A VM (``fake_boot`` running ``fetch-secrets.py``) gets the bearer ``VM_TOKEN`` from the
token endpoint; its reads are recorded in ``vm_reads`` and, since they are not the
operator's, neither counted in ``calls`` nor served to the shared ``KillSwitch``.

Fault switch: ``fail(status, method="*", times=None)`` answers ``status`` (e.g. 503) for
the named method (``secrets.create``, ``versions.access``...) until cleared or used up.
"""

from __future__ import annotations

import asyncio
import base64
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from tests.support.kill_switch import KillSwitch

__all__ = ["VM_TOKEN", "FakeSecretManager"]

VM_TOKEN = "fake-vm-access-token"
_STATUS = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
           409: "ALREADY_EXISTS", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL",
           503: "UNAVAILABLE"}


class _ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message

    def response(self) -> web.Response:
        body = {"error": {"code": self.status, "message": self.message,
                          "status": _STATUS.get(self.status, "UNKNOWN")}}
        return web.json_response(body, status=self.status)


@dataclass
class FakeSecret:
    labels: dict[str, str]
    created: str
    versions: list[bytes] = field(default_factory=list)


@dataclass
class _Fault:
    status: int
    method: str
    times: int | None


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class FakeSecretManager:
    """Start with ``start()`` (or ``with FakeSecretManager() as sm``); ``url`` is the endpoint."""

    def __init__(self, *, project: str = "test-project",
                 kill_switch: KillSwitch | None = None) -> None:
        self.project = project
        self.kill_switch = kill_switch or KillSwitch()
        self.url = ""
        self.vm_reads: list[str] = []
        self._secrets: dict[str, FakeSecret] = {}
        self._faults: list[_Fault] = []
        self._calls: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None

    # -- in-process controls and views ------------------------------------------------

    def fail(self, status: int, method: str = "*", times: int | None = None) -> None:
        with self._lock:
            self._faults.append(_Fault(status, method, times))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def calls(self) -> dict[str, int]:
        with self._lock:
            return dict(self._calls)

    def secret_ids(self) -> list[str]:
        with self._lock:
            return sorted(self._secrets)

    def labels(self, secret_id: str) -> dict[str, str]:
        with self._lock:
            return dict(self._secrets[secret_id].labels)

    def versions(self, secret_id: str) -> list[bytes]:
        with self._lock:
            return list(self._secrets[secret_id].versions)

    def secrets_labelled(self, key: str, value: str) -> list[str]:
        with self._lock:
            return sorted(s for s, v in self._secrets.items() if v.labels.get(key) == value)

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> FakeSecretManager:
        ready = threading.Event()
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(ready),), daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("fake Secret Manager did not start")
        return self

    def stop(self) -> None:
        if self._loop and self._stop:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread:
            self._thread.join(15)

    def __enter__(self) -> FakeSecretManager:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _serve(self, ready: threading.Event) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        app = web.Application(middlewares=[self._middleware])
        base = "/v1/projects/{project}/secrets"
        secret = base + "/{secret:[A-Za-z0-9_-]+}"
        app.router.add_post(base, self._create, name="secrets.create")
        app.router.add_get(base, self._list, name="secrets.list")
        app.router.add_get(secret, self._get, name="secrets.get")
        app.router.add_delete(secret, self._delete, name="secrets.delete")
        app.router.add_post(secret + ":addVersion", self._add_version, name="secrets.addVersion")
        app.router.add_get(secret + "/versions/{version:[a-z0-9]+}:access", self._access,
                           name="versions.access")
        app.router.add_get("/computeMetadata/v1/instance/service-accounts/default/token",
                           self._token, name="_metadata.token")
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        ready.set()
        await self._stop.wait()
        await runner.cleanup()

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        method = request.match_info.route.name or "unknown"
        if method.startswith("_"):
            return await handler(request)  # type: ignore[no-any-return]
        by_vm = request.headers.get("Authorization") == f"Bearer {VM_TOKEN}"
        with self._lock:
            if not by_vm:
                self._calls[method] += 1
            fault = next((f for f in self._faults if f.method in ("*", method)
                          and (f.times is None or f.times > 0)), None)
            if fault is not None and fault.times is not None:
                fault.times -= 1
        try:
            if request.match_info.get("project") != self.project:
                raise _ApiError(404, f"Project {request.match_info.get('project')} not found")
            if fault is not None:
                raise _ApiError(fault.status, f"Fake fault: {fault.status}")
            response: web.StreamResponse = await handler(request)
        except _ApiError as exc:
            response = exc.response()
        if not by_vm:
            self.kill_switch.served(f"secretmanager {method}")
        return response

    def _name(self, secret_id: str) -> str:
        return f"projects/{self.project}/secrets/{secret_id}"

    def _secret_json(self, secret_id: str, s: FakeSecret) -> dict[str, Any]:
        return {"name": self._name(secret_id), "replication": {"automatic": {}},
                "createTime": s.created, "labels": s.labels, "etag": f'"{len(s.versions)}"'}

    def _find(self, request: web.Request) -> tuple[str, FakeSecret]:
        secret_id = request.match_info["secret"]
        found = self._secrets.get(secret_id)
        if found is None:
            raise _ApiError(404, f"Secret [{self._name(secret_id)}] not found.")
        return secret_id, found

    async def _create(self, request: web.Request) -> web.Response:
        secret_id = request.query.get("secretId", "")
        body = await request.json()
        if not secret_id or len(secret_id) > 255 or not all(
            c.isalnum() or c in "-_" for c in secret_id
        ):
            raise _ApiError(400, "Invalid secret id.")
        if "replication" not in body:
            raise _ApiError(400, "Secret.replication is required.")
        labels = {str(k): str(v) for k, v in (body.get("labels") or {}).items()}
        if any(len(v) > 63 or v != v.lower() for v in labels.values()):
            raise _ApiError(400, "Invalid label value.")
        with self._lock:
            if secret_id in self._secrets:
                raise _ApiError(409, f"Secret [{self._name(secret_id)}] already exists.")
            self._secrets[secret_id] = FakeSecret(labels, _now())
            return web.json_response(self._secret_json(secret_id, self._secrets[secret_id]))

    async def _list(self, request: web.Request) -> web.Response:
        wanted = request.query.get("filter", "")
        key, _, value = wanted.removeprefix("labels.").partition("=")
        with self._lock:
            found = [self._secret_json(i, s) for i, s in sorted(self._secrets.items())
                     if not wanted or s.labels.get(key.strip()) == value.strip().strip('"')]
        return web.json_response({"secrets": found, "totalSize": len(found)})

    async def _get(self, request: web.Request) -> web.Response:
        with self._lock:
            return web.json_response(self._secret_json(*self._find(request)))

    async def _delete(self, request: web.Request) -> web.Response:
        with self._lock:
            secret_id, _ = self._find(request)
            del self._secrets[secret_id]
        return web.json_response({})

    async def _add_version(self, request: web.Request) -> web.Response:
        body = await request.json()
        try:
            data = base64.b64decode(body["payload"]["data"], validate=True)
        except (KeyError, TypeError, ValueError) as exc:
            raise _ApiError(400, "SecretPayload.data is required.") from exc
        with self._lock:
            secret_id, s = self._find(request)
            s.versions.append(data)
            number = len(s.versions)
        return web.json_response({"name": f"{self._name(secret_id)}/versions/{number}",
                                  "createTime": _now(), "state": "ENABLED"})

    async def _access(self, request: web.Request) -> web.Response:
        version = request.match_info["version"]
        with self._lock:
            secret_id, s = self._find(request)
            number = len(s.versions) if version == "latest" else int(version)
            if not 1 <= number <= len(s.versions):
                raise _ApiError(404, f"Secret Version [{self._name(secret_id)}/versions/"
                                     f"{version}] not found.")
            data = s.versions[number - 1]
            if request.headers.get("Authorization") == f"Bearer {VM_TOKEN}":
                self.vm_reads.append(secret_id)
        return web.json_response({
            "name": f"{self._name(secret_id)}/versions/{number}",
            "payload": {"data": base64.b64encode(data).decode()},
        })

    async def _token(self, request: web.Request) -> web.Response:
        if request.headers.get("Metadata-Flavor") != "Google":
            return web.Response(status=403, text="Missing Metadata-Flavor:Google header.")
        return web.json_response(
            {"access_token": VM_TOKEN, "expires_in": 3599, "token_type": "Bearer"}
        )
