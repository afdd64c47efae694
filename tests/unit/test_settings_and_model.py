"""Configuration and spec parsing fail with messages that name what is wrong."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dd_operator.conditions import Cond, merge_conditions, status_changes, summarise_ready
from dd_operator.errors import PermanentFailure
from dd_operator.model import parse_duration, parse_spec
from dd_operator.settings import ConfigError, OperatorSettings


def test_defaults_run_the_local_provider_without_any_cloud() -> None:
    s = OperatorSettings.from_env({})
    assert (s.cluster_id, s.edge, s.domain) == ("local", "none", "preview.localhost")
    assert s.gce.machine_type == "c3-standard-4"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DD_CLUSTER_ID": "Prod_1"}, "DD_CLUSTER_ID must be 1-20 chars"),
        ({"DD_EDGE": "akamai"}, "DD_EDGE must be 'none' or 'cloudflare'"),
        ({"DD_EDGE": "cloudflare"}, "DD_CF_ACCOUNT_ID is required when DD_EDGE=cloudflare"),
        ({"DD_HEALTH_CHECKS": "three"}, "DD_HEALTH_CHECKS must be an integer"),
        ({"DD_REQUIRE_TDX": "maybe"}, "DD_REQUIRE_TDX must be true or false"),
    ],
)
def test_bad_settings_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        OperatorSettings.from_env(env)


def test_api_token_never_shows_in_repr() -> None:
    s = OperatorSettings.from_env(
        {"DD_EDGE": "cloudflare", "DD_CF_ACCOUNT_ID": "a", "DD_CF_ZONE_ID": "z", "DD_CF_API_TOKEN": "sekrit-token"}
    )
    assert "sekrit-token" not in repr(s)


def test_spec_defaults_hostname_and_env_from_the_pr() -> None:
    spec = parse_spec(
        {"repository": "acme/app", "pullRequest": 42, "commitSha": "c" * 40, "owner": "acme", "ttl": "1d12h"},
        domain="preview.example.com",
    )
    assert (spec.hostname, spec.env, spec.provider) == ("pr-42.preview.example.com", "pr-42", "local")
    assert spec.ttl == timedelta(days=1, hours=12)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"pullRequest": 1, "commitSha": "c" * 40, "owner": "acme"}, "spec.repository is required"),
        ({"repository": "acme/app", "pullRequest": True, "commitSha": "c" * 40, "owner": "acme"}, "spec.pullRequest is required"),
        ({"repository": "acme/app", "pullRequest": 1, "commitSha": "C" * 40, "owner": "acme"}, "commitSha must be 40 lowercase hex"),
        ({"repository": "acme/app", "pullRequest": 1, "commitSha": "c" * 40, "owner": "acme", "ttl": "-1h"}, "is not a duration"),
    ],
)
def test_spec_that_slipped_past_the_schema_is_a_clear_permanent_error(spec: dict, message: str) -> None:
    with pytest.raises(PermanentFailure, match=message) as info:
        parse_spec(spec, domain="example.com")
    assert info.value.reason == "InvalidSpec"


def test_durations() -> None:
    assert parse_duration("90m") == timedelta(minutes=90)
    with pytest.raises(PermanentFailure):
        parse_duration("")


def test_transition_time_moves_only_when_status_flips() -> None:
    t0, t1 = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)
    first = merge_conditions([], [Cond("VMReady", "False", "Creating", "a")], generation=1, now=t0)
    same = merge_conditions(first, [Cond("VMReady", "False", "Provisioning", "b")], generation=2, now=t1)
    assert same[0]["lastTransitionTime"] == first[0]["lastTransitionTime"]
    assert same[0]["observedGeneration"] == 2
    flipped = merge_conditions(same, [Cond("VMReady", "True", "Running")], generation=2, now=t1)
    assert flipped[0]["lastTransitionTime"] == "2026-01-02T00:00:00Z"


def test_no_status_write_without_a_change() -> None:
    status = {"url": "u", "conditions": [{"type": "Ready"}]}
    assert status_changes(status, dict(status)) == {}
    assert status_changes(status, {"url": "v"}) == {"url": "v"}


def test_ready_summary_names_the_first_blocking_condition() -> None:
    conds = {
        "VMReady": Cond("VMReady", "True", "Running"),
        "TunnelReady": Cond("TunnelReady", "False", "Creating", "creating the tunnel"),
        "DNSReady": Cond("DNSReady", "False", "DNSConflict", "x"),
    }
    ready = summarise_ready(conds)
    assert (ready.status, ready.reason) == ("False", "Creating")
    assert ready.message == "TunnelReady: creating the tunnel"
