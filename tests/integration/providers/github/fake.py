"""A stateful fake of the GitHub REST endpoints the PR reporter uses, served on 127.0.0.1.

Endpoints (shapes as GitHub documents them): ``GET /user``; issue comments list / create /
update / delete with ``per_page``/``page`` pagination and ``Link: rel="next"``;
deployments create / list (``sha``, ``environment`` filters, newest first); deployment
statuses create / list, including ``auto_inactive``. It refuses what GitHub refuses: no or
wrong token (401), an empty comment body (422), an unknown status state (422), editing
another account's comment (403), unknown ids (404).

Fault switches: ``fail_next(status, times, retry_after, method, path_contains)``. Every
request is logged in ``requests`` as (method, path) so tests can count writes.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

STATES = {"error", "failure", "inactive", "in_progress", "queued", "pending", "success"}


@dataclass
class Fault:
    status: int
    times: int
    retry_after: str | None
    method: str | None
    path_contains: str | None


@dataclass
class FakeGitHub:
    token: str = "ghp_fake_test_token_0123456789"
    login: str = "dd-preview-bot"
    app_token: bool = False
    """Behave like a GitHub App installation token: /user is 403, comments come from a Bot."""
    comments: dict[int, dict[str, Any]] = field(default_factory=dict)
    deployments: dict[int, dict[str, Any]] = field(default_factory=dict)
    statuses: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    url: str = ""
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1000))
    _runner: web.AppRunner | None = None

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> FakeGitHub:
        app = web.Application(middlewares=[self._middleware])
        r = app.router
        r.add_get("/user", self._user)
        r.add_get("/repos/{owner}/{repo}/issues/{number}/comments", self._list_comments)
        r.add_post("/repos/{owner}/{repo}/issues/{number}/comments", self._create_comment)
        r.add_patch("/repos/{owner}/{repo}/issues/comments/{id}", self._update_comment)
        r.add_delete("/repos/{owner}/{repo}/issues/comments/{id}", self._delete_comment)
        r.add_get("/repos/{owner}/{repo}/deployments", self._list_deployments)
        r.add_post("/repos/{owner}/{repo}/deployments", self._create_deployment)
        r.add_get("/repos/{owner}/{repo}/deployments/{id}/statuses", self._list_statuses)
        r.add_post("/repos/{owner}/{repo}/deployments/{id}/statuses", self._create_status)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # -- switches and seeding ------------------------------------------------------------

    def fail_next(
        self,
        status: int,
        *,
        times: int = 1,
        retry_after: str | None = None,
        method: str | None = None,
        path_contains: str | None = None,
    ) -> None:
        self.faults.append(Fault(status, times, retry_after, method, path_contains))

    def add_comment(
        self, repo: str, number: int, body: str, *, login: str = "someone", user_type: str = "User"
    ) -> dict[str, Any]:
        comment = {
            "id": next(self._ids),
            "repo": repo,
            "number": number,
            "body": body,
            "user": {"login": login, "type": user_type},
            "created_at": datetime.now(UTC).isoformat(),
        }
        self.comments[comment["id"]] = comment
        return comment

    def comments_on(self, repo: str, number: int) -> list[dict[str, Any]]:
        return [
            c
            for c in sorted(self.comments.values(), key=lambda c: c["id"])
            if (c["repo"], c["number"]) == (repo, number)
        ]

    def writes(self) -> list[tuple[str, str]]:
        return [r for r in self.requests if r[0] != "GET"]

    def latest_state(self, deployment_id: int) -> str | None:
        statuses = self.statuses.get(deployment_id) or []
        return statuses[0]["state"] if statuses else None

    # -- plumbing ------------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.append((request.method, request.path))
        for fault in self.faults:
            if (
                fault.times > 0
                and (fault.method in (None, request.method))
                and (fault.path_contains is None or fault.path_contains in request.path)
            ):
                fault.times -= 1
                headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
                return web.json_response(
                    {"message": "fault injected"}, status=fault.status, headers=headers
                )
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response({"message": "Bad credentials"}, status=401)
        return await handler(request)

    def _repo(self, request: web.Request) -> str:
        return f"{request.match_info['owner']}/{request.match_info['repo']}"

    def _page(self, request: web.Request, items: list[dict[str, Any]]) -> web.Response:
        per_page = min(100, int(request.query.get("per_page", "30")))
        page = int(request.query.get("page", "1"))
        chunk = items[(page - 1) * per_page : page * per_page]
        headers = {}
        if page * per_page < len(items):
            query = {**request.query, "per_page": str(per_page), "page": str(page + 1)}
            next_url = request.url.with_query(query)
            headers["Link"] = f'<{self.url}{next_url.path_qs}>; rel="next"'
        return web.json_response(chunk, headers=headers)

    def _author(self) -> dict[str, str]:
        if self.app_token:
            return {"login": "dd-preview[bot]", "type": "Bot"}
        return {"login": self.login, "type": "User"}

    # -- endpoints -----------------------------------------------------------------------

    async def _user(self, request: web.Request) -> web.Response:
        if self.app_token:
            return web.json_response(
                {"message": "Resource not accessible by integration"}, status=403
            )
        return web.json_response({"login": self.login, "type": "User"})

    async def _list_comments(self, request: web.Request) -> web.Response:
        number = int(request.match_info["number"])
        return self._page(request, self.comments_on(self._repo(request), number))

    async def _create_comment(self, request: web.Request) -> web.Response:
        body = (await request.json()).get("body")
        if not isinstance(body, str) or not body.strip():
            return web.json_response({"message": "Validation Failed"}, status=422)
        comment = self.add_comment(self._repo(request), int(request.match_info["number"]), body)
        comment["user"] = self._author()
        return web.json_response(comment, status=201)

    async def _update_comment(self, request: web.Request) -> web.Response:
        comment = self.comments.get(int(request.match_info["id"]))
        if comment is None or comment["repo"] != self._repo(request):
            return web.json_response({"message": "Not Found"}, status=404)
        if comment["user"] != self._author():
            return web.json_response({"message": "Forbidden"}, status=403)
        body = (await request.json()).get("body")
        if not isinstance(body, str) or not body.strip():
            return web.json_response({"message": "Validation Failed"}, status=422)
        comment["body"] = body
        return web.json_response(comment)

    async def _delete_comment(self, request: web.Request) -> web.Response:
        comment = self.comments.get(int(request.match_info["id"]))
        if comment is None or comment["repo"] != self._repo(request):
            return web.json_response({"message": "Not Found"}, status=404)
        if comment["user"] != self._author():
            return web.json_response({"message": "Forbidden"}, status=403)
        del self.comments[comment["id"]]
        return web.Response(status=204)

    async def _list_deployments(self, request: web.Request) -> web.Response:
        q = request.query
        items = [
            d
            for d in sorted(self.deployments.values(), key=lambda d: -d["id"])
            if d["repo"] == self._repo(request)
            and ("sha" not in q or d["sha"] == q["sha"])
            and ("environment" not in q or d["environment"] == q["environment"])
        ]
        return self._page(request, items)

    async def _create_deployment(self, request: web.Request) -> web.Response:
        data = await request.json()
        if not isinstance(data.get("ref"), str) or not data["ref"]:
            return web.json_response({"message": "Invalid request: ref is required"}, status=422)
        deployment = {
            "id": next(self._ids),
            "repo": self._repo(request),
            "ref": data["ref"],
            "sha": data["ref"],
            "environment": data.get("environment", "production"),
            "payload": data.get("payload") or {},
            "description": data.get("description"),
            "transient_environment": bool(data.get("transient_environment", False)),
            "production_environment": bool(data.get("production_environment", False)),
        }
        self.deployments[deployment["id"]] = deployment
        self.statuses[deployment["id"]] = []
        return web.json_response(deployment, status=201)

    def _deployment(self, request: web.Request) -> dict[str, Any] | None:
        d = self.deployments.get(int(request.match_info["id"]))
        return d if d is not None and d["repo"] == self._repo(request) else None

    async def _list_statuses(self, request: web.Request) -> web.Response:
        deployment = self._deployment(request)
        if deployment is None:
            return web.json_response({"message": "Not Found"}, status=404)
        return self._page(request, self.statuses[deployment["id"]])

    async def _create_status(self, request: web.Request) -> web.Response:
        deployment = self._deployment(request)
        if deployment is None:
            return web.json_response({"message": "Not Found"}, status=404)
        data = await request.json()
        if data.get("state") not in STATES:
            return web.json_response({"message": "Validation Failed"}, status=422)
        status = {
            "id": next(self._ids),
            "state": data["state"],
            "environment_url": data.get("environment_url", ""),
            "description": data.get("description", ""),
        }
        self.statuses[deployment["id"]].insert(0, status)
        if data["state"] == "success" and data.get("auto_inactive", True):
            for other in self.deployments.values():
                if (
                    other["id"] != deployment["id"]
                    and other["repo"] == deployment["repo"]
                    and other["environment"] == deployment["environment"]
                    and self.latest_state(other["id"]) == "success"
                ):
                    self.statuses[other["id"]].insert(
                        0,
                        {
                            "id": next(self._ids),
                            "state": "inactive",
                            "environment_url": "",
                            "description": "auto_inactive",
                        },
                    )
        return web.json_response(status, status=201)
