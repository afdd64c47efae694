"""The object ``dd-preview ci`` applies: name, labels and the fields CI owns."""

from __future__ import annotations

import re

from dd_operator.cli.desired import CiOptions, preview_body
from dd_operator.cli.events import Apply
from dd_operator.naming import (
    PULL_REQUEST_LABEL,
    REPOSITORY_LABEL,
    object_name_for_pr,
    repository_label_value,
)

SHA = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"
EVENT = Apply("opened", "Codertocat/Hello-World", "Codertocat", 2, SHA)
LABEL_VALUE = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")


def test_body_names_the_object_pr_n_and_labels_it_with_repository_and_number() -> None:
    body = preview_body(EVENT, CiOptions(namespace="previews"))
    assert body["apiVersion"] == "preview.devopsdefender.com/v1alpha1"
    assert body["kind"] == "PreviewEnvironment"
    assert body["metadata"] == {
        "name": "pr-2",
        "namespace": "previews",
        "labels": {REPOSITORY_LABEL: "Codertocat.Hello-World", PULL_REQUEST_LABEL: "2"},
    }
    assert body["spec"] == {
        "repository": "Codertocat/Hello-World",
        "pullRequest": 2,
        "commitSha": SHA,
        "owner": "Codertocat",
    }


def test_flags_set_owner_ttl_and_provider_and_omitted_flags_leave_fields_out() -> None:
    body = preview_body(EVENT, CiOptions(namespace="p", owner="acme", ttl="1d12h", provider="gce"))
    assert body["spec"]["owner"] == "acme"
    assert body["spec"]["ttl"] == "1d12h"
    assert body["spec"]["provider"] == "gce"
    assert "ttl" not in preview_body(EVENT, CiOptions(namespace="p"))["spec"]


def test_object_name_is_pr_n() -> None:
    assert object_name_for_pr(95) == "pr-95"


def test_repository_label_values_are_always_valid_and_distinct() -> None:
    names = [
        "acme/webapp",
        "acme/web_app_",
        "a/" + "x" * 100,
        "a/" + "x" * 99 + "y",
        "Org-1/.github",
        "o/repo.",
    ]
    values = [repository_label_value(n) for n in names]
    for value in values:
        assert len(value) <= 63 and LABEL_VALUE.fullmatch(value), value
    assert len(set(values)) == len(values)
    assert values[0] == "acme.webapp"
