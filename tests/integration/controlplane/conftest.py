"""Fixtures: a fake GitHub and a fake OIDC issuer on loopback, a fake configfs-tsm root,
and a control plane (Quart test client) configured against them."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from quart import Quart
from quart.testing import QuartClient
from quart.testing.app import TestApp

from dd_controlplane.app import create_app
from dd_controlplane.settings import Settings

from .fake_github import FakeGitHub
from .fake_oidc import FakeIssuer
from .fake_tsm import FakeTsm
from .serving import served

OWNER_TOKEN = "ghp_owner_token_0001"
MEMBER_TOKEN = "ghp_member_token_0002"
OUTSIDER_TOKEN = "ghp_outsider_token_0003"
ATTEST_TOKEN = "attest-token-for-pr-7"
AGENT_PRIVATE = bytes(range(32))
SERVER_PRIVATE = bytes(range(100, 132))


def key_b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


@pytest.fixture
async def github() -> AsyncIterator[FakeGitHub]:
    fake = FakeGitHub()
    fake.add_user(OWNER_TOKEN, "acme")
    # 131 orgs: at 100 per page the owner org sits on page 2 (pagination must be followed)
    fake.add_user(MEMBER_TOKEN, "alice", orgs=[f"org{i}" for i in range(130)] + ["acme"])
    fake.add_user(OUTSIDER_TOKEN, "mallory", orgs=[f"org{i}" for i in range(150)] + ["acme-evil"])
    async with served(fake.app) as url:
        fake.base_url = url
        yield fake


@pytest.fixture
async def issuer() -> AsyncIterator[FakeIssuer]:
    fake = FakeIssuer()
    async with served(fake.app) as url:
        fake.base_url = url
        yield fake


@pytest.fixture
def tsm(tmp_path: Path) -> Iterator[FakeTsm]:
    with FakeTsm(tmp_path / "tsm" / "report") as fake:
        yield fake


SettingsFactory = Callable[..., Settings]


@pytest.fixture
def make_settings(github: FakeGitHub, issuer: FakeIssuer, tmp_path: Path) -> SettingsFactory:
    def make(**overrides: str) -> Settings:
        env = {
            "DD_ENV": "pr-7",
            "DD_OWNER": "acme",
            "DD_HOSTNAME": "pr-7.preview.test",
            "DD_BUILD_SHA": "f" * 40,
            "DD_GITHUB_API": github.base_url,
            "DD_GITHUB_OAUTH_URL": github.base_url,
            "DD_OIDC_ISSUER": issuer.base_url,
            "DD_OIDC_AUDIENCE": "dd-test",
            "DD_OIDC_OWNER_ID": "4242",
            "DD_OIDC_JWKS_MIN_REFRESH_SECONDS": "0",
            "DD_SESSION_SECRET": "s" * 40,
            "DD_ATTEST_TOKEN": ATTEST_TOKEN,
            "DD_TSM_ROOT": str(tmp_path / "no-tsm-here"),
            "DD_NOISE_STATIC_KEY": key_b64(SERVER_PRIVATE),
        }
        env.update(overrides)
        return Settings.from_env({k: v for k, v in env.items() if v is not None})

    return make


@dataclass
class ControlPlane:
    app: Quart
    client: QuartClient


MakeControlPlane = Callable[[Settings], Awaitable["ControlPlane"]]


@pytest.fixture
async def make_cp() -> AsyncIterator[MakeControlPlane]:
    """Builds apps and runs their serving lifespan; all are shut down at the end."""
    stack: list[TestApp] = []

    async def make(settings: Settings) -> ControlPlane:
        app = create_app(settings)
        test_app = app.test_app()
        await test_app.startup()
        stack.append(test_app)
        return ControlPlane(app=app, client=test_app.test_client())

    yield make
    for test_app in reversed(stack):
        await test_app.shutdown()


@pytest.fixture
async def cp(make_settings: SettingsFactory, make_cp: MakeControlPlane) -> ControlPlane:
    return await make_cp(make_settings())
