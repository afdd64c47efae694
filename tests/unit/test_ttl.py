"""TTL math with ``now`` as a parameter: renewal per commit, expiry, keep, one warning per renewal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from dd_operator.conditions import rfc3339
from dd_operator.model import parse_spec
from dd_operator.naming import KEEP_ANNOTATION
from dd_operator.reaper.sweep import Listings, live_object, plan_sweep
from dd_operator.reconcile.plan import expires_at, renewed_at
from dd_operator.settings import ReaperSettings

T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
SETTINGS = ReaperSettings(expiry_warning_seconds=3600, max_deletions=10)


def spec(sha: str = "a" * 40, ttl: str | None = "72h") -> dict[str, Any]:
    out: dict[str, Any] = {"repository": "acme/webapp", "pullRequest": 3, "commitSha": sha,
                           "owner": "acme"}
    if ttl:
        out["ttl"] = ttl
    return out


def test_ttl_renews_on_every_new_commit_and_only_then() -> None:
    first = parse_spec(spec("a" * 40), domain="preview.test")
    renewed = renewed_at(first, {}, T0)
    assert expires_at(first, renewed) == rfc3339(T0 + timedelta(hours=72))
    status = {"shortSha": "a" * 7, "renewedAt": rfc3339(renewed)}
    # the same commit a day later: the clock does not restart
    assert renewed_at(first, status, T0 + timedelta(days=1)) == T0
    # a new commit restarts it
    second = parse_spec(spec("b" * 40), domain="preview.test")
    later = T0 + timedelta(days=2)
    assert renewed_at(second, status, later) == later
    assert expires_at(second, renewed_at(second, status, later)) == rfc3339(
        later + timedelta(hours=72))


def test_no_ttl_means_no_expiry() -> None:
    s = parse_spec(spec(ttl=None), domain="preview.test")
    assert expires_at(s, T0) is None


def body(expires: datetime | None, *, keep: bool = False, deleting: bool = False,
         warned: str = "") -> dict[str, Any]:
    meta: dict[str, Any] = {"namespace": "previews", "name": "pr-3", "uid": "u-1"}
    if keep:
        meta["annotations"] = {KEEP_ANNOTATION: "true"}
    if deleting:
        meta["deletionTimestamp"] = rfc3339(T0)
    status: dict[str, Any] = {}
    if expires:
        status["expiresAt"] = rfc3339(expires)
    if warned:
        status["expiryWarnedFor"] = warned
    return {"metadata": meta, "spec": spec(), "status": status}


def ttl_plan(obj: dict[str, Any], now: datetime) -> tuple[list[str], list[str]]:
    plan = plan_sweep(Listings(), [live_object(obj, "prod")], {}, now, SETTINGS,
                      cluster_id="prod")
    return [e.name for e in plan.expirations], [w.name for w in plan.warnings]


def test_an_expired_object_is_expired_once_now_passes_expires_at() -> None:
    expires = T0 + timedelta(hours=1)
    assert ttl_plan(body(expires), expires - timedelta(seconds=1))[0] == []
    assert ttl_plan(body(expires), expires) == (["pr-3"], [])


def test_the_keep_annotation_pins_an_environment() -> None:
    assert ttl_plan(body(T0 - timedelta(days=3), keep=True), T0) == ([], [])


def test_an_object_already_being_deleted_is_not_expired_again() -> None:
    assert ttl_plan(body(T0 - timedelta(hours=1), deleting=True), T0) == ([], [])


def test_expiring_soon_is_warned_once_per_renewal() -> None:
    expires = T0 + timedelta(minutes=30)
    assert ttl_plan(body(expires), T0 - timedelta(hours=1)) == ([], [])  # too early
    assert ttl_plan(body(expires), T0) == ([], ["pr-3"])
    assert ttl_plan(body(expires, warned=rfc3339(expires)), T0) == ([], [])
    # a new commit moved expiresAt: the old warning does not count for the new expiry
    renewed = T0 + timedelta(hours=72)
    near = renewed - timedelta(minutes=10)
    assert ttl_plan(body(renewed, warned=rfc3339(expires)), near) == ([], ["pr-3"])


def test_expirations_are_independent_of_a_failed_cloud_listing() -> None:
    plan = plan_sweep(Listings(failures=("dns: page 2 failed",)),
                      [live_object(body(T0 - timedelta(minutes=1)), "prod")], {}, T0, SETTINGS,
                      cluster_id="prod")
    assert [e.name for e in plan.expirations] == ["pr-3"]
