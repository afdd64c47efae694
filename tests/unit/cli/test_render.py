"""What ``dd-preview get``, ``describe`` and ``wait`` print."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from dd_operator.cli.readiness import Readiness
from dd_operator.cli.render import actions_annotation, age, describe, table, to_json, wait_line

NOW = datetime(2026, 12, 3, 12, 0, 0, tzinfo=UTC)
OBJ = {
    "metadata": {
        "name": "pr-2",
        "namespace": "previews",
        "generation": 2,
        "creationTimestamp": "2026-12-03T09:00:00Z",
    },
    "spec": {
        "repository": "Codertocat/Hello-World",
        "pullRequest": 2,
        "commitSha": "ec26c3e57ca3a959ca5aad62de7213c562f8c821",
        "owner": "Codertocat",
        "ttl": "72h",
    },
    "status": {
        "observedGeneration": 2,
        "url": "https://pr-2.preview.example.com",
        "expiresAt": "2026-12-06T09:00:00Z",
        "vm": {
            "name": "dd-pr-2-abc-ec26c3e",
            "zone": "us-central1-a",
            "status": "RUNNING",
            "build": "ec26c3e57ca3",
            "mrtd": "00ff",
        },
        "conditions": [
            {
                "type": "VMReady",
                "status": "True",
                "reason": "Running",
                "message": "",
                "lastTransitionTime": "2026-12-03T11:50:00Z",
            },
            {
                "type": "Ready",
                "status": "False",
                "reason": "Attested",
                "message": "waiting for the attestation quote",
                "lastTransitionTime": "2026-12-03T11:59:30Z",
            },
        ],
    },
}


def test_age_reads_like_kubectl() -> None:
    assert age("2026-12-03T11:59:30Z", NOW) == "30s"
    assert age("2026-12-03T11:48:00Z", NOW) == "12m"
    assert age("2026-12-03T07:00:00Z", NOW) == "5h"
    assert age("2026-11-30T12:00:00Z", NOW) == "3d"
    assert age(None, NOW) == "<unknown>"


def test_table_has_the_printer_columns() -> None:
    lines = table([OBJ], NOW).splitlines()
    assert lines[0].split() == ["NAME", "PR", "SHA", "READY", "REASON", "URL", "EXPIRES", "AGE"]
    assert lines[1].split() == [
        "pr-2",
        "2",
        "ec26c3e",
        "False",
        "Attested",
        "https://pr-2.preview.example.com",
        "2026-12-06",
        "09:00",
        "UTC",
        "3h",
    ]


def test_empty_table_says_so() -> None:
    assert table([], NOW) == "No PreviewEnvironments found."


def test_describe_shows_spec_vm_conditions_and_events() -> None:
    events = [
        {
            "type": "Warning",
            "reason": "ZoneExhausted",
            "message": "us-central1-a exhausted",
            "lastTimestamp": "2026-12-03T11:55:00Z",
        }
    ]
    text = describe(OBJ, events, NOW)
    assert "Repository:    Codertocat/Hello-World" in text
    assert "Commit:        ec26c3e57ca3a959ca5aad62de7213c562f8c821" in text
    assert "dd-pr-2-abc-ec26c3e in us-central1-a (RUNNING)" in text
    assert "waiting for the attestation quote" in text
    assert "ZoneExhausted" in text and "5m" in text


def test_describe_without_status_explains_it() -> None:
    text = describe({"metadata": {"name": "pr-3"}, "spec": {}}, [], NOW)
    assert "none yet (has the operator seen this object?)" in text
    assert "Events:\n  none" in text


def test_json_output_round_trips() -> None:
    assert json.loads(to_json(OBJ)) == OBJ


def test_wait_lines_say_what_happened() -> None:
    ready = Readiness("ready", url="https://pr-2.x")
    assert wait_line("p", "pr-2", ready) == "previewenvironment p/pr-2 is ready at https://pr-2.x"
    blocked = Readiness(
        "pending", condition="VMReady", reason="ZoneExhausted", message="all zones full"
    )
    assert wait_line("p", "pr-2", blocked) == (
        "previewenvironment p/pr-2 is not ready; blocked on VMReady: ZoneExhausted: all zones full"
    )
    failed = Readiness("failed", condition="DNSReady", reason="DNSConflict", message="taken")
    assert "failed and will not recover" in wait_line("p", "pr-2", failed)


def test_actions_annotation_escapes_newlines_and_title_separators() -> None:
    line = actions_annotation("error", "a: b, c", "line 1\nline 2 100%")
    assert line == "::error title=a%3A b%2C c::line 1%0Aline 2 100%25"
