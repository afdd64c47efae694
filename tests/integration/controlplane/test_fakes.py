"""The fakes refuse what the real services refuse, so tests against them mean something."""

from __future__ import annotations

import base64

import httpx
from joserfc import jwt
from joserfc.jwk import KeySet

from .conftest import OUTSIDER_TOKEN, OWNER_TOKEN, ControlPlane
from .fake_github import FakeGitHub
from .fake_oidc import FakeIssuer


async def test_fake_github_refuses_unknown_tokens_and_paginates(github: FakeGitHub) -> None:
    async with httpx.AsyncClient(base_url=github.base_url) as http:
        assert (
            await http.get("/user", headers={"Authorization": "Bearer nope"})
        ).status_code == 401
        assert (await http.get("/user")).status_code == 401
        auth = {"Authorization": f"Bearer {OUTSIDER_TOKEN}"}
        first = await http.get("/user/orgs", headers=auth)
        assert len(first.json()) == 30  # GitHub's default page size
        assert first.links["next"]["url"].endswith("page=2")
        last = await http.get(first.links["last"]["url"], headers=auth)
        assert "next" not in last.links


async def test_fake_github_oauth_codes_are_single_use_and_need_the_secret(
    github: FakeGitHub,
) -> None:
    github.authorize_as = OWNER_TOKEN
    async with httpx.AsyncClient(base_url=github.base_url) as http:
        granted = await http.get(
            "/login/oauth/authorize",
            params={"client_id": "cid", "redirect_uri": "http://cb/", "state": "s"},
        )
        code = httpx.URL(granted.headers["Location"]).params["code"]
        wrong = {"client_id": "cid", "client_secret": "bad", "code": code}
        assert (await http.post("/login/oauth/access_token", data=wrong)).json()["error"]
        good = {"client_id": "cid", "client_secret": "csecret", "code": code}
        assert (await http.post("/login/oauth/access_token", data=good)).json()[
            "access_token"
        ] == OWNER_TOKEN
        assert (await http.post("/login/oauth/access_token", data=good)).json()[
            "error"
        ] == "bad_verification_code"


async def test_fake_issuer_tokens_verify_against_its_published_keys(issuer: FakeIssuer) -> None:
    async with httpx.AsyncClient() as http:
        config = (await http.get(f"{issuer.base_url}/.well-known/openid-configuration")).json()
        jwks = (await http.get(config["jwks_uri"])).json()
    assert "d" not in jwks["keys"][0]  # public halves only
    token = jwt.decode(issuer.mint(), KeySet.import_key_set(jwks), algorithms=["RS256"])
    assert token.claims["repository_owner"] == "acme"
    assert base64.urlsafe_b64decode(issuer.mint_unsigned().split(".")[0] + "==").startswith(
        b'{"alg": "none"'
    )


async def test_pagination_pointing_at_another_host_is_not_followed(
    cp: ControlPlane, github: FakeGitHub
) -> None:
    """A hostile Link header must not make the control plane send the token elsewhere."""
    github.link_base = "http://attacker.invalid"
    response = await cp.client.get(
        "/api/status",
        headers={"Authorization": f"Bearer {OUTSIDER_TOKEN}", "Accept": "application/json"},
    )
    assert response.status_code == 502
    assert "outside the configured API base" in (await response.get_json())["message"]
