"""When ``dd-preview wait`` calls an environment ready, failed, or still pending."""

from __future__ import annotations

from typing import Any

from dd_operator.cli.readiness import assess

SHA = "a" * 40


def pe(
    *,
    generation: int = 2,
    observed: int | None = 2,
    conditions: list[dict[str, Any]] | None = None,
    sha: str = SHA,
    deleting: bool = False,
    url: str = "https://pr-2.preview.example.com",
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "pr-2", "namespace": "p", "generation": generation}
    if deleting:
        meta["deletionTimestamp"] = "2026-12-03T10:00:00Z"
    status: dict[str, Any] = {"url": url, "conditions": conditions or []}
    if observed is not None:
        status["observedGeneration"] = observed
    return {"metadata": meta, "spec": {"commitSha": sha}, "status": status}


def cond(
    type_: str, status: str, reason: str = "", message: str = "", gen: int = 2
) -> dict[str, Any]:
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "observedGeneration": gen,
    }


def test_ready_when_ready_is_true_for_the_current_generation() -> None:
    r = assess(pe(conditions=[cond("Ready", "True", "Serving")]), commit_sha=SHA)
    assert r.state == "ready"
    assert r.url == "https://pr-2.preview.example.com"


def test_a_previous_commits_ready_does_not_count_after_a_push() -> None:
    obj = pe(generation=3, observed=2, conditions=[cond("Ready", "True", "Serving", gen=2)])
    r = assess(obj)
    assert r.state == "pending"
    assert r.reason == "NotObserved"


def test_ready_condition_from_an_older_generation_is_not_ready() -> None:
    obj = pe(generation=3, observed=3, conditions=[cond("Ready", "True", "Serving", gen=2)])
    assert assess(obj).state == "pending"


def test_pending_names_the_blocking_sub_condition_and_its_message() -> None:
    obj = pe(
        conditions=[
            cond("VMReady", "True", "Running"),
            cond("TunnelReady", "False", "Creating", "creating tunnel"),
            cond("Ready", "False", "TunnelReady", "waiting for the tunnel"),
        ]
    )
    r = assess(obj)
    assert (r.state, r.condition, r.reason, r.message) == (
        "pending",
        "TunnelReady",
        "Creating",
        "creating tunnel",
    )


def test_a_permanent_reason_is_a_failure() -> None:
    obj = pe(
        conditions=[
            cond("DNSReady", "False", "DNSConflict", "pr-2.example.com belongs to someone else"),
            cond("Ready", "False", "DNSReady", "blocked"),
        ]
    )
    r = assess(obj)
    assert r.state == "failed"
    assert r.reason == "DNSConflict"


def test_an_object_being_deleted_will_not_become_ready() -> None:
    assert assess(pe(deleting=True, conditions=[cond("Ready", "True")])).state == "deleting"


def test_an_object_now_tracking_another_commit_is_superseded() -> None:
    r = assess(pe(sha="b" * 40, conditions=[cond("Ready", "True")]), commit_sha=SHA)
    assert r.state == "superseded"
    assert "bbbbbbbbbbbb" in r.message


def test_no_status_yet_is_pending_not_observed() -> None:
    r = assess({"metadata": {"generation": 1}, "spec": {"commitSha": SHA}})
    assert (r.state, r.reason) == ("pending", "NotObserved")
