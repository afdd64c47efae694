"""Names and stamps: deterministic, valid for each cloud, and never mistaken for someone else's."""

from __future__ import annotations

import re

from dd_operator.naming import (
    Stamp,
    dns_comment,
    gce_labels,
    insert_request_id,
    instance_name,
    is_ours,
    owner_of,
    tunnel_name,
)

STAMP = Stamp("prod-1", "previews", "pr-95", "3f0c9a52-8a34-4bcb-9a0e-4c1f4b8f2d10")
GCE_NAME = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")


def test_same_identity_gives_same_names_and_request_ids() -> None:
    again = Stamp(*vars(STAMP).values())
    assert instance_name(STAMP, "pr-95", "a" * 40) == instance_name(again, "pr-95", "a" * 40)
    name = instance_name(STAMP, "pr-95", "a" * 40)
    assert insert_request_id(STAMP, name, "us-central1-a", 0) == insert_request_id(again, name, "us-central1-a", 0)
    assert tunnel_name(STAMP) == tunnel_name(again)


def test_a_new_commit_a_new_zone_or_a_new_attempt_change_what_they_should() -> None:
    a = instance_name(STAMP, "pr-95", "a" * 40)
    assert a != instance_name(STAMP, "pr-95", "b" * 40)
    ids = {insert_request_id(STAMP, a, z, n) for z in ("us-central1-a", "us-central1-b") for n in (0, 1)}
    assert len(ids) == 4


def test_recreated_object_with_the_same_name_gets_other_names() -> None:
    reborn = Stamp("prod-1", "previews", "pr-95", "00000000-0000-0000-0000-000000000001")
    assert instance_name(STAMP, "pr-95", "a" * 40) != instance_name(reborn, "pr-95", "a" * 40)
    assert not is_ours(tunnel_name(STAMP), reborn)


def test_instance_names_are_valid_gce_names_even_for_odd_envs() -> None:
    for env in ("pr-95", "Weird_ENV.name", "x" * 40, "---"):
        name = instance_name(STAMP, env, "abcdef0" + "1" * 33)
        assert GCE_NAME.fullmatch(name), name
        assert len(name) <= 63


def test_gce_label_values_are_valid_and_long_ones_stay_distinct() -> None:
    long_ns = Stamp("prod-1", "n" * 63, "a.b.c" + "x" * 200, STAMP.uid)
    labels = gce_labels(long_ns, "pr-95", 95)
    for key, value in labels.items():
        assert re.fullmatch(r"[a-z][a-z0-9_-]{0,62}", key)
        assert re.fullmatch(r"[a-z0-9_-]{0,63}", value), (key, value)
    other = gce_labels(Stamp("prod-1", "n" * 63, "a.b.c" + "x" * 199 + "y", STAMP.uid), "pr-95", 95)
    assert labels["dd-name"] != other["dd-name"]


def test_stamps_parse_back_and_fit_cloudflare_comment_limits() -> None:
    assert owner_of(tunnel_name(STAMP)) == ("prod-1", STAMP.uid)
    comment = dns_comment(Stamp("prod-1", "n" * 63, "m" * 200, STAMP.uid))
    assert len(comment) <= 100
    assert owner_of(comment) == ("prod-1", STAMP.uid)


def test_other_clusters_and_unstamped_objects_are_not_ours() -> None:
    assert not is_ours(tunnel_name(Stamp("prod-2", "previews", "pr-95", STAMP.uid)), STAMP)
    assert not is_ours("pr-95 hand-made record", STAMP)
    assert not is_ours(None, STAMP)
    assert owner_of("ddp.prod-1.not-a-uid") is None
