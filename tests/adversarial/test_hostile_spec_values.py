"""Hostile values that the operator must refuse or contain, checked without a cluster.

``parse_spec`` is the operator's second line of defence (an object stored before a CRD
rule existed, or written with validation off, reaches it unfiltered); the names derived
from extreme identities must stay valid for every API that receives them.
"""

from __future__ import annotations

import re

import pytest

from dd_operator.errors import PermanentFailure
from dd_operator.model import parse_spec
from dd_operator.naming import Stamp, gce_labels, instance_name, secret_name

BASE = {"repository": "acme/webapp", "pullRequest": 7, "commitSha": "a" * 40, "owner": "acme"}
DNS_1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
GCE_NAME = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")
GCE_LABEL_VALUE = re.compile(r"[a-z0-9_-]{0,63}")


@pytest.mark.parametrize(
    "name",
    [
        "PYTHONPATH",
        "PYTHONSTARTUP",
        "PYTHONHOME",
        "PYTHONWARNINGS",
        "LD_PRELOAD",
        "LD_LIBRARY_PATH",
        "PATH",
        "HOME",
        "GCONV_PATH",
        "OPENSSL_CONF",
        "SSL_CERT_FILE",
        "SSLKEYLOGFILE",
        "HTTPS_PROXY",
        "http_proxy",  # lowercase: refused by the CRD's name pattern, honoured by httpx
        "DD_GITHUB_API",  # refused by the CRD, but nothing in the operator re-checked it
        "DD_TSM_ROOT",
    ],
)
def test_env_that_steers_the_interpreter_loader_or_trust_is_refused(name: str) -> None:
    spec = {**BASE, "controlPlane": {"env": {name: "/tmp/x"}}}
    with pytest.raises(PermanentFailure) as info:
        parse_spec(spec, domain="preview.test")
    assert info.value.reason == "InvalidSpec"
    assert name in str(info.value)


def test_ordinary_feature_env_with_hostile_values_is_kept_verbatim() -> None:
    values = {
        "FEATURE_X": "on",
        "QUOTES": "a'b\"c`d",
        "SUBST": "$(touch /tmp/pwned) ${HOME} `id`",
        "NEWLINES": "line1\nline2\r\nDD_OWNER=evil",
        "UNICODE": "ünïcødé \u202e \U0001f600",
        "LONG": "x" * 1024,
    }
    spec = parse_spec({**BASE, "controlPlane": {"env": values}}, domain="preview.test")
    assert dict(spec.control_plane.env) == values


@pytest.mark.parametrize("ttl", ["9999999999999999999999999999999d", "99999999999999999999h"])
def test_absurd_ttl_is_a_permanent_condition_not_an_overflow(ttl: str) -> None:
    with pytest.raises(PermanentFailure) as info:
        parse_spec({**BASE, "ttl": ttl}, domain="preview.test")
    assert info.value.reason == "InvalidSpec"


def test_large_but_sane_ttl_parses() -> None:
    # The largest value of every unit the CRD admits, together.
    spec = parse_spec({**BASE, "ttl": "9999d99999h999999m99999999s"}, domain="preview.test")
    assert spec.ttl is not None and spec.ttl.days > 9999


def test_names_derived_from_a_253_char_object_in_a_63_char_namespace_stay_valid() -> None:
    name = ("a" * 62 + ".") * 4 + "b" * 1  # 253 characters, a valid DNS-1123 subdomain
    assert len(name) == 253
    stamp = Stamp("test", "n" * 63, name, "3f0c9a52-8a34-4bcb-9a0e-4c1f4b8f2d10")
    secret = secret_name(stamp)
    assert len(secret) <= 253 and DNS_1123_SUBDOMAIN.fullmatch(secret), secret
    env = parse_spec({**BASE, "pullRequest": 2147483647}, domain="preview.test").env
    vm = instance_name(stamp, env, "a" * 40)
    assert GCE_NAME.fullmatch(vm) and len(vm) <= 63, vm
    for key, value in gce_labels(stamp, env, 2147483647).items():
        assert GCE_LABEL_VALUE.fullmatch(value), (key, value)
