"""Fixtures: a fake Compute API per test and a ``GceVmProvider`` pointed at it."""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from dd_operator.naming import Stamp, instance_name
from dd_operator.providers.base import BootConfig, VmRequest
from dd_operator.providers.gce import GceVmProvider
from dd_operator.settings import GceSettings

from .fake import FakeCompute

ZONES = ("us-central1-a", "us-central1-b", "us-central1-c")
PROJECT = "test-project"


class FakeClock:
    """Monotonic seconds the test moves by hand (zone cooldowns)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def vm_request(
    *, sha: str = "", attempt: int = 0, machine_type: str = "", port: int = 8080,
    max_run_seconds: int | None = None, stamp: Stamp | None = None,
) -> VmRequest:
    stamp = stamp or Stamp("test", "ns1", "pe1", str(uuid.uuid4()))
    sha = sha or uuid.uuid4().hex + "deadbeef"
    boot = BootConfig(
        env="pr-7", owner="acme", hostname="pr-7.preview.example.com", build_sha=sha,
        port=port, version="0.1.0", attest_token="attest-bearer",
    )
    return VmRequest(
        name=instance_name(stamp, "pr-7", sha), stamp=stamp, pull_request=7, boot=boot,
        zones=ZONES, machine_type=machine_type, disk_size_gb=0,
        max_run_seconds=max_run_seconds, attempt=attempt,
    )


def settings_for(fake: FakeCompute, **overrides: object) -> GceSettings:
    values: dict[str, object] = {
        "project": PROJECT, "zones": ZONES, "endpoint": fake.url, "anonymous": True,
        "request_timeout_seconds": 1, "zone_cooldown_seconds": 600,
        "secret_manager_endpoint": fake.secret_manager.url,
        "service_account": f"preview-vm@{PROJECT}.iam.gserviceaccount.com",
    }
    values.update(overrides)
    return GceSettings(**values)  # type: ignore[arg-type]


@pytest.fixture
def fake() -> Iterator[FakeCompute]:
    """Read-driven timeline: every read of an instance or operation moves it one step."""
    with FakeCompute(project=PROJECT, step_seconds=3600) as server:
        yield server


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def provider(fake: FakeCompute, clock: FakeClock) -> AsyncIterator[GceVmProvider]:
    gce = GceVmProvider(settings_for(fake), clock=clock)
    yield gce
    await gce.close()
