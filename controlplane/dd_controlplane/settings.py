"""Control-plane configuration, read once from ``DD_*`` variables by ``Settings.from_env``.

Nothing else in the package reads ``os.environ``. Settings are small frozen dataclasses
grouped by topic; secrets are ``repr=False`` so a logged ``Settings`` never shows them.
A missing required variable raises ``ConfigError`` whose message names it, and
``__main__`` turns that into a non-zero exit.

Required: ``DD_ENV``, ``DD_OWNER``. Everything else has a default chosen so that the
operator's ``local`` provider can start the process with only a handful of variables.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "AttestationSettings",
    "ConfigError",
    "GitHubSettings",
    "OidcSettings",
    "RegistrationSettings",
    "SessionSettings",
    "Settings",
]

_OWNER_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})")
"""GitHub logins: alphanumerics and single hyphens, at most 39 characters."""


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


def _get(env: Mapping[str, str], key: str, default: str = "") -> str:
    return env.get(key, "").strip() or default


def _required(env: Mapping[str, str], key: str, meaning: str) -> str:
    value = _get(env, key)
    if not value:
        raise ConfigError(f"{key} is required ({meaning})")
    return value


def _int(env: Mapping[str, str], key: str, default: int) -> int:
    raw = _get(env, key)
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{key} must be an integer, got {raw!r}") from None


def _bool(env: Mapping[str, str], key: str, default: bool) -> bool:
    raw = _get(env, key).lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{key} must be true or false, got {raw!r}")


def _key32(key: str, raw: str) -> bytes:
    """A base64 X25519 key: exactly 32 raw bytes."""
    try:
        value = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"{key} must be base64 of 32 raw bytes") from None
    if len(value) != 32:
        raise ConfigError(f"{key} must be base64 of 32 raw bytes, got {len(value)} bytes")
    return value


@dataclass(frozen=True)
class GitHubSettings:
    """Where GitHub lives (GitHub Enterprise and the tests' fake change both URLs)."""

    api_url: str = "https://api.github.com"
    oauth_url: str = "https://github.com"
    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    callback_url: str = ""
    """Empty means ``https://{DD_HOSTNAME}/auth/github/callback``."""
    owner_cache_seconds: int = 60
    """Long enough that one dashboard view (page + polls) costs one GitHub lookup, short
    enough that someone removed from the org loses access within a minute."""

    @property
    def oauth_enabled(self) -> bool:
        return bool(self.client_id and self.client_secret)


@dataclass(frozen=True)
class OidcSettings:
    """GitHub Actions OIDC for ``/cp/attest``; disabled while ``audience`` is empty."""

    issuer: str = "https://token.actions.githubusercontent.com"
    audience: str = ""
    owner_id: int | None = None
    """Numeric ``repository_owner_id`` to pin: a renamed-then-squatted login cannot pass."""
    leeway_seconds: int = 60
    jwks_ttl_seconds: int = 600
    jwks_min_refresh_seconds: float = 30.0
    """An unknown ``kid`` refetches the JWKS at most this often, so junk tokens cannot make
    us hammer the issuer."""


@dataclass(frozen=True)
class SessionSettings:
    secret: bytes = field(repr=False, default=b"")
    ephemeral: bool = True
    """True when no ``DD_SESSION_SECRET`` was given: sessions die with the process."""
    max_age_seconds: int = 8 * 3600
    """A working day; the cookie carries the login only, so this bounds a revoked member."""


@dataclass(frozen=True)
class AttestationSettings:
    tsm_root: Path = Path("/sys/kernel/config/tsm/report")
    dev: bool = False
    """``DD_DEV_ATTESTATION=1``: without configfs-tsm, answer a labelled unsigned stand-in."""
    attest_token: str = field(default="", repr=False)
    """``DD_ATTEST_TOKEN``: the per-environment bearer the operator uses on ``/cp/attest``."""


@dataclass(frozen=True)
class RegistrationSettings:
    static_key: bytes = field(repr=False, default=b"")
    """The responder's X25519 private key (``DD_NOISE_STATIC_KEY``) or a per-process one."""
    agent_keys: frozenset[bytes] = frozenset()
    tofu: bool = False
    handshake_timeout_seconds: float = 10.0
    """A handshake that stops halfway is dropped after this long."""
    max_concurrent_handshakes: int = 64


@dataclass(frozen=True)
class Settings:
    env: str
    owner: str
    hostname: str
    build_sha: str
    bind: str
    port: int
    github: GitHubSettings
    oidc: OidcSettings
    session: SessionSettings
    attestation: AttestationSettings
    registration: RegistrationSettings
    dashboard_refresh_seconds: float = 5.0
    """How often the dashboard polls ``/api/status``: live enough, one request per tab per 5 s."""

    @property
    def oauth_callback_url(self) -> str:
        return self.github.callback_url or f"https://{self.hostname}/auth/github/callback"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        e = os.environ if env is None else env
        owner = _required(e, "DD_OWNER", "the GitHub user or org whose members may log in")
        if not _OWNER_RE.fullmatch(owner):
            raise ConfigError(f"DD_OWNER must be a GitHub login, got {owner!r}")
        env_name = _required(e, "DD_ENV", "the environment label, e.g. pr-42")
        client_id = _get(e, "DD_GITHUB_CLIENT_ID")
        client_secret = _get(e, "DD_GITHUB_CLIENT_SECRET")
        if bool(client_id) != bool(client_secret):
            raise ConfigError("DD_GITHUB_CLIENT_ID and DD_GITHUB_CLIENT_SECRET go together")
        owner_id_raw = _get(e, "DD_OIDC_OWNER_ID")
        if owner_id_raw and not owner_id_raw.isdigit():
            raise ConfigError(f"DD_OIDC_OWNER_ID must be a number, got {owner_id_raw!r}")
        session_secret = _get(e, "DD_SESSION_SECRET")
        if session_secret and len(session_secret) < 32:
            raise ConfigError("DD_SESSION_SECRET must be at least 32 characters")
        static_raw = _get(e, "DD_NOISE_STATIC_KEY")
        agent_keys = frozenset(
            _key32("DD_AGENT_KEYS", part.strip())
            for part in _get(e, "DD_AGENT_KEYS").split(",")
            if part.strip()
        )
        return cls(
            env=env_name,
            owner=owner,
            hostname=_get(e, "DD_HOSTNAME", socket.gethostname()),
            build_sha=_get(e, "DD_BUILD_SHA", "unknown"),
            bind=_get(e, "DD_BIND", "0.0.0.0"),
            port=_int(e, "DD_PORT", 8080),
            github=GitHubSettings(
                api_url=_get(e, "DD_GITHUB_API", "https://api.github.com").rstrip("/"),
                oauth_url=_get(e, "DD_GITHUB_OAUTH_URL", "https://github.com").rstrip("/"),
                client_id=client_id,
                client_secret=client_secret,
                callback_url=_get(e, "DD_GITHUB_CALLBACK_URL"),
                owner_cache_seconds=_int(e, "DD_OWNER_CACHE_SECONDS", 60),
            ),
            oidc=OidcSettings(
                issuer=_get(e, "DD_OIDC_ISSUER", OidcSettings.issuer).rstrip("/"),
                audience=_get(e, "DD_OIDC_AUDIENCE"),
                owner_id=int(owner_id_raw) if owner_id_raw else None,
                jwks_min_refresh_seconds=float(_int(e, "DD_OIDC_JWKS_MIN_REFRESH_SECONDS", 30)),
            ),
            session=SessionSettings(
                secret=session_secret.encode() if session_secret else secrets.token_bytes(32),
                ephemeral=not session_secret,
                max_age_seconds=_int(e, "DD_SESSION_MAX_AGE_SECONDS", 8 * 3600),
            ),
            attestation=AttestationSettings(
                tsm_root=Path(_get(e, "DD_TSM_ROOT", str(AttestationSettings.tsm_root))),
                dev=_bool(e, "DD_DEV_ATTESTATION", False),
                attest_token=_get(e, "DD_ATTEST_TOKEN"),
            ),
            registration=RegistrationSettings(
                static_key=(
                    _key32("DD_NOISE_STATIC_KEY", static_raw)
                    if static_raw
                    else secrets.token_bytes(32)
                ),
                agent_keys=agent_keys,
                tofu=_bool(e, "DD_AGENT_TOFU", False),
                handshake_timeout_seconds=float(_int(e, "DD_HANDSHAKE_TIMEOUT_SECONDS", 10)),
            ),
            dashboard_refresh_seconds=float(_int(e, "DD_DASHBOARD_REFRESH_SECONDS", 5)),
        )
