"""The fake refuses what GitHub refuses, and pages like GitHub does."""

from __future__ import annotations

import httpx

from .fake import FakeGitHub


async def test_fake_refuses_requests_without_the_token(fake_github: FakeGitHub) -> None:
    async with httpx.AsyncClient(base_url=fake_github.url) as c:
        r = await c.get("/repos/a/b/issues/1/comments")
        assert r.status_code == 401 and r.json()["message"] == "Bad credentials"


async def test_fake_refuses_empty_bodies_bad_states_and_unknown_ids(
    fake_github: FakeGitHub,
) -> None:
    headers = {"Authorization": f"Bearer {fake_github.token}"}
    async with httpx.AsyncClient(base_url=fake_github.url, headers=headers) as c:
        assert (await c.post("/repos/a/b/issues/1/comments", json={"body": " "})).status_code == 422
        assert (
            await c.patch("/repos/a/b/issues/comments/1", json={"body": "x"})
        ).status_code == 404
        d = (await c.post("/repos/a/b/deployments", json={"ref": "a" * 40})).json()
        bad = await c.post(f"/repos/a/b/deployments/{d['id']}/statuses", json={"state": "done"})
        assert bad.status_code == 422
        assert (await c.get("/repos/a/b/deployments/999/statuses")).status_code == 404


async def test_fake_refuses_editing_another_accounts_comment(fake_github: FakeGitHub) -> None:
    theirs = fake_github.add_comment("a/b", 1, "hello", login="alice")
    headers = {"Authorization": f"Bearer {fake_github.token}"}
    async with httpx.AsyncClient(base_url=fake_github.url, headers=headers) as c:
        r = await c.patch(f"/repos/a/b/issues/comments/{theirs['id']}", json={"body": "x"})
        assert r.status_code == 403


async def test_fake_pages_with_link_headers(fake_github: FakeGitHub) -> None:
    for i in range(5):
        fake_github.add_comment("a/b", 1, f"c{i}")
    headers = {"Authorization": f"Bearer {fake_github.token}"}
    seen: list[str] = []
    async with httpx.AsyncClient(headers=headers) as c:
        url: str | None = f"{fake_github.url}/repos/a/b/issues/1/comments?per_page=2"
        while url:
            r = await c.get(url)
            seen += [x["body"] for x in r.json()]
            url = r.links.get("next", {}).get("url")
    assert seen == [f"c{i}" for i in range(5)]
