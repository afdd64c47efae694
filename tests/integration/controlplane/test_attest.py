"""``/cp/attest``: who may ask (OIDC or DD_ATTEST_TOKEN) and what comes back
(real quote via the configfs-tsm fake, the dev stand-in, or "not a TDX guest")."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from dd_controlplane.attestation.quote import parse_quote
from dd_controlplane.errors import QuoteFormatError
from tests.unit.controlplane.quote_samples import REAL_V4_MRTD

from .conftest import ATTEST_TOKEN, OWNER_TOKEN, ControlPlane, MakeControlPlane, SettingsFactory
from .fake_oidc import FakeIssuer
from .fake_tsm import FakeTsm

NONCE = base64.b64encode(b"sixteen byte nonce").decode()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Accept": "application/json"}


async def attest(
    cp: ControlPlane, token: str | None, nonce: str | None = NONCE
) -> tuple[int, dict]:
    query = {"nonce": nonce} if nonce is not None else {}
    headers = bearer(token) if token else {"Accept": "application/json"}
    response = await cp.client.get("/cp/attest", query_string=query, headers=headers)
    return response.status_code, await response.get_json()


@pytest.fixture
async def tdx_cp(
    make_settings: SettingsFactory, make_cp: MakeControlPlane, tsm: FakeTsm
) -> ControlPlane:
    return await make_cp(make_settings(DD_TSM_ROOT=str(tsm.root)))


# --- who may ask ------------------------------------------------------------------------------


async def test_no_bearer_is_401(tdx_cp: ControlPlane) -> None:
    status, body = await attest(tdx_cp, None)
    assert status == 401
    assert "OIDC" in body["message"]


async def test_a_github_pat_or_a_browser_session_is_not_enough(tdx_cp: ControlPlane) -> None:
    status, _ = await attest(tdx_cp, OWNER_TOKEN)
    assert status == 401


async def test_attest_token_returns_a_real_quote_bound_to_the_nonce(
    tdx_cp: ControlPlane, tsm: FakeTsm
) -> None:
    status, body = await attest(tdx_cp, ATTEST_TOKEN)
    assert status == 200, body
    assert body["dev"] is False
    assert body["tee"] == body["tee_type"] == "tdx"
    assert body["version"] == 4
    assert body["mrtd"] == REAL_V4_MRTD
    expected = hashlib.sha512(b"sixteen byte nonce").hexdigest()
    assert body["report_data"] == expected
    quote = parse_quote(base64.b64decode(body["quote_b64"]))
    assert quote.report_data.hex() == expected
    assert {"rtmr0", "rtmr1", "rtmr2", "rtmr3"} <= body.keys()
    assert tsm.quotes_served == 1
    assert tsm.entries_left() == []  # the report entry was removed


async def test_a_wrong_attest_token_is_401(tdx_cp: ControlPlane) -> None:
    status, _ = await attest(tdx_cp, ATTEST_TOKEN + "x")
    assert status == 401


async def test_valid_actions_oidc_token_is_accepted(
    tdx_cp: ControlPlane, issuer: FakeIssuer
) -> None:
    status, body = await attest(tdx_cp, issuer.mint())
    assert status == 200, body
    assert body["mrtd"] == REAL_V4_MRTD


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        ({"exp": 1_000_000, "iat": 999_000, "nbf": 999_000}, "expired"),
        ({"aud": "someone-else"}, "aud"),
        ({"iss": "https://token.actions.githubusercontent.com"}, "iss"),
        ({"repository_owner": "acme-evil"}, "owner"),
        ({"repository_owner_id": "1"}, "repository_owner_id"),
        ({"repository_owner": None}, "missing"),
    ],
    ids=[
        "expired",
        "wrong-audience",
        "wrong-issuer",
        "wrong-owner",
        "wrong-owner-id",
        "no-owner-claim",
    ],
)
async def test_oidc_tokens_with_bad_claims_are_refused_with_the_reason(
    tdx_cp: ControlPlane, issuer: FakeIssuer, claims: dict, message: str
) -> None:
    status, body = await attest(tdx_cp, issuer.mint(**claims))
    assert status == 401
    assert message in body["message"]


async def test_expired_token_is_explained_as_expired(
    tdx_cp: ControlPlane, issuer: FakeIssuer
) -> None:
    status, body = await attest(tdx_cp, issuer.mint(exp=1_000_000, iat=999_000, nbf=999_000))
    assert (status, body["message"]) == (401, "OIDC token expired")


async def test_alg_none_token_is_refused(tdx_cp: ControlPlane, issuer: FakeIssuer) -> None:
    status, body = await attest(tdx_cp, issuer.mint_unsigned())
    assert status == 401
    assert "'none'" in body["message"]


async def test_hs256_token_keyed_with_the_public_key_is_refused(
    tdx_cp: ControlPlane, issuer: FakeIssuer
) -> None:
    """Algorithm confusion: HMAC 'signed' with the issuer's public key."""
    public_pem = issuer.keys[-1].as_pem(private=False)

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = ".".join(
        [
            b64(json.dumps({"alg": "HS256", "kid": issuer.keys[-1].kid}).encode()),
            b64(json.dumps(issuer.claims()).encode()),
        ]
    )
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    token = f"{signing_input}.{b64(mac)}"
    status, body = await attest(tdx_cp, token)
    assert status == 401
    assert "HS256" in body["message"]


async def test_token_signed_by_an_unpublished_key_is_refused(
    tdx_cp: ControlPlane, issuer: FakeIssuer
) -> None:
    from .fake_oidc import pooled_key

    stranger = pooled_key(9)
    token = issuer.mint(key=stranger)
    status, body = await attest(tdx_cp, token)
    assert status == 401
    assert "does not publish" in body["message"]


async def test_tampered_payload_fails_the_signature(
    tdx_cp: ControlPlane, issuer: FakeIssuer
) -> None:
    header, payload, signature = issuer.mint().split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["repository"] = "acme/other"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    status, body = await attest(tdx_cp, f"{header}.{forged}.{signature}")
    assert status == 401
    assert "signature" in body["message"]


async def test_jwks_is_cached_and_refetched_when_the_issuer_rotates(
    tdx_cp: ControlPlane, issuer: FakeIssuer
) -> None:
    for _ in range(3):
        assert (await attest(tdx_cp, issuer.mint()))[0] == 200
    assert issuer.jwks_fetches == 1
    issuer.rotate()
    status, body = await attest(tdx_cp, issuer.mint())
    assert status == 200, body
    assert issuer.jwks_fetches == 2


async def test_oidc_disabled_without_audience(
    make_settings: SettingsFactory, make_cp: MakeControlPlane, issuer: FakeIssuer
) -> None:
    cp = await make_cp(make_settings(DD_OIDC_AUDIENCE=""))
    status, body = await attest(cp, issuer.mint())
    assert status == 401
    assert "DD_OIDC_AUDIENCE" in body["message"]


# --- nonce and the machine it runs on ------------------------------------------------------------


@pytest.mark.parametrize("nonce", [None, "", "!!!", base64.b64encode(b"short").decode()])
async def test_bad_nonce_is_400(tdx_cp: ControlPlane, nonce: str | None) -> None:
    status, body = await attest(tdx_cp, ATTEST_TOKEN, nonce)
    assert status == 400
    assert body["code"] == "INVALID_INPUT"


async def test_unencoded_plus_in_the_nonce_still_binds(tdx_cp: ControlPlane) -> None:
    raw = bytes.fromhex("fbff") * 8  # base64 contains '+' and '/'
    encoded = base64.b64encode(raw).decode()
    assert "+" in encoded
    response = await tdx_cp.client.get(f"/cp/attest?nonce={encoded}", headers=bearer(ATTEST_TOKEN))
    body = await response.get_json()
    assert response.status_code == 200, body
    assert body["report_data"] == hashlib.sha512(raw).hexdigest()


async def test_without_tdx_the_answer_says_so(cp: ControlPlane) -> None:
    status, body = await attest(cp, ATTEST_TOKEN)
    assert status == 503
    assert body["message"].startswith("not a TDX guest (no configfs-tsm at ")


async def test_dev_mode_returns_a_labelled_stand_in_that_no_parser_accepts(
    make_settings: SettingsFactory, make_cp: MakeControlPlane
) -> None:
    cp = await make_cp(make_settings(DD_DEV_ATTESTATION="1"))
    status, body = await attest(cp, ATTEST_TOKEN)
    assert status == 200
    assert body["dev"] is True
    assert body["tee"] == body["tee_type"] == "none-dev"
    raw = base64.b64decode(body["quote_b64"])
    assert raw.startswith(b"DD-DEV-UNSIGNED")
    with pytest.raises(QuoteFormatError):
        parse_quote(raw)
    assert body["report_data"] == hashlib.sha512(b"sixteen byte nonce").hexdigest()
    again = await attest(cp, ATTEST_TOKEN)
    assert again[1]["mrtd"] == body["mrtd"]  # deterministic per build


async def test_a_corrupt_quote_from_the_kernel_is_a_clear_503(
    make_settings: SettingsFactory, make_cp: MakeControlPlane, tmp_path
) -> None:
    with FakeTsm(tmp_path / "broken", quote=b"\x04\x00\x02\x00" + b"\x81" + bytes(100)) as broken:
        cp = await make_cp(make_settings(DD_TSM_ROOT=str(broken.root)))
        status, body = await attest(cp, ATTEST_TOKEN)
    assert status == 503
    assert body["code"] == "BAD_QUOTE"


async def test_dashboard_summary_shows_the_mrtd(tdx_cp: ControlPlane) -> None:
    response = await tdx_cp.client.get("/api/status", headers=bearer(OWNER_TOKEN))
    body = await response.get_json()
    assert body["attestation"]["mrtd"] == REAL_V4_MRTD
    assert body["attestation"]["dev"] is False
