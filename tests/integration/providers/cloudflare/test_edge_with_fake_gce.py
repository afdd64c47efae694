"""The Cloudflare edge in front of real control planes booted by the fake GCE.

The fake GCE starts each VM's control plane and, because the VM's boot configuration
carries the tunnel token, tells the fake Cloudflare through ``connector_hook`` that the
VM's cloudflared joined (or left) the tunnel. So ``https://pr-7.{zone}/health`` answers
from the VM the way a user would see it, and blue/green can be watched from outside.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import replace

from dd_operator import naming
from dd_operator.naming import Stamp
from dd_operator.providers.base import VmRequest
from dd_operator.providers.cloudflare import CloudflareEdgeProvider
from dd_operator.providers.gce import GceVmProvider
from tests.support.wait import async_wait_for

from ..gce.conftest import PROJECT, ZONES, free_port, settings_for, vm_request
from ..gce.driver import converge_gone, converge_running
from ..gce.fake import FakeCompute
from .conftest import CLUSTER
from .fake import FakeCloudflare, cloudflare_connector_hook


async def test_blue_green_keeps_the_hostname_served_then_teardown_leaves_nothing(
    fake: FakeCloudflare, provider: CloudflareEdgeProvider, stamp: Stamp
) -> None:
    hostname = f"pr-7.{fake.zone_name}"
    tunnel = await provider.create_tunnel(stamp)
    await provider.configure_tunnel(tunnel, hostname, 8080)
    token = await provider.tunnel_token(tunnel)
    record = await provider.create_dns(stamp, hostname, tunnel)

    async def public_build() -> str | None:
        answer = await provider.probe(hostname)
        return str(answer.json()["build"]) if answer.status_code == 200 else None

    with FakeCompute(project=PROJECT, step_seconds=0.05, boot_control_planes=True,
                     connector_hook=cloudflare_connector_hook(fake)) as compute:
        gce = GceVmProvider(settings_for(compute))
        try:
            blue_req = _with_token(vm_request(stamp=stamp, port=free_port()), token)
            blue = (await converge_running(gce, blue_req)).vm
            assert blue is not None
            await async_wait_for(
                lambda: _is(public_build(), blue_req.boot.build_sha), timeout=30,
                message="blue serving through the edge",
            )

            seen: list[int | str] = []
            stop_watching = asyncio.Event()

            async def watch() -> None:  # a user hitting the hostname during the switch
                while not stop_watching.is_set():
                    answer = await provider.probe(hostname)
                    seen.append(answer.json()["build"] if answer.status_code == 200
                                else answer.status_code)
                    await asyncio.sleep(0.02)

            watcher = asyncio.create_task(watch())
            green_req = _with_token(vm_request(stamp=stamp, port=free_port()), token)
            green = (await converge_running(gce, green_req)).vm
            assert green is not None
            await async_wait_for(
                lambda: _is(public_build(), green_req.boot.build_sha), timeout=30,
                message="green serving through the edge",
            )
            assert (await converge_gone(gce, blue, ZONES)).errors == []
            await asyncio.sleep(0.2)  # keep watching a little after blue is gone
            stop_watching.set()
            await watcher
            # The hostname always had a connector: never Cloudflare's 530/1033.
            assert 530 not in seen, seen
            # Nor a 502: green's cloudflared starts only once its /health answers (gce_boot's
            # ExecStartPre wait, which the fake GCE plays), so no connector without an origin.
            assert set(seen) <= {blue_req.boot.build_sha, green_req.boot.build_sha}, seen
            assert seen[-1] == green_req.boot.build_sha

            # teardown, in the reconcile's order: DNS, VM (its connector leaves), tunnel
            await provider.delete_dns(record)
            assert (await converge_gone(gce, green, ZONES)).errors == []
            await provider.delete_tunnel(tunnel)
        finally:
            await gce.close()

    assert [t for t in fake.live_tunnels() if naming.is_ours(t.name, stamp)] == []
    assert [r for r in fake.all_records() if naming.is_ours(r.comment, stamp)] == []
    assert await provider.list_tunnels(CLUSTER) == [] and await provider.list_dns(CLUSTER) == []
    assert 429 not in [c["status"] for c in fake.call_log()]


def _with_token(request: VmRequest, token: str) -> VmRequest:
    return replace(request, boot=replace(request.boot, tunnel_token=token))


async def _is(value: Awaitable[str | None], expected: str) -> bool:
    return await value == expected
