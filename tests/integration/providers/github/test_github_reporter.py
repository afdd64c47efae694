"""The PR comment and deployment statuses, through httpx against the fake GitHub."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from dd_operator.errors import PermanentFailure, TransientFailure
from dd_operator.providers.base import PreviewReport
from dd_operator.providers.github import GitHubReporter, render_comment
from dd_operator.settings import GitHubSettings

from .fake import FakeGitHub

REPO = "Codertocat/Hello-World"
SHA1 = "f95f852bd8fca8fcc58a9a2d6c842781e32a215e"
SHA2 = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"
ENVIRONMENT = "dd-preview/prod-1/previews/pr-2"
MARKER = "<!-- dd-preview:prod-1/previews/pr-2 "

STARTING = PreviewReport(
    repository=REPO,
    pull_request=2,
    commit_sha=SHA1,
    namespace="previews",
    name="pr-2",
    url="",
    ready=False,
    reason="VMReady",
    message="creating VM dd-pr-2-1a2b3c4d5e-f95f852",
    expires_at=datetime(2026, 12, 6, 9, 0, tzinfo=UTC),
    uid="3f0c9a52-8a34-4bcb-9a0e-4c1f4b8f2d10",
)
READY = replace(
    STARTING, url="https://pr-2.preview.example.com", ready=True, reason="Serving", message=""
)
PUSHED = replace(
    STARTING,
    commit_sha=SHA2,
    url="https://pr-2.preview.example.com",
    reason="Attested",
    message="waiting for the attestation quote",
)
FAILED = replace(
    PUSHED,
    failed=True,
    reason="DNSConflict",
    message="pr-2.preview.example.com is a CNAME owned by someone else",
)
DELETED = replace(FAILED, deleted=True, failed=False)


def our_comments(fake: FakeGitHub) -> list[str]:
    return [c["body"] for c in fake.comments_on(REPO, 2) if c["body"].startswith(MARKER)]


async def test_one_comment_edited_in_place_through_every_state(
    fake_github: FakeGitHub, reporter: GitHubReporter
) -> None:
    for report in (STARTING, READY, PUSHED, FAILED, DELETED):
        await reporter.report(report)
        bodies = our_comments(fake_github)
        assert bodies == [render_comment("prod-1", report)], report
    assert [m for m, p in fake_github.writes() if p.endswith("/comments")] == ["POST"]


async def test_comment_text_per_state(fake_github: FakeGitHub, reporter: GitHubReporter) -> None:
    await reporter.report(STARTING)
    (body,) = our_comments(fake_github)
    assert body.startswith(f"{MARKER}owner=ddp.prod-1.3f0c9a52-8a34-4bcb-9a0e-4c1f4b8f2d10 -->")
    assert "### Preview starting for Codertocat/Hello-World#2" in body
    assert "| Commit | `f95f852bd8fc` |" in body
    assert "Waiting for VMReady: creating VM" in body
    assert "| Expires | 2026-12-06 09:00 UTC |" in body
    await reporter.report(READY)
    (body,) = our_comments(fake_github)
    assert "### Preview ready" in body and "| URL | https://pr-2.preview.example.com |" in body
    assert "https://pr-2.preview.example.com/auth/pat" in body
    await reporter.report(FAILED)
    (body,) = our_comments(fake_github)
    assert "### Preview failed" in body and "Failed: DNSConflict: pr-2.preview" in body
    assert "kubectl describe pe -n previews pr-2" in body
    await reporter.report(DELETED)
    (body,) = our_comments(fake_github)
    assert "### Preview removed" in body and "https://pr-2" not in body


async def test_deployment_statuses_follow_the_environment(
    fake_github: FakeGitHub, reporter: GitHubReporter
) -> None:
    await reporter.report(STARTING)
    (first,) = fake_github.deployments.values()
    assert (first["sha"], first["environment"], first["transient_environment"]) == (
        SHA1,
        ENVIRONMENT,
        True,
    )
    assert fake_github.latest_state(first["id"]) == "in_progress"
    await reporter.report(READY)
    assert fake_github.statuses[first["id"]][0]["state"] == "success"
    assert fake_github.statuses[first["id"]][0]["environment_url"] == READY.url

    await reporter.report(PUSHED)
    second = max(fake_github.deployments.values(), key=lambda d: d["id"])
    assert second["sha"] == SHA2 and fake_github.latest_state(second["id"]) == "in_progress"
    await reporter.report(FAILED)
    assert fake_github.latest_state(second["id"]) == "failure"

    await reporter.report(DELETED)
    assert {fake_github.latest_state(d) for d in fake_github.deployments} == {"inactive"}


async def test_repeating_a_report_writes_nothing(
    fake_github: FakeGitHub, reporter: GitHubReporter
) -> None:
    await reporter.report(READY)
    before = len(fake_github.writes())
    await reporter.report(READY)
    assert len(fake_github.writes()) == before


async def test_finds_its_comment_on_a_later_page_after_a_restart(
    fake_github: FakeGitHub, reporter: GitHubReporter
) -> None:
    for i in range(230):
        fake_github.add_comment(REPO, 2, f"comment {i}")
    await reporter.report(STARTING)
    for i in range(40):
        fake_github.add_comment(REPO, 2, f"later {i}")
    restarted = GitHubReporter(
        GitHubSettings(token=fake_github.token, api_url=fake_github.url), cluster_id="prod-1"
    )
    try:
        await restarted.report(READY)
    finally:
        await restarted.close()
    assert our_comments(fake_github) == [render_comment("prod-1", READY)]
    pages = [p for m, p in fake_github.requests if m == "GET" and p.endswith("/2/comments")]
    assert len(pages) >= 6, "every page of 100 was read, twice"


async def test_a_racing_duplicate_is_removed_and_the_oldest_kept(
    fake_github: FakeGitHub, reporter: GitHubReporter
) -> None:
    await reporter.report(STARTING)
    oldest = fake_github.comments_on(REPO, 2)[0]["id"]
    dup = fake_github.add_comment(
        REPO, 2, render_comment("prod-1", STARTING), login=fake_github.login
    )
    await reporter.report(READY)
    remaining = fake_github.comments_on(REPO, 2)
    assert [c["id"] for c in remaining] == [oldest]
    assert dup["id"] not in fake_github.comments


async def test_someone_quoting_the_marker_is_left_alone(
    fake_github: FakeGitHub, reporter: GitHubReporter
) -> None:
    quoted = fake_github.add_comment(REPO, 2, render_comment("prod-1", READY), login="mallory")
    await reporter.report(STARTING)
    await reporter.report(READY)
    assert fake_github.comments[quoted["id"]]["body"] == render_comment("prod-1", READY)
    ours = [c for c in fake_github.comments_on(REPO, 2) if c["user"]["login"] == "dd-preview-bot"]
    assert len(ours) == 1


async def test_a_github_app_token_without_user_access_matches_bot_comments(
    fake_github: FakeGitHub, reporter: GitHubReporter
) -> None:
    fake_github.app_token = True
    await reporter.report(STARTING)
    await reporter.report(READY)
    (comment,) = fake_github.comments_on(REPO, 2)
    assert comment["user"] == {"login": "dd-preview[bot]", "type": "Bot"}
    assert comment["body"] == render_comment("prod-1", READY)


async def test_another_cluster_keeps_its_own_comment(
    fake_github: FakeGitHub, reporter: GitHubReporter
) -> None:
    other = GitHubReporter(
        GitHubSettings(token=fake_github.token, api_url=fake_github.url), cluster_id="staging"
    )
    try:
        await reporter.report(READY)
        await other.report(STARTING)
    finally:
        await other.close()
    assert len(fake_github.comments_on(REPO, 2)) == 2


async def test_rate_limits_and_server_errors_are_transient_with_retry_after(
    fake_github: FakeGitHub, reporter: GitHubReporter
) -> None:
    fake_github.fail_next(429, retry_after="7")
    with pytest.raises(TransientFailure) as exc:
        await reporter.report(READY)
    assert exc.value.retry_after == 7.0
    fake_github.fail_next(403, retry_after="30", method="POST")
    with pytest.raises(TransientFailure) as exc:
        await reporter.report(READY)
    assert exc.value.retry_after == 30.0
    fake_github.fail_next(502)
    with pytest.raises(TransientFailure):
        await reporter.report(READY)
    await reporter.report(READY)
    assert our_comments(fake_github) == [render_comment("prod-1", READY)]


async def test_bad_credentials_are_permanent_and_the_token_stays_secret(
    fake_github: FakeGitHub,
) -> None:
    wrong = GitHubReporter(
        GitHubSettings(token="ghp_wrong_secret_value", api_url=fake_github.url), cluster_id="prod-1"
    )
    try:
        with pytest.raises(PermanentFailure) as exc:
            await wrong.report(READY)
    finally:
        await wrong.close()
    assert "401" in str(exc.value) and "Bad credentials" in str(exc.value)
    assert "ghp_wrong_secret_value" not in str(exc.value)
    assert "ghp_wrong_secret_value" not in repr(GitHubSettings(token="ghp_wrong_secret_value"))


async def test_unreachable_github_is_transient() -> None:
    from dd_devcluster.cluster import free_port

    r = GitHubReporter(
        GitHubSettings(token="t", api_url=f"http://127.0.0.1:{free_port()}"), cluster_id="prod-1"
    )
    try:
        with pytest.raises(TransientFailure, match="ConnectError"):
            await r.report(READY)
    finally:
        await r.close()


async def test_expiring_soon_edits_the_comment_with_how_to_keep_it(
    fake_github: FakeGitHub, reporter: GitHubReporter
) -> None:
    await reporter.report(READY)
    await reporter.report(replace(READY, expiring_soon=True))
    (body,) = our_comments(fake_github)
    assert "### Preview expiring soon" in body
    assert "deleted at 2026-12-06 09:00 UTC" in body
    assert "preview.devopsdefender.com/keep=true" in body
    assert render_comment("prod-1", READY) != body
