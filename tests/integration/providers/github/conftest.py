"""The fake GitHub and a reporter pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from dd_operator.providers.github import GitHubReporter
from dd_operator.settings import GitHubSettings

from .fake import FakeGitHub


@pytest.fixture
async def fake_github() -> AsyncIterator[FakeGitHub]:
    fake = await FakeGitHub().start()
    yield fake
    await fake.stop()


@pytest.fixture
async def reporter(fake_github: FakeGitHub) -> AsyncIterator[GitHubReporter]:
    r = GitHubReporter(
        GitHubSettings(token=fake_github.token, api_url=fake_github.url), cluster_id="prod-1"
    )
    yield r
    await r.close()
