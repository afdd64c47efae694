"""Secret Manager ids of a GCE environment's VM secrets, and the setting that points at the API."""

from __future__ import annotations

import re

import pytest

from dd_operator.naming import Stamp, vm_secret_id
from dd_operator.settings import OperatorSettings

STAMP = Stamp("prod", "team-a", "pr-7", "0b9f7a3e-2c1d-4e5f-8a9b-0c1d2e3f4a5b")


def test_ids_are_deterministic_valid_and_one_per_environment_and_kind() -> None:
    tunnel, attest = vm_secret_id(STAMP, "tunnel-token"), vm_secret_id(STAMP, "attest-token")
    assert tunnel == vm_secret_id(STAMP, "tunnel-token") and tunnel != attest
    for secret_id in (tunnel, attest):
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,255}", secret_id)
    recreated = Stamp(STAMP.cluster_id, STAMP.namespace, STAMP.name, "another-uid")
    other_cluster = Stamp("staging", STAMP.namespace, STAMP.name, STAMP.uid)
    assert vm_secret_id(recreated, "tunnel-token") != tunnel
    assert vm_secret_id(other_cluster, "tunnel-token") != tunnel


def test_long_or_odd_object_names_still_give_valid_ids() -> None:
    stamp = Stamp("c", "ns", "x." * 120 + "Y", "u")
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,100}", vm_secret_id(stamp, "attest-token"))


@pytest.mark.parametrize("kind", ["", "Tunnel", "a/b", "x" * 40])
def test_unknown_kind_shapes_are_refused(kind: str) -> None:
    with pytest.raises(ValueError, match="secret kind"):
        vm_secret_id(STAMP, kind)


def test_secret_manager_endpoint_comes_from_the_environment() -> None:
    env = {"DD_SECRET_MANAGER_ENDPOINT": "http://127.0.0.1:9"}
    assert OperatorSettings.from_env(env).gce.secret_manager_endpoint == "http://127.0.0.1:9"
    assert OperatorSettings.from_env({}).gce.secret_manager_endpoint == ""
