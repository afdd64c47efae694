"""The VMs' tokens go to Secret Manager, never into instance metadata.

Through the real SDKs (google-cloud-compute and google-cloud-secret-manager) against the
fake Compute API and the fake Secret Manager: what a project viewer can read back from
the instance holds no token, the secrets carry the environment's stamp, the VM's own
fetch script gets the values into root-only files, and teardown leaves no secret.
"""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from google.auth.credentials import AnonymousCredentials
from google.cloud import compute_v1, secretmanager

from dd_operator.errors import PermanentFailure, TransientFailure
from dd_operator.naming import gce_labels, vm_secret_id
from dd_operator.providers.base import VmRequest
from dd_operator.providers.gce import GceVmProvider
from dd_operator.providers.gce_boot import FETCH_SCRIPT, SECRETS_CONFIG

from .conftest import PROJECT, settings_for, vm_request
from .fake import FakeCompute
from .fake_secrets import FakeSecretManager

TUNNEL = "eyJhIjoiZmFrZS10dW5uZWwtdG9rZW4ifQ=="
ATTEST = "attest-bearer-value"


def with_tokens(request: VmRequest, tunnel: str = TUNNEL, attest: str = ATTEST) -> VmRequest:
    return replace(request, boot=replace(request.boot, tunnel_token=tunnel, attest_token=attest))


def instance_as_a_viewer_sees_it(fake: FakeCompute, name: str) -> compute_v1.Instance:
    """``instances.get`` through the real SDK: what ``compute.instances.get`` reveals."""
    client = compute_v1.InstancesClient(
        transport="rest", client_options={"api_endpoint": fake.url},
        credentials=AnonymousCredentials(),
    )
    try:
        found = [i for z in ("us-central1-a", "us-central1-b", "us-central1-c")
                 for i in client.list(project=PROJECT, zone=z) if i.name == name]
    finally:
        client.transport.close()
    assert len(found) == 1
    return found[0]


def user_data(instance: compute_v1.Instance) -> str:
    return next(i.value for i in instance.metadata.items if i.key == "user-data")


async def test_instance_metadata_names_the_secrets_and_holds_no_token(
    fake: FakeCompute, provider: GceVmProvider
) -> None:
    request = with_tokens(vm_request())
    await provider.create_vm(request)
    instance = instance_as_a_viewer_sees_it(fake, request.name)
    whole = compute_v1.Instance.to_json(instance)
    assert TUNNEL not in whole and ATTEST not in whole
    files = {f["path"]: f["content"] for f in yaml.safe_load(user_data(instance))["write_files"]}
    names = [e["name"] for e in json.loads(files[SECRETS_CONFIG])["secrets"]]
    assert names == [
        f"projects/{PROJECT}/secrets/{vm_secret_id(request.stamp, 'attest-token')}",
        f"projects/{PROJECT}/secrets/{vm_secret_id(request.stamp, 'tunnel-token')}",
    ]
    assert [s.email for s in instance.service_accounts] == [
        f"preview-vm@{PROJECT}.iam.gserviceaccount.com"
    ]


async def test_secrets_carry_the_stamp_and_the_values(
    fake: FakeCompute, provider: GceVmProvider
) -> None:
    request = with_tokens(vm_request())
    await provider.create_vm(request)
    sm = fake.secret_manager
    labels = gce_labels(request.stamp, request.boot.env, request.pull_request)
    for kind, value in (("tunnel-token", TUNNEL), ("attest-token", ATTEST)):
        secret_id = vm_secret_id(request.stamp, kind)
        assert sm.labels(secret_id) == labels
        assert sm.versions(secret_id) == [value.encode()]
    assert sm.secrets_labelled("dd-uid", request.stamp.uid) == sorted(
        vm_secret_id(request.stamp, k) for k in ("tunnel-token", "attest-token")
    )


async def test_a_second_vm_of_the_environment_reuses_the_versions_and_a_new_token_adds_one(
    fake: FakeCompute, provider: GceVmProvider
) -> None:
    first = with_tokens(vm_request())
    await provider.create_vm(first)
    sm = fake.secret_manager
    before = sm.calls()
    green = with_tokens(vm_request(stamp=first.stamp))  # blue/green: same env, new commit
    await provider.create_vm(green)
    after = sm.calls()
    assert after.get("versions.access", 0) - before.get("versions.access", 0) == 2
    assert after.get("secrets.addVersion", 0) == before.get("secrets.addVersion", 0)
    rotated = with_tokens(vm_request(stamp=first.stamp), tunnel="a-new-tunnel-token")
    await provider.create_vm(rotated)
    tunnel_id = vm_secret_id(first.stamp, "tunnel-token")
    assert sm.versions(tunnel_id) == [TUNNEL.encode(), b"a-new-tunnel-token"]
    assert sm.versions(vm_secret_id(first.stamp, "attest-token")) == [ATTEST.encode()]


async def test_delete_secrets_leaves_none_and_a_second_delete_is_done(
    fake: FakeCompute, provider: GceVmProvider
) -> None:
    request = with_tokens(vm_request())
    other = with_tokens(vm_request())  # another environment: untouched
    await provider.create_vm(request)
    await provider.create_vm(other)
    await provider.delete_secrets(request.stamp)
    await provider.delete_secrets(request.stamp)
    assert fake.secret_manager.secrets_labelled("dd-uid", request.stamp.uid) == []
    assert len(fake.secret_manager.secrets_labelled("dd-uid", other.stamp.uid)) == 2


async def test_secret_manager_5xx_is_transient_creates_no_vm_and_names_no_token(
    fake: FakeCompute, provider: GceVmProvider
) -> None:
    request = with_tokens(vm_request())
    fake.secret_manager.fail(503, method="secrets.addVersion", times=1)
    with pytest.raises(TransientFailure) as caught:
        await provider.create_vm(request)
    assert "503" in str(caught.value)
    assert TUNNEL not in str(caught.value) and ATTEST not in str(caught.value)
    assert fake.instance_names() == []
    await provider.create_vm(request)  # the retry completes the store, then inserts
    assert fake.instance_names() == [request.name]


async def test_a_failed_delete_is_transient_so_teardown_retries(
    fake: FakeCompute, provider: GceVmProvider
) -> None:
    request = with_tokens(vm_request())
    await provider.create_vm(request)
    fake.secret_manager.fail(500, method="secrets.delete", times=1)
    with pytest.raises(TransientFailure):
        await provider.delete_secrets(request.stamp)
    await provider.delete_secrets(request.stamp)
    assert fake.secret_manager.secret_ids() == []


async def test_tokens_without_a_vm_service_account_are_refused(fake: FakeCompute) -> None:
    provider = GceVmProvider(settings_for(fake, service_account=""))
    try:
        with pytest.raises(PermanentFailure) as caught:
            await provider.create_vm(with_tokens(vm_request()))
    finally:
        await provider.close()
    assert caught.value.reason == "ServiceAccountRequired"
    assert fake.instance_names() == [] and fake.secret_manager.secret_ids() == []


async def test_the_vms_fetch_script_writes_root_only_files_with_the_values(
    fake: FakeCompute, provider: GceVmProvider, tmp_path: Path
) -> None:
    """The rendered ``fetch-secrets.py`` itself, pointed at the fake (as fake_boot does)."""
    request = with_tokens(vm_request(), attest="it's $(reboot)")
    await provider.create_vm(request)
    files = {f["path"]: f["content"]
             for f in yaml.safe_load(user_data(
                 instance_as_a_viewer_sees_it(fake, request.name)))["write_files"]}
    config = json.loads(files[SECRETS_CONFIG])
    sm = fake.secret_manager.url
    config["api"] = sm
    config["token_url"] = f"{sm}/computeMetadata/v1/instance/service-accounts/default/token"
    for entry in config["secrets"]:
        entry["path"] = str(tmp_path / Path(entry["path"]).name)
    (tmp_path / "secrets.json").write_text(json.dumps(config))
    (tmp_path / "fetch.py").write_text(files[FETCH_SCRIPT])
    subprocess.run([sys.executable, str(tmp_path / "fetch.py"), str(tmp_path / "secrets.json")],
                   check=True, timeout=30)
    token_file, attest_file = tmp_path / "tunnel-token", tmp_path / "attest.env"
    assert token_file.read_text() == TUNNEL
    for path in (token_file, attest_file):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    sourced = subprocess.run(["/bin/sh", "-c", '. "$1"; printf %s "$DD_ATTEST_TOKEN"', "sh",
                              str(attest_file)], capture_output=True, text=True, check=True)
    assert sourced.stdout == "it's $(reboot)"
    assert sorted(fake.secret_manager.vm_reads) == sorted(
        vm_secret_id(request.stamp, k) for k in ("tunnel-token", "attest-token")
    )


def test_the_fake_refuses_what_secret_manager_refuses() -> None:
    """A duplicate create is 409 and a missing secret 404, as the real SDK reports them."""
    from google.api_core import exceptions

    with FakeSecretManager(project=PROJECT) as sm:
        client = secretmanager.SecretManagerServiceClient(
            transport="rest", client_options={"api_endpoint": sm.url},
            credentials=AnonymousCredentials(),
        )
        try:
            secret = secretmanager.Secret(replication=secretmanager.Replication(
                automatic=secretmanager.Replication.Automatic()))
            client.create_secret(parent=f"projects/{PROJECT}", secret_id="s1", secret=secret)
            with pytest.raises(exceptions.Conflict):
                client.create_secret(parent=f"projects/{PROJECT}", secret_id="s1", secret=secret)
            with pytest.raises(exceptions.NotFound):
                client.access_secret_version(name=f"projects/{PROJECT}/secrets/s1/versions/latest")
            client.add_secret_version(parent=f"projects/{PROJECT}/secrets/s1",
                                      payload=secretmanager.SecretPayload(data=b"v1"))
            got = client.access_secret_version(
                name=f"projects/{PROJECT}/secrets/s1/versions/latest")
            assert got.payload.data == b"v1"
            client.delete_secret(name=f"projects/{PROJECT}/secrets/s1")
            with pytest.raises(exceptions.NotFound):
                client.delete_secret(name=f"projects/{PROJECT}/secrets/s1")
        finally:
            client.transport.close()
