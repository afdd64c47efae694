"""The session cookie: Quart's signed cookie session (itsdangerous), configured strictly.

Cookie ``dd_session``: HttpOnly, Secure, SameSite=Lax, no Domain (host-only, so one PR's
host never receives another's), Path=/. It is signed with ``DD_SESSION_SECRET`` (or a
per-process secret), and itsdangerous rejects it past ``max_age_seconds`` after it was
signed, so a stolen or stale cookie has a bounded life; we also store and check the
login time. The cookie is signed, not encrypted: it holds the GitHub *login*, never the
token, so the token is checked once at login and the lifetime bounds a revoked member.
"""

from __future__ import annotations

import time
from collections.abc import MutableMapping
from datetime import timedelta
from typing import Any

from quart import Quart

from ..settings import SessionSettings

__all__ = ["COOKIE_NAME", "configure_sessions", "log_in", "log_out", "logged_in_login"]

COOKIE_NAME = "dd_session"


def configure_sessions(app: Quart, settings: SessionSettings) -> None:
    app.secret_key = settings.secret
    app.config.update(
        SESSION_COOKIE_NAME=COOKIE_NAME,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SECURE=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_DOMAIN=None,
        SESSION_COOKIE_PATH="/",
        PERMANENT_SESSION_LIFETIME=timedelta(seconds=settings.max_age_seconds),
    )


def log_in(session: MutableMapping[str, Any], login: str) -> None:
    """A fresh session for ``login`` (a new CSRF token too: no fixation across the login)."""
    session.clear()
    session["login"] = login
    session["auth_at"] = int(time.time())
    session.permanent = True  # type: ignore[attr-defined]


def log_out(session: MutableMapping[str, Any]) -> None:
    session.clear()


def logged_in_login(session: MutableMapping[str, Any], max_age_seconds: int) -> str | None:
    login = session.get("login")
    auth_at = session.get("auth_at")
    if not isinstance(login, str) or not isinstance(auth_at, int):
        return None
    if time.time() - auth_at > max_age_seconds:
        return None
    return login
