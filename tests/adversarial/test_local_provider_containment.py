"""The ``local`` provider runs only the shipped control plane, with nothing chosen by the spec.

Real child processes on this machine: a spec whose extra env names an interpreter
variable must not make the child import code from a path the spec picked, and a VM name
read back from (tamperable) status must never address a file outside the state dir.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from dd_operator.naming import InstanceName, Stamp, instance_name
from dd_operator.providers.base import BootConfig, Vm, VmRequest
from dd_operator.providers.local import LocalVmProvider
from dd_operator.settings import LocalSettings
from tests.support.wait import async_wait_for

STAMP = Stamp("test", "ns", "pr-7", "3f0c9a52-8a34-4bcb-9a0e-4c1f4b8f2d10")


@pytest.fixture
async def provider(tmp_path: Path) -> AsyncIterator[LocalVmProvider]:
    p = LocalVmProvider(LocalSettings(state_dir=tmp_path / "vms"), cluster_id="test")
    yield p
    for vm in await p.list_vms("test"):
        await p.delete_vm(vm)


def _request(extra_env: dict[str, str]) -> VmRequest:
    name = instance_name(STAMP, "pr-7", "a" * 40)
    boot = BootConfig(
        env="pr-7", owner="acme", hostname="pr-7.preview.test", build_sha="a" * 40, port=0,
        extra_env=extra_env, attest_token="t" * 43,
    )
    return VmRequest(
        name=name, stamp=STAMP, pull_request=7, boot=boot, zones=("local",),
        machine_type="", disk_size_gb=0, max_run_seconds=None,
    )


async def test_interpreter_env_from_a_record_never_reaches_the_child(
    provider: LocalVmProvider, tmp_path: Path
) -> None:
    # A directory someone else could write (think /tmp): a spec naming it in PYTHONPATH
    # would run its sitecustomize.py as the operator's user.
    planted = tmp_path / "planted"
    planted.mkdir()
    marker = tmp_path / "pwned"
    (planted / "sitecustomize.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    request = _request(
        {"PYTHONPATH": str(planted), "PYTHONWARNINGS": "error", "FEATURE_X": "on"}
    )
    await provider.create_vm(request)
    vm = await async_wait_for(
        lambda: _serving(provider, request.name), timeout=20, message="the control plane to serve"
    )
    assert vm.status == "RUNNING"
    assert not marker.exists(), "a spec-chosen PYTHONPATH ran code in the control plane"


async def _serving(provider: LocalVmProvider, name: InstanceName) -> Vm | None:
    vm = await provider.get_vm(name, ("local",))
    if vm is None or not vm.endpoint:
        return None
    with contextlib.suppress(httpx.HTTPError):
        async with httpx.AsyncClient(timeout=1) as client:
            if (await client.get(f"{vm.endpoint}/health")).status_code == 200:
                return vm
    return None


@pytest.mark.parametrize("name", ["../../victim", "../victim", "/abs/victim", "a/../../victim"])
async def test_names_from_status_never_address_files_outside_the_state_dir(
    provider: LocalVmProvider, tmp_path: Path, name: str
) -> None:
    victim = tmp_path / "victim.json"
    victim.write_text(
        '{"name": "victim", "owner": "ddp.test.3f0c9a52-8a34-4bcb-9a0e-4c1f4b8f2d10",'
        ' "port": 1, "build_sha": "", "env": {}, "stopped": true, "created_at": "2024-01-01T00:00:00"}'
    )
    (tmp_path / "victim.log").write_text("keep me")
    assert await provider.get_vm(InstanceName(name), ("local",)) is None
    await provider.delete_vm(
        Vm(name=InstanceName(name), zone="local", status="TERMINATED", owner=None,
           build_sha="", endpoint="")
    )
    assert victim.exists() and (tmp_path / "victim.log").read_text() == "keep me"
