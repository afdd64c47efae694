"""``dd-preview ci`` decisions on GitHub's own example pull_request payloads."""

from __future__ import annotations

from typing import Any

import pytest

from dd_operator.cli.events import (
    APPLY_ACTIONS,
    Apply,
    Delete,
    EventError,
    EventPolicy,
    Ignore,
    Refuse,
    decide,
)
from tests.support.github_payloads import pull_request_example, pull_request_examples

DEFAULT = EventPolicy()


def _as_fork(payload: dict[str, Any], fork: str = "mallory/Hello-World") -> dict[str, Any]:
    payload["pull_request"]["head"]["repo"]["full_name"] = fork
    payload["pull_request"]["head"]["repo"]["fork"] = True
    return payload


def test_the_package_has_every_action_ci_handles() -> None:
    actions = {e["action"] for e in pull_request_examples()}
    assert {"opened", "reopened", "synchronize", "closed", "ready_for_review"} <= actions


@pytest.mark.parametrize("action", ["opened", "reopened", "synchronize", "ready_for_review"])
def test_open_pull_request_events_apply_the_head_commit(action: str) -> None:
    payload = pull_request_example(action)
    decision = decide(payload, DEFAULT)
    assert decision == Apply(
        action=action,
        repository="Codertocat/Hello-World",
        repository_owner="Codertocat",
        pull_request=2,
        commit_sha=payload["pull_request"]["head"]["sha"],
    )


def test_every_real_apply_example_decides_apply() -> None:
    for payload in pull_request_examples():
        if payload["action"] in APPLY_ACTIONS:
            assert isinstance(decide(payload, DEFAULT), Apply), payload["action"]


def test_synchronize_uses_the_head_sha_which_is_the_pushed_after_commit() -> None:
    payload = pull_request_example("synchronize")
    decision = decide(payload, DEFAULT)
    assert isinstance(decision, Apply)
    assert decision.commit_sha == payload["after"]


def test_every_closed_example_deletes() -> None:
    closed = [p for p in pull_request_examples() if p["action"] == "closed"]
    assert closed
    for payload in closed:
        assert decide(payload, DEFAULT) == Delete("closed", "Codertocat/Hello-World", 2)


def test_other_actions_are_ignored_with_a_reason_naming_the_action() -> None:
    for payload in pull_request_examples():
        if payload["action"] in APPLY_ACTIONS | {"closed"}:
            continue
        decision = decide(payload, DEFAULT)
        assert isinstance(decision, Ignore), payload["action"]
        assert repr(payload["action"]) in decision.reason
        assert "Codertocat/Hello-World#2" in decision.reason


def test_converted_to_draft_example_is_a_draft_and_is_ignored() -> None:
    payload = pull_request_example("converted_to_draft")
    assert payload["pull_request"]["draft"] is True
    assert isinstance(decide(payload, DEFAULT), Ignore)


def test_draft_pull_requests_are_ignored_unless_allowed() -> None:
    payload = pull_request_example("opened")
    payload["pull_request"]["draft"] = True
    ignored = decide(payload, DEFAULT)
    assert isinstance(ignored, Ignore)
    assert "draft" in ignored.reason and "--allow-drafts" in ignored.reason
    assert isinstance(decide(payload, EventPolicy(allow_drafts=True)), Apply)


def test_fork_pull_requests_are_refused_unless_allowed() -> None:
    payload = _as_fork(pull_request_example("opened"))
    refused = decide(payload, DEFAULT)
    assert isinstance(refused, Refuse)
    assert "mallory/Hello-World" in refused.reason and "--allow-forks" in refused.reason
    allowed = decide(payload, EventPolicy(allow_forks=True))
    assert isinstance(allowed, Apply)
    assert allowed.repository == "Codertocat/Hello-World", "the PR belongs to the base repository"


def test_a_pull_request_from_a_deleted_fork_is_refused() -> None:
    payload = pull_request_example("synchronize")
    payload["pull_request"]["head"]["repo"] = None
    refused = decide(payload, DEFAULT)
    assert isinstance(refused, Refuse)
    assert "deleted fork" in refused.reason


def test_closing_a_fork_pull_request_still_deletes() -> None:
    payload = _as_fork(pull_request_example("closed"))
    assert isinstance(decide(payload, DEFAULT), Delete)


def test_a_non_pull_request_event_is_an_error() -> None:
    with pytest.raises(EventError, match="pull_request"):
        decide({"ref": "refs/heads/main", "after": "0" * 40}, DEFAULT)


def test_a_short_head_sha_is_an_error() -> None:
    payload = pull_request_example("opened")
    payload["pull_request"]["head"]["sha"] = "ec26c3e"
    with pytest.raises(EventError, match="40-hex"):
        decide(payload, DEFAULT)
