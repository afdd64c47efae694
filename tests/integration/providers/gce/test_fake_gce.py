"""The fake Compute API refuses what real GCE refuses, and its switches work over HTTP.

Driven by the raw google-cloud-compute SDK (not our provider), so these tests pin the
fake to the SDK's wire format rather than to our own code's expectations.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from google.api_core import exceptions as api_exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import compute_v1

from .conftest import PROJECT, ZONES
from .fake import FakeCompute

ZONE = ZONES[0]
IMAGE = "projects/ubuntu-os-cloud/global/images/family/ubuntu-2404-lts-amd64"


@pytest.fixture
def client(fake: FakeCompute) -> Iterator[compute_v1.InstancesClient]:
    c = compute_v1.InstancesClient(
        transport="rest", client_options={"api_endpoint": fake.url},
        credentials=AnonymousCredentials(),
    )
    yield c
    c.transport.close()


@pytest.fixture
def operations(fake: FakeCompute) -> Iterator[compute_v1.ZoneOperationsClient]:
    c = compute_v1.ZoneOperationsClient(
        transport="rest", client_options={"api_endpoint": fake.url},
        credentials=AnonymousCredentials(),
    )
    yield c
    c.transport.close()


def instance(name: str = "vm-1", **changes: Any) -> compute_v1.Instance:
    body: dict[str, Any] = {
        "name": name,
        "machine_type": f"zones/{ZONE}/machineTypes/c3-standard-4",
        "confidential_instance_config": {"confidential_instance_type": "TDX"},
        "scheduling": {"on_host_maintenance": "TERMINATE"},
        "disks": [{"boot": True, "auto_delete": True,
                   "initialize_params": {"source_image": IMAGE, "disk_size_gb": 20}}],
        "network_interfaces": [{"network": "global/networks/default"}],
        "labels": {"dd-cluster": "c1"},
    }
    body.update(changes)
    return compute_v1.Instance(body)


def insert(client: compute_v1.InstancesClient, inst: compute_v1.Instance, *, zone: str = ZONE,
           request_id: str = "") -> compute_v1.Operation:
    request = compute_v1.InsertInstanceRequest(
        project=PROJECT, zone=zone, instance_resource=inst, request_id=request_id or None
    )
    return client.insert_unary(request=request, retry=None)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": "Bad_Name"}, "resource.name"),
        ({"name": "9starts-with-digit"}, "resource.name"),
        ({"machine_type": f"zones/{ZONE}/machineTypes/c3-standard-5"}, "resource.machineType"),
        ({"machine_type": f"zones/{ZONES[1]}/machineTypes/c3-standard-4"}, "resource.machineType"),
        ({"scheduling": {"on_host_maintenance": "MIGRATE"}}, "onHostMaintenance"),
        ({"scheduling": {}}, "onHostMaintenance"),
        ({"machine_type": f"zones/{ZONE}/machineTypes/n2-standard-4"}, "confidentialInstanceType"),
        ({"scheduling": {"on_host_maintenance": "TERMINATE",
                         "max_run_duration": {"seconds": 60}}}, "instanceTerminationAction"),
        ({"labels": {"Bad.Key": "x"}}, "resource.labels"),
    ],
)
def test_insert_refuses_what_gce_refuses(
    changes: dict[str, Any], field: str, client: compute_v1.InstancesClient, fake: FakeCompute
) -> None:
    with pytest.raises(api_exceptions.BadRequest, match=field):
        insert(client, instance(**changes))
    assert fake.instance_names() == []


def test_unknown_image_is_not_found(client: compute_v1.InstancesClient) -> None:
    disks = [{"boot": True, "initialize_params": {
        "source_image": "projects/ubuntu-os-cloud/global/images/family/nope"}}]
    with pytest.raises(api_exceptions.NotFound, match="was not found"):
        insert(client, instance(disks=disks))


def test_tdx_without_a_tdx_capable_image_is_refused(client: compute_v1.InstancesClient) -> None:
    disks = [{"boot": True, "initialize_params": {
        "source_image": "projects/debian-cloud/global/images/family/debian-12"}}]
    with pytest.raises(api_exceptions.BadRequest, match="TDX_CAPABLE"):
        insert(client, instance(disks=disks))


def test_a_duplicate_name_is_a_conflict_but_a_repeated_request_id_is_not(
    client: compute_v1.InstancesClient, fake: FakeCompute
) -> None:
    first = insert(client, instance(), request_id="7f3a2a4e-0000-4000-8000-000000000001")
    again = insert(client, instance(), request_id="7f3a2a4e-0000-4000-8000-000000000001")
    assert again.name == first.name
    with pytest.raises(api_exceptions.Conflict):
        insert(client, instance(), request_id="7f3a2a4e-0000-4000-8000-000000000002")
    assert fake.instance_names() == ["vm-1"]


def test_status_walks_the_timeline_and_operations_finish(
    client: compute_v1.InstancesClient, operations: compute_v1.ZoneOperationsClient
) -> None:
    op = insert(client, instance())
    assert op.status == compute_v1.Operation.Status.RUNNING
    seen = [client.get(project=PROJECT, zone=ZONE, instance="vm-1", retry=None).status
            for _ in range(3)]
    assert seen == ["STAGING", "RUNNING", "RUNNING"]
    done = operations.get(project=PROJECT, zone=ZONE, operation=op.name, retry=None)
    assert done.status == compute_v1.Operation.Status.DONE
    stop = client.stop_unary(project=PROJECT, zone=ZONE, instance="vm-1", retry=None)
    waited = operations.wait(project=PROJECT, zone=ZONE, operation=stop.name, retry=None)
    assert waited.status == compute_v1.Operation.Status.DONE
    assert client.get(project=PROJECT, zone=ZONE, instance="vm-1").status == "TERMINATED"
    delete = client.delete_unary(project=PROJECT, zone=ZONE, instance="vm-1", retry=None)
    operations.wait(project=PROJECT, zone=ZONE, operation=delete.name, retry=None)
    with pytest.raises(api_exceptions.NotFound):
        client.get(project=PROJECT, zone=ZONE, instance="vm-1", retry=None)


def test_zone_exhaustion_arrives_through_the_operation(
    client: compute_v1.InstancesClient, operations: compute_v1.ZoneOperationsClient,
    fake: FakeCompute,
) -> None:
    httpx.post(f"{fake.url}/_fake/faults", json={"kind": "zone_exhausted", "zone": ZONE})
    op = insert(client, instance())
    done = operations.get(project=PROJECT, zone=ZONE, operation=op.name, retry=None)
    assert done.status == compute_v1.Operation.Status.DONE
    assert done.error.errors[0].code == "ZONE_RESOURCE_POOL_EXHAUSTED"
    assert done.http_error_status_code == 503
    assert fake.instance_names() == []
    elsewhere = instance(machine_type=f"zones/{ZONES[1]}/machineTypes/c3-standard-4")
    assert insert(client, elsewhere, zone=ZONES[1]).name  # other zones are fine


def test_lists_filter_by_label_and_page(client: compute_v1.InstancesClient) -> None:
    for n in range(7):
        insert(client, instance(f"vm-{n}", labels={"dd-cluster": "c1" if n < 5 else "c2"}))
    request = compute_v1.ListInstancesRequest(
        project=PROJECT, zone=ZONE, filter='labels.dd-cluster = "c1"', max_results=2
    )
    pager = client.list(request=request, retry=None)
    pages = [[i.name for i in page.items] for page in pager.pages]
    assert pages == [["vm-0", "vm-1"], ["vm-2", "vm-3"], ["vm-4"]]
    aggregated = compute_v1.AggregatedListInstancesRequest(
        project=PROJECT, filter="labels.dd-cluster=c2", max_results=1
    )
    names = [i.name for _, scoped in client.aggregated_list(request=aggregated, retry=None)
             for i in scoped.instances]
    assert names == ["vm-5", "vm-6"]


def test_a_malformed_filter_is_refused(client: compute_v1.InstancesClient) -> None:
    request = compute_v1.ListInstancesRequest(project=PROJECT, zone=ZONE, filter="labels.(")
    with pytest.raises(api_exceptions.BadRequest, match="filter"):
        list(client.list(request=request, retry=None))


def test_http_fault_switches_and_call_counts(
    client: compute_v1.InstancesClient, fake: FakeCompute
) -> None:
    fault = {"kind": "http", "method": "instances.get", "status": 429, "retry_after": 3,
             "times": 1}
    assert httpx.post(f"{fake.url}/_fake/faults", json=fault).status_code == 201
    assert httpx.get(f"{fake.url}/_fake/faults").json()[0]["status"] == 429
    with pytest.raises(api_exceptions.TooManyRequests) as caught:
        client.get(project=PROJECT, zone=ZONE, instance="vm-1", retry=None)
    assert caught.value.response.headers["Retry-After"] == "3"
    with pytest.raises(api_exceptions.NotFound):  # the switch fired once only
        client.get(project=PROJECT, zone=ZONE, instance="vm-1", retry=None)
    assert httpx.get(f"{fake.url}/_fake/calls").json() == {"instances.get": 2}
    httpx.delete(f"{fake.url}/_fake/calls")
    assert httpx.get(f"{fake.url}/_fake/calls").json() == {}
    assert httpx.post(f"{fake.url}/_fake/faults", json={"bogus": 1}).status_code == 400


def test_operations_can_be_purged_after_completion(
    client: compute_v1.InstancesClient, operations: compute_v1.ZoneOperationsClient,
    fake: FakeCompute,
) -> None:
    httpx.post(f"{fake.url}/_fake/faults", json={"kind": "purge_operations"})
    op = insert(client, instance())
    assert operations.get(project=PROJECT, zone=ZONE, operation=op.name, retry=None).status
    with pytest.raises(api_exceptions.NotFound):
        operations.get(project=PROJECT, zone=ZONE, operation=op.name, retry=None)


def test_an_unknown_project_is_not_found(fake: FakeCompute) -> None:
    c = compute_v1.InstancesClient(
        transport="rest", client_options={"api_endpoint": fake.url},
        credentials=AnonymousCredentials(),
    )
    with pytest.raises(api_exceptions.NotFound):
        c.get(project="someone-else", zone=ZONE, instance="vm-1", retry=None)
