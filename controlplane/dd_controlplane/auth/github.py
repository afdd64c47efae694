"""The GitHub REST calls the owner check needs: ``GET /user`` and paginated ``GET /user/orgs``.

Why ``/user/orgs`` and not ``/orgs/{org}/members/{user}``: the latter answers 302 (not
404) when the *asker* is not an org member and depends on the org's visibility settings,
so "no" has three spellings. ``/user/orgs`` lists the token owner's active memberships
(pending invitations are not included); private memberships need ``read:org``, which
``gh auth token`` and our OAuth scopes carry. It is paginated (30 per page by default):
we ask for 100 per page and follow ``Link: rel="next"`` - only while the next URL stays
on the configured API base, so a hostile ``Link`` cannot make us send the token elsewhere.

Errors: 401/403 from GitHub -> ``AuthRequired`` (the token is not good); anything else
-> ``UpstreamError``. Messages never carry the token or GitHub's body.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from ..errors import AuthRequired, UpstreamError

__all__ = ["MAX_ORG_PAGES", "GitHubApi", "GitHubUser"]

MAX_ORG_PAGES = 20
"""2,000 orgs at 100 per page: beyond that something is wrong, and we stop asking."""


@dataclass(frozen=True)
class GitHubUser:
    login: str
    id: int


class GitHubApi:
    def __init__(self, http: httpx.AsyncClient, api_url: str) -> None:
        self._http = http
        self._api_url = api_url.rstrip("/")

    async def user(self, token: str) -> GitHubUser:
        body = await self._get(f"{self._api_url}/user", token)
        if not isinstance(body, dict) or not isinstance(body.get("login"), str):
            raise UpstreamError("GitHub /user answered without a login")
        return GitHubUser(login=body["login"], id=int(body.get("id") or 0))

    async def is_org_member(self, token: str, org: str) -> bool:
        """Whether ``org`` is among the token owner's orgs, reading pages until found."""
        url: str | None = f"{self._api_url}/user/orgs?per_page=100"
        for _ in range(MAX_ORG_PAGES):
            if url is None:
                return False
            response = await self._request(url, token)
            page = response.json()
            if not isinstance(page, list):
                raise UpstreamError("GitHub /user/orgs answered with something other than a list")
            if any(
                isinstance(o, dict) and str(o.get("login", "")).casefold() == org.casefold()
                for o in page
            ):
                return True
            url = self._next_page(response)
        raise UpstreamError(f"GitHub /user/orgs has more than {MAX_ORG_PAGES} pages")

    def _next_page(self, response: httpx.Response) -> str | None:
        link = response.links.get("next")
        url = link.get("url") if link else None
        if not url:
            return None
        if not url.startswith(self._api_url + "/"):
            raise UpstreamError("GitHub pagination pointed outside the configured API base")
        return url

    async def _get(self, url: str, token: str) -> object:
        return (await self._request(url, token)).json()

    async def _request(self, url: str, token: str) -> httpx.Response:
        try:
            response = await self._http.get(
                url,
                headers={
                    "Authorization": f"Bearer {token}",
                    "Accept": "application/vnd.github+json",
                    "X-GitHub-Api-Version": "2022-11-28",
                },
            )
        except httpx.HTTPError as exc:
            raise UpstreamError(f"GitHub API unreachable ({type(exc).__name__})") from exc
        if response.status_code in (401, 403):
            raise AuthRequired("GitHub did not accept this token")
        if response.status_code != 200:
            raise UpstreamError(f"GitHub API answered {response.status_code}")
        return response
