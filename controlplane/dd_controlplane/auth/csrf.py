"""CSRF tokens for our forms: a random token kept in the signed session, echoed by the form.

A cross-site page can make the browser POST, but cannot read our page to learn the
token, and SameSite=Lax keeps the session cookie off cross-site POSTs as a second wall.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import MutableMapping
from typing import Any

__all__ = ["CSRF_FIELD", "csrf_token", "csrf_valid"]

CSRF_FIELD = "csrf_token"
_SESSION_KEY = "csrf"


def csrf_token(session: MutableMapping[str, Any]) -> str:
    """The session's token, minted on first use."""
    token = session.get(_SESSION_KEY)
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        session[_SESSION_KEY] = token
    return token


def csrf_valid(session: MutableMapping[str, Any], submitted: str | None) -> bool:
    expected = session.get(_SESSION_KEY)
    if not isinstance(expected, str) or not expected or not submitted:
        return False
    return hmac.compare_digest(expected.encode(), submitted.encode())
