"""The real apiserver refuses malformed PreviewEnvironments with messages people understand."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from dd_devcluster.cluster import LocalCluster

pytestmark = pytest.mark.cluster

VALID: dict[str, Any] = {
    "apiVersion": "preview.devopsdefender.com/v1alpha1",
    "kind": "PreviewEnvironment",
    "metadata": {"name": "pr-95"},
    "spec": {
        "repository": "acme/webapp",
        "pullRequest": 95,
        "commitSha": "0123456789abcdef0123456789abcdef01234567",
        "owner": "acme",
    },
}


def with_spec(**changes: Any) -> dict[str, Any]:
    obj = copy.deepcopy(VALID)
    for key, value in changes.items():
        if value is None:
            obj["spec"].pop(key, None)
        else:
            obj["spec"][key] = value
    return obj


def apply(cluster: LocalCluster, namespace: str, obj: dict[str, Any]) -> tuple[int, str]:
    r = cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(obj), check=False)
    return r.returncode, r.stdout + r.stderr


REFUSALS = [
    ("short-sha", with_spec(commitSha="abc123"), "commitSha must be the full 40-character lowercase hex commit SHA"),
    ("uppercase-sha", with_spec(commitSha="0123456789ABCDEF0123456789ABCDEF01234567"), "commitSha must be the full 40-character"),
    ("pr-zero", with_spec(pullRequest=0), "spec.pullRequest: Invalid value: 0: spec.pullRequest in body should be greater than or equal to 1"),
    ("repo-without-slash", with_spec(repository="acme-webapp"), "repository must be owner/name"),
    ("unknown-provider", with_spec(provider="aws"), 'spec.provider: Unsupported value: "aws": supported values: "gce", "local"'),
    ("hostname-not-dns", with_spec(hostname="not a host!"), "hostname must be a lowercase DNS name"),
    ("negative-ttl", with_spec(ttl="-1h"), "ttl must be a positive duration like 72h"),
    ("zero-ttl", with_spec(ttl="0h"), "ttl must be a positive duration like 72h"),
    ("missing-owner", with_spec(owner=None), 'spec.owner: Required value'),
    ("bad-owner", with_spec(owner="-acme"), "owner must be a GitHub user or organisation login"),
    ("dd-env-override", with_spec(controlPlane={"env": {"DD_OWNER": "mallory"}}), "controlPlane.env may not set DD_* variables"),
    ("lowercase-env-name", with_spec(controlPlane={"env": {"path": "x"}}), "controlPlane.env names must be UPPER_SNAKE_CASE"),
    ("non-tdx-machine", with_spec(provider="gce", vm={"machineType": "n2-standard-4"}), "machineType must be a TDX-capable C3 type"),
    ("vm-on-local", with_spec(provider="local", vm={"zones": ["us-central1-a"]}), "vm overrides (zones, machineType, diskSizeGb) only apply to provider gce"),
    ("bad-zone", with_spec(provider="gce", vm={"zones": ["moon-base"]}), "each zone must look like us-central1-a"),
    ("shell-in-version", with_spec(controlPlane={"version": "1.0; rm -rf /"}), "controlPlane.version must be a version like 0.1.0"),
    ("tiny-disk", with_spec(provider="gce", vm={"diskSizeGb": 1}), "should be greater than or equal to 10"),
]


@pytest.mark.parametrize(("case", "obj", "message"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_malformed_object_is_refused_with_a_clear_message(
    cluster: LocalCluster, namespace: str, case: str, obj: dict[str, Any], message: str
) -> None:
    code, output = apply(cluster, namespace, obj)
    assert code != 0, f"{case} was accepted: {output}"
    assert message in output
    assert cluster.kubectl("get", "pe", "-n", namespace, "-o", "name").stdout == ""


def test_valid_object_is_accepted_with_defaults(cluster: LocalCluster, namespace: str) -> None:
    code, output = apply(cluster, namespace, VALID)
    assert code == 0, output
    got = yaml.safe_load(cluster.kubectl("get", "pe", "pr-95", "-n", namespace, "-o", "yaml").stdout)
    assert got["spec"]["provider"] == "local"
    assert got["spec"]["suspend"] is False


IMMUTABLE = [
    ("repository", "acme/other", "repository is immutable"),
    ("pullRequest", 96, "pullRequest is immutable"),
    ("owner", "someone", "owner is immutable"),
    ("provider", "gce", "provider is immutable"),
    ("hostname", "pr-95.example.com", "hostname is immutable"),
]


@pytest.mark.parametrize(("field", "value", "message"), IMMUTABLE, ids=[i[0] for i in IMMUTABLE])
def test_immutable_field_change_is_refused(
    cluster: LocalCluster, namespace: str, field: str, value: Any, message: str
) -> None:
    code, output = apply(cluster, namespace, VALID)
    assert code == 0, output
    code, output = apply(cluster, namespace, with_spec(**{field: value}))
    assert code != 0, f"changing {field} was accepted"
    assert message in output


def test_new_commit_sha_is_an_allowed_change(cluster: LocalCluster, namespace: str) -> None:
    assert apply(cluster, namespace, VALID)[0] == 0
    code, output = apply(cluster, namespace, with_spec(commitSha="f" * 40, ttl="72h", suspend=True))
    assert code == 0, output
