"""The apiserver refuses objects that would steer the control plane's interpreter, and
accepts hostile-but-legal values (which the operator must then carry safely)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from dd_devcluster.cluster import LocalCluster
from tests.support.k8s import SHA_A, preview

pytestmark = pytest.mark.cluster

INTERPRETER_MESSAGE = "controlPlane.env may not set variables that steer the interpreter"


def dry_run(cluster: LocalCluster, namespace: str, obj: dict[str, Any]) -> tuple[int, str]:
    r = cluster.kubectl(
        "create", "--dry-run=server", "-n", namespace, "-f", "-", input=json.dumps(obj), check=False
    )
    return r.returncode, r.stdout + r.stderr


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("PYTHONPATH", INTERPRETER_MESSAGE),
        ("PYTHONSTARTUP", INTERPRETER_MESSAGE),
        ("LD_PRELOAD", INTERPRETER_MESSAGE),
        ("LD_LIBRARY_PATH", INTERPRETER_MESSAGE),
        ("PATH", INTERPRETER_MESSAGE),
        ("HOME", INTERPRETER_MESSAGE),
        ("SSL_CERT_FILE", INTERPRETER_MESSAGE),
        ("OPENSSL_CONF", INTERPRETER_MESSAGE),
        ("HTTPS_PROXY", INTERPRETER_MESSAGE),
        ("GCONV_PATH", INTERPRETER_MESSAGE),
        ("DD_TSM_ROOT", "controlPlane.env may not set DD_* variables"),
    ],
)
def test_interpreter_and_loader_env_is_refused_with_a_clear_message(
    cluster: LocalCluster, namespace: str, name: str, message: str
) -> None:
    obj = preview("pr-1", pr=1, sha=SHA_A, controlPlane={"env": {"FEATURE_X": "on", name: "/tmp/x"}})
    code, output = dry_run(cluster, namespace, obj)
    assert code != 0 and message in output, output


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"controlPlane": {"env": {"FEATURE_X": "a\u0000b"}}}, "may not contain NUL"),
        ({"ttl": "99999999999d"}, "ttl must be a positive duration"),
        ({"ttl": "1" * 31 + "h"}, "ttl must be a positive duration"),
    ],
)
def test_nul_values_and_overflowing_ttls_are_refused(
    cluster: LocalCluster, namespace: str, spec: dict[str, Any], message: str
) -> None:
    code, output = dry_run(cluster, namespace, preview("pr-1", pr=1, sha=SHA_A, **spec))
    assert code != 0 and message in output, output


def test_hostile_but_legal_values_at_every_limit_are_accepted(
    cluster: LocalCluster, namespace: str
) -> None:
    env = {f"FEATURE_{i:02d}" + "X" * 54: "x" * 1024 for i in range(29)}
    env.update({"NEWLINES": "a\nb\r\nDD_OWNER=evil", "SUBST": "$(id) `id` ${HOME} '\"", "UNI": "\u202e\U0001f600"})
    assert len(env) == 32 and all(len(k) <= 64 for k in env)
    label = "a" * 63
    obj = preview(
        (label + ".") * 3 + "a" * 61, pr=2147483647, sha=SHA_A, ttl="9999d",
        hostname=".".join([label] * 3) + "." + "b" * 61, env="e" * 32,
        controlPlane={"env": env},
    )
    assert len(obj["metadata"]["name"]) == 253 and len(obj["spec"]["hostname"]) == 253
    code, output = dry_run(cluster, namespace, obj)
    assert code == 0, output
