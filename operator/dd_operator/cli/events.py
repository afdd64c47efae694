"""What a GitHub ``pull_request`` event asks CI to do: ``Apply``, ``Delete`` or ``Ignore``.

Pure: a parsed payload and a policy in, a decision out. No files, no environment,
no cluster, so every rule is table-tested against GitHub's own example payloads.

The rules:

- ``opened``, ``reopened``, ``synchronize`` and ``ready_for_review`` apply the
  environment at the PR's head commit (``ready_for_review`` because a draft that
  becomes ready would otherwise wait for its next push);
- ``closed`` (merged or not) deletes it, whoever opened the PR;
- a draft PR is ignored unless drafts are allowed;
- a PR whose head lives in another repository (a fork, or a fork since deleted) is
  refused unless forks are allowed: its code would run with our cloud credentials'
  consequences and its author may not be trusted;
- every other action is ignored, and the decision says why.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "APPLY_ACTIONS",
    "Apply",
    "Decision",
    "Delete",
    "EventError",
    "EventPolicy",
    "Ignore",
    "Refuse",
    "decide",
]

APPLY_ACTIONS = frozenset({"opened", "reopened", "synchronize", "ready_for_review"})

_SHA_RE = re.compile(r"[0-9a-f]{40}")


class EventError(ValueError):
    """The payload is not a usable ``pull_request`` event; the message says what is missing."""


@dataclass(frozen=True)
class EventPolicy:
    allow_drafts: bool = False
    allow_forks: bool = False


@dataclass(frozen=True)
class Apply:
    action: str
    repository: str
    """The base repository (``owner/name``): the PR belongs to it, even from a fork."""
    repository_owner: str
    pull_request: int
    commit_sha: str


@dataclass(frozen=True)
class Delete:
    action: str
    repository: str
    pull_request: int


@dataclass(frozen=True)
class Ignore:
    """Nothing to do; ``reason`` is printed for the person reading the CI log."""

    reason: str


@dataclass(frozen=True)
class Refuse:
    """The event is understood but policy forbids acting on it (e.g. a fork)."""

    reason: str


Decision = Apply | Delete | Ignore | Refuse


def _field(obj: Mapping[str, Any], path: str, kind: type) -> Any:
    value: Any = obj
    for key in path.split("."):
        if not isinstance(value, Mapping) or key not in value:
            raise EventError(f"the event has no {path}: is it a pull_request event?")
        value = value[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise EventError(f"the event's {path} is not a {kind.__name__}")
    return value


def _head_repository(pr: Mapping[str, Any]) -> str | None:
    """The head branch's repository, or None when the fork it came from was deleted."""
    head_repo = pr.get("head", {}).get("repo")
    if not isinstance(head_repo, Mapping):
        return None
    name = head_repo.get("full_name")
    return name if isinstance(name, str) else None


def decide(payload: Mapping[str, Any], policy: EventPolicy) -> Decision:
    """The one place that turns a ``pull_request`` payload into what CI does."""
    action = _field(payload, "action", str)
    pr = _field(payload, "pull_request", Mapping)
    number = _field(payload, "pull_request.number", int)
    repository = _field(payload, "repository.full_name", str)
    label = f"{repository}#{number}"

    if action == "closed":
        return Delete(action=action, repository=repository, pull_request=number)
    if action not in APPLY_ACTIONS:
        return Ignore(
            f"pull_request action {action!r} on {label} does not change the preview "
            f"(only {', '.join(sorted(APPLY_ACTIONS))} and closed do)"
        )
    if pr.get("state") == "closed":
        return Ignore(f"{label} is closed; its preview is deleted, not updated")
    if pr.get("draft") is True and not policy.allow_drafts:
        return Ignore(
            f"{label} is a draft: no preview until it is marked ready for review "
            "(pass --allow-drafts to preview drafts)"
        )
    head_repository = _head_repository(pr)
    if head_repository != repository and not policy.allow_forks:
        source = head_repository or "a deleted fork"
        return Refuse(
            f"{label} comes from {source}, not {repository}: previews of fork pull requests "
            "are refused (pass --allow-forks if you trust every fork's code)"
        )
    sha = _field(payload, "pull_request.head.sha", str)
    if not _SHA_RE.fullmatch(sha):
        raise EventError(f"the event's pull_request.head.sha {sha!r} is not a 40-hex commit id")
    owner = _field(payload, "repository.owner.login", str)
    return Apply(
        action=action,
        repository=repository,
        repository_owner=owner,
        pull_request=number,
        commit_sha=sha,
    )
