"""Every external name, request id and ownership stamp, in one place.

Why one module: a retry, a restart or a second replica must derive exactly the
same names as the first attempt (DESIGN 3.2 invariant 1), and the reaper must
recognise exactly what the handlers create (invariant 2). If two modules built
names, they would drift.

Ownership is the pair (cluster id, object uid). The uid changes when an object
is deleted and re-created under the same name, so a stale VM of an old object
is never mistaken for the new one's. Namespace and name ride along for people.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass
from typing import NewType

__all__ = [
    "API_GROUP",
    "FINALIZER",
    "KEEP_ANNOTATION",
    "PULL_REQUEST_LABEL",
    "REPOSITORY_LABEL",
    "InstanceName",
    "Stamp",
    "ci_labels",
    "default_env",
    "default_hostname",
    "dns_comment",
    "gce_labels",
    "github_environment",
    "github_marker",
    "insert_request_id",
    "instance_name",
    "is_instance_of",
    "is_ours",
    "object_name_for_pr",
    "owner_of",
    "repository_label_value",
    "secret_name",
    "tunnel_name",
    "vm_secret_id",
]

API_GROUP = "preview.devopsdefender.com"
FINALIZER = f"{API_GROUP}/teardown"
KEEP_ANNOTATION = f"{API_GROUP}/keep"
REPOSITORY_LABEL = f"{API_GROUP}/repository"
PULL_REQUEST_LABEL = f"{API_GROUP}/pull-request"

InstanceName = NewType("InstanceName", str)

_OWNER_RE = re.compile(r"ddp\.([a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?)\.([0-9a-f-]{36})")
_REQUEST_NS = uuid.UUID("6f1c2f9e-3a52-4c64-9a4c-7d7e4b1f0d55")


@dataclass(frozen=True)
class Stamp:
    """Who owns an external object: this operator's cluster and one PreviewEnvironment."""

    cluster_id: str
    namespace: str
    name: str
    uid: str

    @property
    def owner(self) -> str:
        """The identifying part of every stamp: ``ddp.<cluster>.<uid>``."""
        return f"ddp.{self.cluster_id}.{self.uid}"


def _digest(*parts: str, length: int = 10) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:length]


def _slug(text: str, limit: int) -> str:
    """Lowercase ``[a-z0-9-]``, trimmed so it can sit inside a GCE name or label."""
    s = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return s[:limit].rstrip("-")


def default_env(pull_request: int) -> str:
    """``DD_ENV`` of a preview, kept from the predecessor's contract."""
    return f"pr-{pull_request}"


def default_hostname(pull_request: int, domain: str) -> str:
    return f"pr-{pull_request}.{domain}"


def object_name_for_pr(pull_request: int) -> str:
    """The PreviewEnvironment CI creates for a pull request: ``pr-{N}`` in its namespace."""
    return f"pr-{pull_request}"


def repository_label_value(repository: str) -> str:
    """``owner/name`` as a label value: ``owner.name`` ('/' is not allowed; 63 chars max).

    Values that would still be invalid (too long, or ending in ``.``/``_``/``-``) keep a
    readable prefix and end in a hash of the full name, so they stay unique.
    """
    value = repository.replace("/", ".")
    if len(value) <= 63 and re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?", value):
        return value
    return f"{value[:52].rstrip('._-')}-{_digest(repository)}"


def ci_labels(repository: str, pull_request: int) -> dict[str, str]:
    """Labels CI puts on its PreviewEnvironment, so ``kubectl get pe -l`` finds a repo's PRs."""
    return {
        REPOSITORY_LABEL: repository_label_value(repository),
        PULL_REQUEST_LABEL: str(pull_request),
    }


def github_marker(cluster_id: str, namespace: str, name: str) -> str:
    """Finds the one PR comment and the deployments of an environment on GitHub.

    Keyed by environment (cluster, namespace, name), not by uid: a pull request that is
    closed and reopened gets its old comment edited, never a second one.
    """
    return f"dd-preview:{cluster_id}/{namespace}/{name}"


def github_environment(cluster_id: str, namespace: str, name: str) -> str:
    """The GitHub deployment environment of a PreviewEnvironment."""
    return f"dd-preview/{cluster_id}/{namespace}/{name}"


def instance_name(stamp: Stamp, env: str, commit_sha: str) -> InstanceName:
    """One VM name per (environment, commit): a new commit gets a new VM (blue/green).

    GCE names are ``[a-z]([-a-z0-9]{0,61}[a-z0-9])?``; this stays under 45 chars.
    """
    env_part = _slug(env, 16) or "env"
    return InstanceName(f"dd-{env_part}-{_digest(stamp.owner)}-{commit_sha[:7].lower()}")


def is_instance_of(stamp: Stamp, name: str) -> bool:
    """Could ``instance_name(stamp, ...)`` have produced ``name``, for any env and commit?

    Names read back from status are only hints: one that this environment could not have
    made (another environment's VM, a path) is never looked up, stopped or deleted.
    """
    digest = re.escape(_digest(stamp.owner))
    return re.fullmatch(rf"dd-[a-z0-9-]{{1,16}}-{digest}-[0-9a-f]{{7}}", name) is not None


def insert_request_id(stamp: Stamp, name: InstanceName, zone: str, attempt: int) -> str:
    """GCE's idempotency key: the same attempt in the same zone retries the same request."""
    return str(uuid.uuid5(_REQUEST_NS, f"{stamp.owner}/{name}/{zone}/{attempt}"))


def tunnel_name(stamp: Stamp) -> str:
    """One tunnel per environment; it outlives VM replacements."""
    return f"{stamp.owner}.{stamp.namespace}.{stamp.name}"


def dns_comment(stamp: Stamp) -> str:
    """Cloudflare DNS comments hold 100 chars on the free plan: the owner part comes first."""
    return f"{stamp.owner} {stamp.namespace}/{stamp.name} managed by dd-preview"[:100]


def secret_name(stamp: Stamp) -> str:
    """The Secret (in the object's namespace) holding the tunnel token and attest token."""
    return f"{_slug(stamp.name, 40) or 'pe'}-{_digest(stamp.owner, length=8)}-dd-preview"


def vm_secret_id(stamp: Stamp, kind: str) -> str:
    """Secret Manager id of one of an environment's VM secrets (``tunnel-token``, ``attest-token``).

    One secret per environment and kind, shared by its blue/green VMs; ids are
    ``[A-Za-z0-9_-]{1,255}``, so the owner digest (cluster and uid) keeps them unique.
    """
    if not re.fullmatch(r"[a-z][a-z-]{0,30}", kind):
        raise ValueError(f"secret kind {kind!r} must be lowercase letters and dashes")
    return f"dd-{_slug(stamp.name, 40) or 'pe'}-{_digest(stamp.owner, length=12)}-{kind}"


def gce_labels(stamp: Stamp, env: str, pull_request: int) -> dict[str, str]:
    """GCE label values are ``[a-z0-9_-]{0,63}``: dots become underscores, long ones get a hash."""

    def value(text: str) -> str:
        v = re.sub(r"[^a-z0-9_-]", "_", text.lower())
        return v if len(v) <= 63 else f"{v[:52]}-{_digest(text)}"

    return {
        "dd-preview": "managed",
        "dd-cluster": value(stamp.cluster_id),
        "dd-namespace": value(stamp.namespace),
        "dd-name": value(stamp.name),
        "dd-uid": value(stamp.uid),
        "dd-env": value(env),
        "dd-pr": str(pull_request),
    }


def owner_of(text: str | None) -> tuple[str, str] | None:
    """``(cluster_id, uid)`` from a tunnel name or record comment, or ``None`` if unstamped."""
    if not text:
        return None
    m = _OWNER_RE.search(text)
    return (m.group(1), m.group(2)) if m else None


def is_ours(text: str | None, stamp: Stamp) -> bool:
    """True only for an exact owner match: same cluster and same object uid."""
    return owner_of(text) == (stamp.cluster_id, stamp.uid)
