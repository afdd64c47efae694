"""Pure helpers of the HTTP edge: safe ``next`` paths, CSRF tokens, nonce decoding."""

from __future__ import annotations

import base64

import pytest

from dd_controlplane.attestation.evidence import BadNonce, decode_nonce
from dd_controlplane.auth.csrf import csrf_token, csrf_valid
from dd_controlplane.auth.redirects import safe_next


@pytest.mark.parametrize("value", ["/", "/api/status", "/x?y=1&z=/w", "/auth/pat?next=%2F"])
def test_same_site_paths_are_kept(value: str) -> None:
    assert safe_next(value) == value


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "https://evil.example",
        "//evil.example",
        "///evil",
        "/\\evil",
        "\\\\evil",
        "javascript:alert(1)",
        "evil",
        "/a\r\nSet-Cookie: x=y",
        "/\x7f",
        "/" + "a" * 3000,
    ],
)
def test_anything_else_becomes_root(value: str | None) -> None:
    assert safe_next(value) == "/"


def test_csrf_token_is_stable_per_session_and_checked_in_constant_time() -> None:
    session: dict[str, object] = {}
    token = csrf_token(session)
    assert csrf_token(session) == token
    assert csrf_valid(session, token)
    assert not csrf_valid(session, token + "x")
    assert not csrf_valid(session, None)
    assert not csrf_valid({}, token)


def test_nonce_accepts_standard_urlsafe_unpadded_and_unencoded_plus() -> None:
    raw = bytes([0xFB, 0xFF, 0xBF] * 6)
    standard = base64.b64encode(raw).decode()
    assert decode_nonce(standard) == raw
    assert decode_nonce(base64.urlsafe_b64encode(raw).decode().rstrip("=")) == raw
    assert decode_nonce(standard.replace("+", " ")) == raw


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "@@@@",
        base64.b64encode(b"7bytes!").decode(),
        base64.b64encode(bytes(257)).decode(),
    ],
)
def test_bad_nonces_are_refused(value: str | None) -> None:
    with pytest.raises(BadNonce):
        decode_nonce(value)
