"""GceVmProvider against the fake Compute API, through the real google-cloud-compute SDK.

Each test states what a user of the provider sees: a VM, an endpoint that answers, an
error of the right class with the right reason, and how many GCE calls it took.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import compute_v1

from dd_operator.errors import IncompleteListing, PermanentFailure, TransientFailure
from dd_operator.httpclient import new_client
from dd_operator.providers.base import Vm
from dd_operator.providers.gce import GceVmProvider
from tests.support.wait import async_wait_for

from .conftest import PROJECT, ZONES, FakeClock, free_port, settings_for, vm_request
from .driver import converge_gone, converge_running
from .fake import FakeCompute, Fault


def raw_instance(fake: FakeCompute, zone: str, name: str) -> compute_v1.Instance:
    client = compute_v1.InstancesClient(
        transport="rest",
        client_options={"api_endpoint": fake.url},
        credentials=AnonymousCredentials(),
    )
    return client.get(project=PROJECT, zone=zone, instance=name)


async def test_lifecycle_boots_serves_the_build_then_stops_and_deletes() -> None:
    with FakeCompute(project=PROJECT, step_seconds=0.05, boot_control_planes=True) as fake:
        provider = GceVmProvider(settings_for(fake))
        request = vm_request(port=free_port())
        created = await converge_running(provider, request)
        vm = created.vm
        assert vm is not None and vm.status == "RUNNING" and vm.zone == ZONES[0]
        assert vm.build_sha == request.boot.build_sha
        assert vm.owner == (request.stamp.cluster_id, request.stamp.uid)

        async with new_client(timeout=2.0) as http:

            async def health() -> dict[str, object] | None:
                answer = await http.get(f"{vm.endpoint}/health")
                return answer.json() if answer.status_code == 200 else None

            body = await async_wait_for(health, timeout=30, message="the VM's /health")
            assert body["build"] == request.boot.build_sha
            assert body["env"] == "pr-7"

            stop = await provider.stop_vm(vm)
            assert stop is not None
            await async_wait_for(lambda: provider.check_operation(stop), timeout=10)
            stopped = await provider.get_vm(vm.name, ZONES)
            assert stopped is not None and stopped.status == "TERMINATED"

            async def unreachable() -> bool:
                try:
                    await http.get(f"{vm.endpoint}/health")
                except Exception:
                    return True
                return False

            assert await async_wait_for(unreachable, timeout=10, message="the VM to stop serving")

        gone = await converge_gone(provider, stopped, ZONES)
        assert gone.errors == []
        assert await provider.get_vm(vm.name, ZONES) is None
        assert await provider.list_vms("test") == []
        await provider.close()


async def test_one_lifecycle_costs_a_known_number_of_calls(
    fake: FakeCompute, provider: GceVmProvider
) -> None:
    request = vm_request()
    created = await converge_running(provider, request)
    assert created.vm is not None
    create_calls = fake.calls()
    gone = await converge_gone(provider, created.vm, ZONES)
    assert gone.errors == []
    calls = fake.calls()
    # Lookup by name in 3 zones (404s), insert, 2 operation reads, the RUNNING read;
    # then delete, 1 operation read, and 3 reads (404) confirming it is gone.
    assert create_calls == {
        "instances.get": 4,
        "instances.insert": 1,
        "zoneOperations.get": 2,
    }
    assert calls == {
        "instances.get": 8,
        "instances.insert": 1,
        "instances.delete": 1,
        "zoneOperations.get": 3,
    }


async def test_the_instance_is_a_tdx_vm_with_stamp_backstop_and_boot_config(
    fake: FakeCompute, provider: GceVmProvider
) -> None:
    request = vm_request(max_run_seconds=7200)
    vm = (await converge_running(provider, request)).vm
    assert vm is not None
    raw = raw_instance(fake, vm.zone, vm.name)
    assert raw.confidential_instance_config.confidential_instance_type == "TDX"
    assert raw.machine_type.endswith("/machineTypes/c3-standard-4")
    assert raw.scheduling.on_host_maintenance == "TERMINATE"
    assert raw.scheduling.max_run_duration.seconds == 7200
    assert raw.scheduling.instance_termination_action == "DELETE"
    assert raw.disks[0].initialize_params.source_image.endswith(
        "ubuntu-os-cloud/global/images/family/ubuntu-2404-lts-amd64"
    )
    labels = dict(raw.labels)
    assert labels["dd-cluster"] == "test" and labels["dd-uid"] == request.stamp.uid
    assert labels["dd-pr"] == "7" and labels["dd-build"] == request.boot.build_sha
    items = {i.key: i.value for i in raw.metadata.items}
    assert items["user-data"].startswith("#cloud-config\n")
    assert items["dd-control-plane-port"] == "8080"


async def test_no_backstop_without_a_ttl(fake: FakeCompute, provider: GceVmProvider) -> None:
    vm = (await converge_running(provider, vm_request(max_run_seconds=None))).vm
    assert vm is not None
    raw = raw_instance(fake, vm.zone, vm.name)
    assert not raw.scheduling.max_run_duration.seconds
    assert not raw.scheduling.instance_termination_action


async def test_create_twice_with_the_same_request_id_makes_one_instance(
    fake: FakeCompute, provider: GceVmProvider
) -> None:
    request = vm_request()
    first = await provider.create_vm(request)
    again = await provider.create_vm(request)
    assert first is not None and again is not None and first.name == again.name
    assert fake.instance_names() == [request.name]


async def test_a_restarted_operator_finds_the_vm_instead_of_creating_another(
    fake: FakeCompute, provider: GceVmProvider
) -> None:
    request = vm_request()
    await provider.create_vm(request)  # "crash" before the operation reached status
    restarted = GceVmProvider(settings_for(fake))
    assert await restarted.create_vm(request) is not None  # same requestId: same operation
    assert await restarted.create_vm(replace(request, attempt=1)) is None  # 409: it exists
    vm = (await converge_running(restarted, request)).vm
    assert vm is not None and fake.instance_names() == [request.name]
    await restarted.close()


@pytest.mark.parametrize("kind", ["zone_exhausted", "quota_exceeded"])
async def test_capacity_errors_move_to_the_next_zone_and_cool_the_first(
    kind: str, fake: FakeCompute, provider: GceVmProvider
) -> None:
    fake.add_fault(Fault(kind=kind, zone=ZONES[0], times=1))
    outcome = await converge_running(provider, vm_request())
    assert outcome.vm is not None and outcome.vm.zone == ZONES[1]
    assert len(outcome.errors) == 1 and isinstance(outcome.errors[0], TransientFailure)
    # The cooled zone stays skipped for the next environment too.
    other = await converge_running(provider, vm_request())
    assert other.vm is not None and other.vm.zone == ZONES[1]


async def test_every_zone_cooled_is_transient_until_the_first_warms_up(
    fake: FakeCompute, provider: GceVmProvider, clock: FakeClock
) -> None:
    for zone in ZONES:
        fake.add_fault(Fault(kind="zone_exhausted", zone=zone, times=1))
    request = vm_request()
    for attempt in range(3):
        pending = await provider.create_vm(replace(request, attempt=attempt))
        assert pending is not None
        while not (state := await provider.check_operation(pending)).done:
            pass
        assert isinstance(state.error, TransientFailure)
    with pytest.raises(TransientFailure) as caught:
        await provider.create_vm(replace(request, attempt=3))
    assert caught.value.retry_after == pytest.approx(600)
    clock.now += 601
    pending = await provider.create_vm(replace(request, attempt=3))
    assert pending is not None and pending.zone == ZONES[0]


@pytest.mark.parametrize(
    ("status", "reason"), [(429, "rateLimitExceeded"), (403, "rateLimitExceeded")]
)
async def test_rate_limits_are_transient_and_carry_retry_after(
    status: int, reason: str, fake: FakeCompute, provider: GceVmProvider
) -> None:
    fake.add_fault(
        Fault(
            kind="http",
            method="instances.insert",
            status=status,
            reason=reason,
            retry_after=7,
            times=1,
        )
    )
    request = vm_request()
    with pytest.raises(TransientFailure) as caught:
        await provider.create_vm(request)
    assert caught.value.retry_after == 7
    assert await provider.create_vm(request) is not None
    assert fake.instance_names() == [request.name]


@pytest.mark.parametrize("status", [500, 503])
async def test_server_errors_on_read_are_unknown_never_gone(
    status: int, fake: FakeCompute, provider: GceVmProvider
) -> None:
    existing = (await converge_running(provider, vm_request())).vm
    assert existing is not None and existing.zone == ZONES[0]
    fake.add_fault(Fault(kind="http", method="instances.get", zone=ZONES[1], status=status))
    with pytest.raises(TransientFailure):  # 404 in a and c, 5xx in b: not "gone"
        await provider.get_vm(vm_request().name, ZONES)
    fresh = GceVmProvider(settings_for(fake))
    assert await fresh.get_vm(existing.name, ZONES) is not None
    await fresh.close()


async def test_a_timed_out_insert_is_retried_without_a_duplicate(
    fake: FakeCompute, provider: GceVmProvider
) -> None:
    fake.add_fault(Fault(kind="delay", method="instances.insert", seconds=2.0, times=1))
    request = vm_request()
    with pytest.raises(TransientFailure, match="did not answer"):
        await provider.create_vm(request)
    outcome = await converge_running(provider, request)
    assert outcome.vm is not None and fake.instance_names() == [request.name]
    assert fake.calls()["instances.insert"] == 1  # the server had done it: found by name


async def test_a_purged_operation_counts_as_done_and_get_vm_decides(
    fake: FakeCompute, provider: GceVmProvider
) -> None:
    fake.add_fault(Fault(kind="purge_operations"))
    request = vm_request()
    pending = await provider.create_vm(request)
    assert pending is not None
    while not (state := await provider.check_operation(pending)).done:
        pass
    assert state.error is None
    vm = await provider.get_vm(request.name, ZONES)
    assert vm is not None and vm.status == "RUNNING"


@pytest.mark.parametrize(
    ("machine_type", "image_family", "reason"),
    [
        ("c3-standard-5", "ubuntu-2404-lts-amd64", "InvalidMachineType"),
        ("n2-standard-4", "ubuntu-2404-lts-amd64", "InvalidMachineType"),
        ("c3-standard-4", "no-such-image", "ImageNotFound"),
        ("c3-standard-4", "debian-12", "InvalidImage"),
    ],
)
async def test_permanent_errors_have_a_clear_reason(
    machine_type: str, image_family: str, reason: str, fake: FakeCompute
) -> None:
    image_project = "debian-cloud" if image_family == "debian-12" else "ubuntu-os-cloud"
    provider = GceVmProvider(
        settings_for(fake, image_family=image_family, image_project=image_project)
    )
    with pytest.raises(PermanentFailure) as caught:
        await provider.create_vm(vm_request(machine_type=machine_type))
    assert caught.value.reason == reason
    assert fake.calls() == {"instances.insert": 1}
    await provider.close()


async def test_permission_denied_is_permanent(fake: FakeCompute, provider: GceVmProvider) -> None:
    fake.add_fault(Fault(kind="http", status=403, reason="forbidden"))
    with pytest.raises(PermanentFailure) as caught:
        await provider.create_vm(vm_request())
    assert caught.value.reason == "PermissionDenied"


async def test_hostile_extra_env_is_refused_before_any_call(
    fake: FakeCompute, provider: GceVmProvider
) -> None:
    request = vm_request()
    bad = replace(request, boot=replace(request.boot, extra_env={"bad key": "x"}))
    with pytest.raises(PermanentFailure) as caught:
        await provider.create_vm(bad)
    assert caught.value.reason == "InvalidSpec"
    assert fake.calls() == {}


async def test_missing_vms_are_none_and_deleting_or_stopping_them_is_done(
    fake: FakeCompute, provider: GceVmProvider
) -> None:
    name = vm_request().name
    assert await provider.get_vm(name, ZONES) is None
    ghost = Vm(name=name, zone=ZONES[0], status="RUNNING", owner=None, build_sha="", endpoint="")
    assert await provider.delete_vm(ghost) is None
    assert await provider.stop_vm(ghost) is None


async def test_list_finds_every_vm_of_this_cluster_in_every_zone(
    fake: FakeCompute, clock: FakeClock
) -> None:
    ours = GceVmProvider(settings_for(fake), clock=clock)
    for zone in ZONES:
        fake.add_fault(Fault(kind="zone_exhausted", zone=zone, times=0))
    names = set()
    for n in range(5):
        request = replace(vm_request(), zones=(ZONES[n % 3],))
        names.add(request.name)
        await ours.create_vm(request)
    other = vm_request()
    other = replace(other, stamp=replace(other.stamp, cluster_id="other"))
    await ours.create_vm(other)
    listed = await ours.list_vms("test")
    assert {vm.name for vm in listed} == names
    assert {vm.zone for vm in listed} == set(ZONES)
    assert fake.calls()["instances.aggregatedList"] == 1
    await ours.close()


async def test_a_failed_listing_is_incomplete(fake: FakeCompute, provider: GceVmProvider) -> None:
    fake.add_fault(Fault(kind="http", method="instances.aggregatedList", status=503, times=1))
    with pytest.raises(IncompleteListing):
        await provider.list_vms("test")


async def test_a_lagging_list_misses_a_new_vm_that_get_vm_sees(
    fake: FakeCompute, provider: GceVmProvider
) -> None:
    fake.add_fault(Fault(kind="list_lag", seconds=60))
    request = vm_request()
    await provider.create_vm(request)
    assert await provider.list_vms("test") == []
    assert await provider.get_vm(request.name, ZONES) is not None
    fake.clear_faults()
    assert [vm.name for vm in await provider.list_vms("test")] == [request.name]


async def test_a_vm_with_a_tunnel_token_brings_its_connector_up_and_down() -> None:
    events: list[tuple[str, str, bool]] = []

    def hook(token: str, origin: str, up: bool) -> None:
        events.append((token, origin, up))

    with FakeCompute(
        project=PROJECT, step_seconds=0.02, boot_control_planes=True, connector_hook=hook
    ) as fake:
        provider = GceVmProvider(settings_for(fake))
        request = vm_request(port=free_port())
        request = replace(request, boot=replace(request.boot, tunnel_token="tunnel-secret"))
        vm = (await converge_running(provider, request)).vm
        assert vm is not None
        await async_wait_for(lambda: _async(bool(events)), timeout=10, message="connector up")
        assert events == [("tunnel-secret", vm.endpoint, True)]
        await converge_gone(provider, vm, ZONES)
        await async_wait_for(lambda: _async(len(events) == 2), timeout=10, message="connector down")
        assert events[1] == ("tunnel-secret", vm.endpoint, False)
        await provider.close()


async def _async(value: bool) -> bool:
    return value
