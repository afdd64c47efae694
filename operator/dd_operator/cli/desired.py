"""The PreviewEnvironment body that ``dd-preview ci`` server-side applies for a pull request.

Pure. The object name and labels come from ``naming`` (the one home of names). Only the
fields CI owns are set: with server-side apply, a field left out here is released by
the ``dd-preview`` field manager, so a flag dropped from the workflow is dropped from
the object too, while fields other managers set (a person's ``suspend: true``) stay.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..model import KIND, VERSION
from ..naming import API_GROUP, ci_labels, object_name_for_pr
from .events import Apply

__all__ = ["FIELD_MANAGER", "CiOptions", "preview_body"]

FIELD_MANAGER = "dd-preview"


@dataclass(frozen=True)
class CiOptions:
    namespace: str
    owner: str = ""
    """GitHub user or org allowed to log in; empty means the repository's owner."""
    ttl: str = ""
    provider: str = ""
    """Empty leaves the CRD's default (``local``)."""


def preview_body(event: Apply, options: CiOptions) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "repository": event.repository,
        "pullRequest": event.pull_request,
        "commitSha": event.commit_sha,
        "owner": options.owner or event.repository_owner,
    }
    if options.ttl:
        spec["ttl"] = options.ttl
    if options.provider:
        spec["provider"] = options.provider
    return {
        "apiVersion": f"{API_GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": {
            "name": object_name_for_pr(event.pull_request),
            "namespace": options.namespace,
            "labels": ci_labels(event.repository, event.pull_request),
        },
        "spec": spec,
    }
