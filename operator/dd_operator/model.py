"""The PreviewEnvironment API as typed values: our "api/" package.

The CRD schema and its CEL rules refuse malformed objects before they reach us;
``parse_spec`` still checks what it relies on, because an object stored before a
schema change, or written with validation off, must become a clear condition,
never a crash.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from .errors import PermanentFailure
from .naming import default_env, default_hostname

__all__ = [
    "ControlPlaneSpec",
    "Spec",
    "VmOverrides",
    "parse_duration",
    "parse_spec",
    "refused_env_name",
]

KIND = "PreviewEnvironment"
PLURAL = "previewenvironments"
VERSION = "v1alpha1"

_DURATION_RE = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
MAX_TTL = timedelta(days=36500)
"""Longer is a typo (and ``now + ttl`` overflows past year 9999): refused. The CRD's digit
bounds (at most 9999d, 99999h, 999999m, 99999999s) stay under it."""

_ENV_NAME_RE = re.compile(r"[A-Z_][A-Z0-9_]{0,63}")
_RUNTIME_ENV_RE = re.compile(
    r"(?:DD_|PYTHON|LD_|DYLD_|GLIBC_|MALLOC_|GCONV|OPENSSL|SSL|CURL_|REQUESTS_|HYPERCORN"
    r"|QUART|AUTHLIB|LC_|XDG_).*"
    r"|.*_PROXY|PATH|HOME|USER|LOGNAME|SHELL|TMPDIR|TMP|TEMP|IFS|ENV|BASH_ENV|CDPATH|LANG"
    r"|LANGUAGE|LOCPATH|NLSPATH|HOSTALIASES|RES_OPTIONS|LOCALDOMAIN|TZ|TZDIR|NETRC|TERMINFO"
)
"""Names that steer the interpreter, the loader, libc, TLS trust or proxies of the child
(DESIGN 3.1: no field chooses a command, a path or an interpreter), plus ``DD_*``, which
the operator sets. The CRD's CEL rule carries the same list."""


def refused_env_name(name: str) -> str | None:
    """Why ``name`` may not be set through ``spec.controlPlane.env``; None if it may."""
    if not _ENV_NAME_RE.fullmatch(name):
        return "names must be UPPER_SNAKE_CASE, at most 64 characters"
    if name.startswith("DD_"):
        return "DD_* variables are set by the operator; use the spec fields instead"
    if _RUNTIME_ENV_RE.fullmatch(name):
        return "it steers the interpreter, loader, TLS trust or proxies of the control plane"
    return None


def parse_duration(text: str) -> timedelta:
    """``"72h"``, ``"1d12h"``, ``"90m"`` -> timedelta. The CRD pattern is the same grammar."""
    m = _DURATION_RE.match(text.strip())
    if not text.strip() or not m or not any(m.groups()):
        raise PermanentFailure(
            "InvalidSpec", f"spec.ttl {text!r} is not a duration like 72h or 1d12h"
        )
    d, h, mi, s = (int(g) if g else 0 for g in m.groups())
    if d * 86400 + h * 3600 + mi * 60 + s > MAX_TTL.total_seconds():
        raise PermanentFailure("InvalidSpec", f"spec.ttl {text!r} is longer than 36500d")
    return timedelta(days=d, hours=h, minutes=mi, seconds=s)


@dataclass(frozen=True)
class ControlPlaneSpec:
    version: str = ""
    """Empty means the control plane shipped with the operator."""
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class VmOverrides:
    zones: tuple[str, ...] = ()
    machine_type: str = ""
    disk_size_gb: int = 0


@dataclass(frozen=True)
class Spec:
    repository: str
    pull_request: int
    commit_sha: str
    owner: str
    hostname: str
    env: str
    provider: str
    control_plane: ControlPlaneSpec
    vm: VmOverrides
    ttl: timedelta | None
    suspend: bool


def _require(spec: Mapping[str, Any], key: str, kind: type) -> Any:
    value = spec.get(key)
    if not isinstance(value, kind) or isinstance(value, bool) is not (kind is bool):
        raise PermanentFailure(
            "InvalidSpec", f"spec.{key} is required and must be a {kind.__name__}"
        )
    return value


def parse_spec(spec: Mapping[str, Any], *, domain: str) -> Spec:
    """Raw ``spec`` dict -> ``Spec`` with defaults applied (hostname, env)."""
    repository = _require(spec, "repository", str)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}", repository):
        raise PermanentFailure("InvalidSpec", f"spec.repository {repository!r} is not owner/name")
    pr = _require(spec, "pullRequest", int)
    if pr < 1:
        raise PermanentFailure("InvalidSpec", "spec.pullRequest must be 1 or more")
    sha = _require(spec, "commitSha", str)
    if not re.fullmatch(r"[0-9a-f]{40}", sha):
        raise PermanentFailure("InvalidSpec", "spec.commitSha must be 40 lowercase hex characters")
    owner = _require(spec, "owner", str)
    cp = spec.get("controlPlane") or {}
    extra_env = {str(k): str(v) for k, v in (cp.get("env") or {}).items()}
    for key, value in extra_env.items():
        if (why := refused_env_name(key)) is not None:
            raise PermanentFailure("InvalidSpec", f"spec.controlPlane.env.{key} is refused: {why}")
        if "\x00" in value:
            raise PermanentFailure("InvalidSpec", f"spec.controlPlane.env.{key} contains NUL")
    vm = spec.get("vm") or {}
    ttl_raw = spec.get("ttl")
    return Spec(
        repository=repository,
        pull_request=pr,
        commit_sha=sha,
        owner=owner,
        hostname=str(spec.get("hostname") or default_hostname(pr, domain)).lower(),
        env=str(spec.get("env") or default_env(pr)),
        provider=str(spec.get("provider") or "local"),
        control_plane=ControlPlaneSpec(
            version=str(cp.get("version") or ""),
            env=extra_env,
        ),
        vm=VmOverrides(
            zones=tuple(str(z) for z in vm.get("zones") or ()),
            machine_type=str(vm.get("machineType") or ""),
            disk_size_gb=int(vm.get("diskSizeGb") or 0),
        ),
        ttl=parse_duration(str(ttl_raw)) if ttl_raw else None,
        suspend=bool(spec.get("suspend", False)),
    )
