"""GitHub reporting: one PR comment per environment, edited in place, and a deployment.

What the pull request sees (``PullRequestReporter`` of ``providers.base``):

- **One comment per environment.** It starts with a hidden HTML marker,
  ``<!-- dd-preview:<cluster>/<namespace>/<name> owner=ddp.<cluster>.<uid> -->``, found by
  listing every page of the PR's comments. The comment is edited only when its text
  changes; a second copy (two replicas racing) is deleted, the oldest is kept. Only
  comments written by our own account count (``GET /user``; for a GitHub App token, which
  cannot read ``/user``, any Bot account), so a person quoting the marker cannot make us
  edit their comment or create duplicates.
- **A deployment per commit** in environment ``dd-preview/<cluster>/<namespace>/<name>``,
  with statuses ``in_progress`` -> ``success`` (with the URL) or ``failure``; on delete,
  every deployment of the environment becomes ``inactive``. A status is posted only when
  it differs from the latest one, so a repeated report writes nothing.

Errors: connection failures, 429, 5xx and rate-limit 403s are ``TransientFailure``
(honouring ``Retry-After`` / ``x-ratelimit-reset``); other 4xx are ``PermanentFailure``.
Messages name the method and path, never the token or a response body beyond
GitHub's one-line ``message``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC
from typing import Any

import httpx

from ..errors import PermanentFailure, TransientFailure
from ..httpclient import new_client
from ..naming import github_environment, github_marker
from ..retry import parse_retry_after
from ..settings import GitHubSettings
from .base import PreviewReport

__all__ = ["GitHubReporter", "render_comment", "reporter_from_settings"]

_PER_PAGE = 100
_HEADERS = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}


def _cell(text: str) -> str:
    """Safe inside a Markdown table cell: one line, no pipes, no HTML comments."""
    return " ".join(text.split()).replace("|", "\\|").replace("<!--", "&lt;!--")[:300]


def _marker_line(cluster_id: str, report: PreviewReport) -> str:
    key = github_marker(cluster_id, report.namespace, report.name)
    owner = f" owner=ddp.{cluster_id}.{report.uid}" if report.uid else ""
    return f"<!-- {key}{owner} -->"


def render_comment(cluster_id: str, report: PreviewReport) -> str:
    """The comment's Markdown for one state: pure, so each state is easy to show and test."""
    subject = f"{report.repository}#{report.pull_request}"
    where = f"`{report.namespace}/{report.name}`"
    expires = (
        report.expires_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
        if report.expires_at
        else "never (no ttl)"
    )
    blocking = f"{report.reason}: {report.message}" if report.message else report.reason
    if report.deleted:
        heading = "### Preview removed"
        rows = [
            ("Commit", f"`{report.commit_sha[:12]}`"),
            ("Status", "deleted (pull request closed)"),
        ]
    elif report.ready:
        heading = "### Preview expiring soon" if report.expiring_soon else "### Preview ready"
        rows = [
            ("URL", report.url),
            ("Commit", f"`{report.commit_sha[:12]}`"),
            ("Status", "Ready"),
            ("Expires", expires),
        ]
    elif report.failed:
        heading = "### Preview failed"
        rows = [
            ("Commit", f"`{report.commit_sha[:12]}`"),
            ("Status", _cell(f"Failed: {blocking}")),
            ("Expires", expires),
        ]
    else:
        heading = "### Preview starting"
        rows = [
            ("URL", report.url or "(not yet)"),
            ("Commit", f"`{report.commit_sha[:12]}`"),
            ("Status", _cell(f"Waiting for {blocking}" if blocking else "Waiting")),
            ("Expires", expires),
        ]
    lines = [_marker_line(cluster_id, report), f"{heading} for {subject}", "", "| | |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in rows]
    lines.append("")
    if report.ready and not report.deleted:
        lines.append(
            f"Log in by pasting `gh auth token` at {report.url.rstrip('/')}/auth/pat, or from a "
            f'shell: `curl -H "Authorization: Bearer $(gh auth token)" {report.url}`'
        )
    elif report.failed:
        lines.append(f"Details: `kubectl describe pe -n {report.namespace} {report.name}`")
    if report.expiring_soon and not report.deleted:
        lines.append(
            f"This preview is deleted at {expires}. Push a commit to renew it, or keep it with "
            f"`kubectl annotate pe -n {report.namespace} {report.name} "
            "preview.devopsdefender.com/keep=true`."
        )
    lines += ["", f"<sub>PreviewEnvironment {where}, kept up to date by dd-preview.</sub>"]
    return "\n".join(lines)


def _deployment_state(report: PreviewReport) -> str:
    if report.deleted:
        return "inactive"
    if report.ready:
        return "success"
    return "failure" if report.failed else "in_progress"


class GitHubReporter:
    """``PullRequestReporter`` over the GitHub REST API (base URL from ``GitHubSettings``)."""

    def __init__(
        self, settings: GitHubSettings, *, cluster_id: str, client: httpx.AsyncClient | None = None
    ) -> None:
        self._cluster_id = cluster_id
        self._client = client or new_client(
            base_url=settings.api_url,
            headers={**_HEADERS, "Authorization": f"Bearer {settings.token}"},
        )
        self._login: str | None = None
        self._login_known = False

    async def close(self) -> None:
        await self._client.aclose()

    async def report(self, report: PreviewReport) -> None:
        await self._upsert_comment(report)
        await self._update_deployments(report)

    # -- HTTP -------------------------------------------------------------------------------

    async def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        what = f"GitHub {method} {httpx.URL(url).path}"
        try:
            response = await self._client.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise TransientFailure(f"{what}: {type(exc).__name__}") from exc
        if response.is_success:
            return response
        status = response.status_code
        try:
            message = str(response.json().get("message", ""))[:200]
        except ValueError:
            message = ""
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        limited = response.headers.get("x-ratelimit-remaining") == "0"
        if limited and retry_after is None:
            reset = response.headers.get("x-ratelimit-reset", "")
            retry_after = max(0.0, float(reset) - time.time()) if reset.isdigit() else None
        if status == 429 or status >= 500 or (status == 403 and (limited or retry_after)):
            raise TransientFailure(f"{what}: {status} {message}".strip(), retry_after=retry_after)
        raise PermanentFailure("GitHubRefused", f"{what}: {status} {message}".strip())

    async def _pages(self, path: str, params: dict[str, str]) -> AsyncIterator[dict[str, Any]]:
        """Every item of a paginated list, following ``Link: rel="next"``."""
        url: str | None = path
        query: dict[str, str] | None = {**params, "per_page": str(_PER_PAGE)}
        while url:
            response = await self._request("GET", url, params=query)
            for item in response.json():
                yield item
            url = response.links.get("next", {}).get("url")
            query = None  # the next link carries the query

    async def _whoami(self) -> str | None:
        """Our login; None for a GitHub App installation token (it cannot read /user)."""
        if not self._login_known:
            try:
                self._login = str((await self._request("GET", "/user")).json()["login"])
            except PermanentFailure:
                self._login = None
            self._login_known = True
        return self._login

    # -- the comment ------------------------------------------------------------------------

    async def _upsert_comment(self, report: PreviewReport) -> None:
        body = render_comment(self._cluster_id, report)
        prefix = f"<!-- {github_marker(self._cluster_id, report.namespace, report.name)} "
        me = await self._whoami()
        issue = f"/repos/{report.repository}/issues/{report.pull_request}/comments"
        ours: list[dict[str, Any]] = []
        async for comment in self._pages(issue, {}):
            user = comment.get("user") or {}
            mine = user.get("login") == me if me else user.get("type") == "Bot"
            if mine and str(comment.get("body", "")).startswith(prefix):
                ours.append(comment)
        ours.sort(key=lambda c: int(c["id"]))
        for extra in ours[1:]:
            await self._request(
                "DELETE", f"/repos/{report.repository}/issues/comments/{extra['id']}"
            )
        if ours and ours[0].get("body") == body:
            return
        if ours:
            try:
                await self._request(
                    "PATCH",
                    f"/repos/{report.repository}/issues/comments/{ours[0]['id']}",
                    json={"body": body},
                )
                return
            except PermanentFailure:
                pass  # deleted meanwhile or no longer editable: write a fresh one
        await self._request("POST", issue, json={"body": body})

    # -- deployments ------------------------------------------------------------------------

    async def _update_deployments(self, report: PreviewReport) -> None:
        environment = github_environment(self._cluster_id, report.namespace, report.name)
        marker = github_marker(self._cluster_id, report.namespace, report.name)
        path = f"/repos/{report.repository}/deployments"
        params = {"environment": environment}
        if not report.deleted:
            params["sha"] = report.commit_sha
        deployments = [
            d
            async for d in self._pages(path, params)
            if (d.get("payload") or {}).get("dd-preview") == marker
        ]
        if not deployments and report.deleted:
            return
        if not deployments:
            created = await self._request(
                "POST",
                path,
                json={
                    "ref": report.commit_sha,
                    "environment": environment,
                    "auto_merge": False,
                    "required_contexts": [],
                    "transient_environment": True,
                    "production_environment": False,
                    "description": f"dd-preview {report.namespace}/{report.name}",
                    "payload": {"dd-preview": marker},
                },
            )
            deployments = [created.json()]
        state = _deployment_state(report)
        description = (report.reason if not report.ready else "Ready")[:140]
        for deployment in deployments:
            await self._set_status(report, path, deployment, state, description)

    async def _set_status(
        self,
        report: PreviewReport,
        path: str,
        deployment: dict[str, Any],
        state: str,
        description: str,
    ) -> None:
        statuses = f"{path}/{deployment['id']}/statuses"
        latest = (await self._request("GET", statuses, params={"per_page": "1"})).json()
        url = report.url if state == "success" else ""
        if (
            latest
            and latest[0].get("state") == state
            and (state != "success" or latest[0].get("environment_url") == url)
        ):
            return
        payload: dict[str, Any] = {
            "state": state,
            "description": description,
            "auto_inactive": True,
        }
        if url:
            payload["environment_url"] = url
        await self._request("POST", statuses, json=payload)


def reporter_from_settings(settings: GitHubSettings, *, cluster_id: str) -> GitHubReporter | None:
    """The reporter when a token is configured; None means GitHub reporting is off."""
    return GitHubReporter(settings, cluster_id=cluster_id) if settings.token else None
