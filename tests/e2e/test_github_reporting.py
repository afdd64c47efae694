"""The operator tells the pull request about its environment: one comment, edited in place."""

from __future__ import annotations

import asyncio

import pytest

from dd_devcluster.cluster import LocalCluster
from tests.integration.providers.github.fake import FakeGitHub
from tests.support.k8s import SHA_A, SHA_B, apply, get, is_ready_with, preview
from tests.support.wait import async_wait_for

pytestmark = pytest.mark.cluster

REPO = "acme/webapp"


async def test_pull_request_gets_one_comment_that_follows_the_environment(
    cluster: LocalCluster, namespace: str, operator_factory
) -> None:
    github = await FakeGitHub().start()
    try:
        operator_factory(env={"DD_GITHUB_TOKEN": github.token, "DD_GITHUB_API": github.url})

        async def ready_on(sha: str) -> bool:
            return await asyncio.to_thread(lambda: is_ready_with(get(cluster, namespace, "pr-11"), sha))

        async def comment_says(text: str) -> bool:
            bodies = [c["body"] for c in github.comments_on(REPO, 11)]
            return len(bodies) == 1 and text in bodies[0]

        await asyncio.to_thread(apply, cluster, namespace, preview("pr-11", pr=11, sha=SHA_A))
        await async_wait_for(lambda: ready_on(SHA_A), timeout=90, message="Ready on A")
        await async_wait_for(lambda: comment_says("Preview ready"), timeout=30, message="ready comment")
        url = (await asyncio.to_thread(get, cluster, namespace, "pr-11"))["status"]["url"]
        assert url in github.comments_on(REPO, 11)[0]["body"]
        assert SHA_A[:12] in github.comments_on(REPO, 11)[0]["body"]

        await asyncio.to_thread(apply, cluster, namespace, preview("pr-11", pr=11, sha=SHA_B))
        await async_wait_for(lambda: ready_on(SHA_B), timeout=90, message="Ready on B")
        await async_wait_for(
            lambda: comment_says(SHA_B[:12]), timeout=30, message="the comment to show commit B"
        )

        await asyncio.to_thread(cluster.kubectl, "delete", "pe", "pr-11", "-n", namespace)
        await async_wait_for(lambda: comment_says("Preview removed"), timeout=60, message="removed comment")
        assert len(github.comments_on(REPO, 11)) == 1
        latest = max(github.deployments)
        await async_wait_for(
            lambda: asyncio.sleep(0, github.latest_state(latest) == "inactive"),
            timeout=30, message="the deployment to go inactive",
        )
    finally:
        await github.stop()
