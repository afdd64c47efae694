"""Login, sessions, bearer tokens and the owner check, through the Quart test client
against the fake GitHub on loopback."""

from __future__ import annotations

import hashlib
import re
import time

import httpx
import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from quart.json.tag import TaggedJSONSerializer
from quart.testing import QuartClient

from .conftest import (
    MEMBER_TOKEN,
    OUTSIDER_TOKEN,
    OWNER_TOKEN,
    ControlPlane,
    MakeControlPlane,
    SettingsFactory,
)
from .fake_github import FakeGitHub

HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
JSON = {"Accept": "application/json"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **JSON}


async def csrf_from_form(client: QuartClient, next_path: str = "/") -> str:
    response = await client.get("/auth/pat", query_string={"next": next_path}, headers=HTML)
    html = await response.get_data(as_text=True)
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


async def pat_login(client: QuartClient, token: str, next_path: str = "/") -> object:
    csrf = await csrf_from_form(client, next_path)
    return await client.post(
        "/auth/pat", form={"csrf_token": csrf, "pat": token, "next": next_path}, headers=HTML
    )


def session_cookie(response: object) -> str:
    for header in response.headers.getlist("Set-Cookie"):  # type: ignore[attr-defined]
        if header.startswith("dd_session="):
            return str(header)
    raise AssertionError("no dd_session cookie set")


# --- unauthenticated ------------------------------------------------------------------


async def test_health_needs_no_auth(cp: ControlPlane) -> None:
    response = await cp.client.get("/health")
    assert response.status_code == 200
    assert (await response.get_json())["service"] == "dd-controlplane"


async def test_browser_without_session_is_redirected_to_the_pat_form(cp: ControlPlane) -> None:
    response = await cp.client.get("/", headers=HTML)
    assert response.status_code == 303
    assert response.headers["Location"] == "/auth/pat?next=/"


async def test_api_client_without_credentials_gets_401_json(cp: ControlPlane) -> None:
    for path in ("/", "/api/status"):
        response = await cp.client.get(path, headers=JSON)
        assert response.status_code == 401
        assert (await response.get_json())["code"] == "UNAUTHORIZED"
        assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_curl_style_accept_any_gets_401_not_a_redirect(cp: ControlPlane) -> None:
    response = await cp.client.get("/api/status", headers={"Accept": "*/*"})
    assert response.status_code == 401


# --- bearer tokens and the owner rule ----------------------------------------------------


async def test_owner_user_token_is_accepted(cp: ControlPlane) -> None:
    response = await cp.client.get("/api/status", headers=bearer(OWNER_TOKEN))
    assert response.status_code == 200
    assert (await response.get_json())["viewer"] == "acme"


async def test_org_member_found_on_a_later_page_is_accepted(
    cp: ControlPlane, github: FakeGitHub
) -> None:
    response = await cp.client.get("/api/status", headers=bearer(MEMBER_TOKEN))
    assert response.status_code == 200
    assert (await response.get_json())["viewer"] == "alice"
    assert github.calls["/user/orgs"] == 2  # acme is on page 2


async def test_user_of_other_orgs_only_is_forbidden(cp: ControlPlane) -> None:
    """Security: a GitHub user in many orgs (one named like ours) but not in DD_OWNER."""
    response = await cp.client.get("/api/status", headers=bearer(OUTSIDER_TOKEN))
    assert response.status_code == 403
    body = await response.get_json()
    assert body["code"] == "FORBIDDEN"
    assert "mallory" in body["message"]


async def test_unknown_token_is_401_and_never_echoed(cp: ControlPlane) -> None:
    response = await cp.client.get("/api/status", headers=bearer("ghp_not_a_real_token"))
    assert response.status_code == 401
    assert "ghp_not_a_real_token" not in await response.get_data(as_text=True)


async def test_owner_checks_are_cached_briefly(cp: ControlPlane, github: FakeGitHub) -> None:
    for _ in range(5):
        assert (await cp.client.get("/api/status", headers=bearer(MEMBER_TOKEN))).status_code == 200
    assert github.calls["/user"] == 1


async def test_github_outage_is_502_not_a_login_failure(
    cp: ControlPlane, github: FakeGitHub
) -> None:
    github.fail_status = 500
    response = await cp.client.get("/api/status", headers=bearer(OWNER_TOKEN))
    assert response.status_code == 502
    assert (await response.get_json())["code"] == "EXTERNAL_ERROR"


async def test_tokens_never_reach_the_logs(
    cp: ControlPlane, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    await cp.client.get("/api/status", headers=bearer(OUTSIDER_TOKEN))
    await pat_login(cp.client, OUTSIDER_TOKEN)
    await pat_login(cp.client, OWNER_TOKEN)
    assert OUTSIDER_TOKEN not in caplog.text
    assert OWNER_TOKEN not in caplog.text


# --- PAT login and the session cookie -----------------------------------------------------


async def test_pat_login_sets_a_strict_cookie_and_redirects_to_next(cp: ControlPlane) -> None:
    response = await pat_login(cp.client, MEMBER_TOKEN, "/api/status?x=1")
    assert response.status_code == 303
    assert response.headers["Location"] == "/api/status?x=1"
    cookie = session_cookie(response)
    for attribute in ("HttpOnly", "Secure", "SameSite=Lax", "Path=/"):
        assert attribute in cookie
    assert "Domain=" not in cookie  # host-only
    assert "Expires=" in cookie  # bounded lifetime
    assert MEMBER_TOKEN not in cookie  # the cookie holds the login, never the token
    status = await cp.client.get("/api/status", headers=JSON)
    assert status.status_code == 200
    assert (await status.get_json())["viewer"] == "alice"


async def test_pat_login_with_wrong_owner_is_refused(cp: ControlPlane) -> None:
    response = await pat_login(cp.client, OUTSIDER_TOKEN)
    assert response.status_code == 403
    assert "not &#39;acme&#39;" in await response.get_data(as_text=True)
    assert (await cp.client.get("/api/status", headers=JSON)).status_code == 401


async def test_empty_token_is_refused(cp: ControlPlane) -> None:
    response = await pat_login(cp.client, "   ")
    assert response.status_code == 401
    assert "Missing token." in await response.get_data(as_text=True)


async def test_pat_post_without_csrf_token_is_refused(cp: ControlPlane) -> None:
    await cp.client.get("/auth/pat", headers=HTML)  # a session exists, but no token is sent
    response = await cp.client.post("/auth/pat", form={"pat": OWNER_TOKEN, "next": "/"})
    assert response.status_code == 403
    assert (await cp.client.get("/api/status", headers=JSON)).status_code == 401


async def test_pat_post_with_a_forged_csrf_token_is_refused(cp: ControlPlane) -> None:
    await cp.client.get("/auth/pat", headers=HTML)
    response = await cp.client.post(
        "/auth/pat", form={"csrf_token": "guessed", "pat": OWNER_TOKEN, "next": "/"}
    )
    assert response.status_code == 403


@pytest.mark.parametrize(
    "evil",
    [
        "https://evil.example/",
        "//evil.example/x",
        "/\\evil.example",
        "javascript:alert(1)",
        "evil.example",
        "/\x00x",
        "",
    ],
)
async def test_open_redirects_in_next_land_on_root(cp: ControlPlane, evil: str) -> None:
    response = await pat_login(cp.client, OWNER_TOKEN, evil)
    assert response.status_code == 303
    assert response.headers["Location"] == "/"


async def test_next_is_html_escaped_in_the_form(cp: ControlPlane) -> None:
    response = await cp.client.get(
        "/auth/pat", query_string={"next": '/"><script>alert(1)</script>'}, headers=HTML
    )
    html = await response.get_data(as_text=True)
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;" in html


async def test_forged_cookie_is_ignored(cp: ControlPlane) -> None:
    await pat_login(cp.client, OWNER_TOKEN)
    cookie = next(c for c in cp.client.cookie_jar if c.name == "dd_session")  # type: ignore[union-attr]
    payload, stamp, signature = cookie.value.rsplit(".", 2)
    forged_payload = payload.replace(payload[:8], "eyJsb2dp")  # tamper with the signed part
    cp.client.set_cookie("localhost", "dd_session", f"{forged_payload}x.{stamp}.{signature}")
    assert (await cp.client.get("/api/status", headers=JSON)).status_code == 401


def _cookie_signed_at(secret: bytes, data: dict[str, object], signed_at: float) -> str:
    """A session cookie exactly as Quart signs one, but stamped at ``signed_at``."""

    class BackdatedSigner(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(signed_at)

    serializer = URLSafeTimedSerializer(
        secret,
        salt="cookie-session",
        serializer=TaggedJSONSerializer(),
        signer=BackdatedSigner,
        signer_kwargs={"key_derivation": "hmac", "digest_method": hashlib.sha1},
    )
    return str(serializer.dumps(data))


async def test_correctly_signed_cookie_is_accepted(cp: ControlPlane) -> None:
    value = _cookie_signed_at(
        b"s" * 40, {"login": "acme", "auth_at": int(time.time())}, time.time()
    )
    cp.client.set_cookie("localhost", "dd_session", value)
    assert (await cp.client.get("/api/status", headers=JSON)).status_code == 200


async def test_expired_cookie_is_refused(cp: ControlPlane) -> None:
    nine_hours_ago = time.time() - 9 * 3600
    value = _cookie_signed_at(
        b"s" * 40, {"login": "acme", "auth_at": int(nine_hours_ago)}, nine_hours_ago
    )
    cp.client.set_cookie("localhost", "dd_session", value)
    assert (await cp.client.get("/api/status", headers=JSON)).status_code == 401


async def test_cookie_signed_with_another_secret_is_refused(cp: ControlPlane) -> None:
    value = _cookie_signed_at(
        b"t" * 40, {"login": "acme", "auth_at": int(time.time())}, time.time()
    )
    cp.client.set_cookie("localhost", "dd_session", value)
    assert (await cp.client.get("/api/status", headers=JSON)).status_code == 401


async def test_logout_clears_the_session(cp: ControlPlane) -> None:
    await pat_login(cp.client, OWNER_TOKEN)
    assert (await cp.client.get("/api/status", headers=JSON)).status_code == 200
    response = await cp.client.get("/auth/logout", headers=HTML)
    assert response.status_code == 200
    assert session_cookie(response).startswith("dd_session=;")
    assert (await cp.client.get("/api/status", headers=JSON)).status_code == 401


async def test_sessions_survive_a_restart_when_the_secret_is_configured(
    make_settings: SettingsFactory, make_cp: MakeControlPlane
) -> None:
    first = await make_cp(make_settings())
    await pat_login(first.client, OWNER_TOKEN)
    cookie = next(c for c in first.client.cookie_jar if c.name == "dd_session")  # type: ignore[union-attr]
    second = await make_cp(make_settings())
    second.client.set_cookie("localhost", "dd_session", cookie.value)
    assert (await second.client.get("/api/status", headers=JSON)).status_code == 200
    ephemeral = await make_cp(make_settings(DD_SESSION_SECRET=""))
    ephemeral.client.set_cookie("localhost", "dd_session", cookie.value)
    assert (await ephemeral.client.get("/api/status", headers=JSON)).status_code == 401


async def test_security_headers_forbid_framing_and_external_assets(cp: ControlPlane) -> None:
    response = await cp.client.get("/auth/pat", headers=HTML)
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["Referrer-Policy"] == "no-referrer"


# --- OAuth ------------------------------------------------------------------------------------


async def test_oauth_routes_are_404_for_api_clients_when_not_configured(cp: ControlPlane) -> None:
    for path in ("/auth/github/start", "/auth/github/callback"):
        response = await cp.client.get(path, headers=JSON)
        assert response.status_code == 404


async def test_oauth_start_sends_browsers_to_the_pat_form_when_not_configured(
    cp: ControlPlane,
) -> None:
    response = await cp.client.get("/auth/github/start?next=/x", headers=HTML)
    assert response.status_code == 303
    assert response.headers["Location"] == "/auth/pat?next=/x"


@pytest.fixture
async def oauth_cp(make_settings: SettingsFactory, make_cp: MakeControlPlane) -> ControlPlane:
    return await make_cp(
        make_settings(
            DD_GITHUB_CLIENT_ID="cid",
            DD_GITHUB_CLIENT_SECRET="csecret",
            DD_GITHUB_CALLBACK_URL="http://localhost/auth/github/callback",
        )
    )


async def _authorize(client: QuartClient, github: FakeGitHub, next_path: str) -> str:
    """Start the flow and let the fake GitHub 'click Authorize'; returns the callback URL."""
    start = await client.get("/auth/github/start", query_string={"next": next_path}, headers=HTML)
    assert start.status_code == 303
    authorize_url = start.headers["Location"]
    assert authorize_url.startswith(f"{github.base_url}/login/oauth/authorize?")
    async with httpx.AsyncClient() as http:
        granted = await http.get(authorize_url)
    assert granted.status_code == 302
    return str(granted.headers["Location"]).removeprefix("http://localhost")


async def test_oauth_login_flow(oauth_cp: ControlPlane, github: FakeGitHub) -> None:
    github.authorize_as = MEMBER_TOKEN
    unauthenticated = await oauth_cp.client.get("/", headers=HTML)
    assert unauthenticated.headers["Location"] == "/auth/github/start?next=/"
    callback = await _authorize(oauth_cp.client, github, "/api/status")
    request = github.authorize_requests[-1]
    assert request["scope"] == "read:user read:org"
    assert request["client_id"] == "cid"
    assert request["redirect_uri"] == "http://localhost/auth/github/callback"
    response = await oauth_cp.client.get(callback, headers=HTML)
    assert response.status_code == 303
    assert response.headers["Location"] == "/api/status"
    status = await oauth_cp.client.get("/api/status", headers=JSON)
    assert (await status.get_json())["viewer"] == "alice"


async def test_oauth_state_is_single_use(oauth_cp: ControlPlane, github: FakeGitHub) -> None:
    github.authorize_as = OWNER_TOKEN
    callback = await _authorize(oauth_cp.client, github, "/")
    assert (await oauth_cp.client.get(callback, headers=HTML)).status_code == 303
    await oauth_cp.client.get("/auth/logout")
    replay = await oauth_cp.client.get(callback, headers=HTML)
    assert replay.status_code == 401
    assert (await oauth_cp.client.get("/api/status", headers=JSON)).status_code == 401


async def test_oauth_callback_from_another_browser_is_refused(
    oauth_cp: ControlPlane, github: FakeGitHub
) -> None:
    """Login CSRF: an attacker's callback URL (their state) opened in the victim's browser."""
    github.authorize_as = OUTSIDER_TOKEN
    attacker = oauth_cp.app.test_client()
    callback = await _authorize(attacker, github, "/")
    victim = oauth_cp.client
    assert (await victim.get(callback, headers=HTML)).status_code == 401


async def test_oauth_user_who_is_not_an_owner_is_refused(
    oauth_cp: ControlPlane, github: FakeGitHub
) -> None:
    github.authorize_as = OUTSIDER_TOKEN
    callback = await _authorize(oauth_cp.client, github, "/")
    assert (await oauth_cp.client.get(callback, headers=HTML)).status_code == 403
    assert (await oauth_cp.client.get("/api/status", headers=JSON)).status_code == 401


async def test_oauth_bad_code_is_refused(oauth_cp: ControlPlane, github: FakeGitHub) -> None:
    github.authorize_as = OWNER_TOKEN
    callback = await _authorize(oauth_cp.client, github, "/")
    tampered = re.sub(r"code=[0-9a-f]+", "code=deadbeef", callback)
    assert (await oauth_cp.client.get(tampered, headers=HTML)).status_code == 401
