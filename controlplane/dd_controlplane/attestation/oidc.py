"""GitHub Actions OIDC bearer check (joserfc), with a JWKS cache refreshed on unknown ``kid``.

What a token must satisfy, in order (the first failure is the message the caller sees):
1. three dot-separated parts whose header says ``alg: RS256`` and names a ``kid``
   (``none``, HS256 and friends are refused before any key is looked at);
2. the ``kid`` is in the issuer's JWKS, found through ``{issuer}/.well-known/openid-configuration``
   and cached for ``jwks_ttl_seconds``; an unknown ``kid`` refetches once (at most every
   ``jwks_min_refresh_seconds``), which is how key rotation is picked up;
3. the RS256 signature verifies;
4. ``iss`` equals the issuer, ``aud`` contains our audience, ``exp`` (essential) and
   ``nbf``/``iat`` hold within ``leeway_seconds``; an expired token says "expired";
5. ``repository_owner`` equals ``DD_OWNER`` (case-insensitive, as GitHub logins are) and,
   when ``DD_OIDC_OWNER_ID`` is set, ``repository_owner_id`` equals it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import time
from dataclasses import dataclass
from typing import Any

import httpx
from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    ExpiredTokenError,
    InvalidClaimError,
    InvalidTokenError,
    JoseError,
    MissingClaimError,
)
from joserfc.jwk import KeySet, RSAKey

from ..errors import AuthRequired, UpstreamError
from ..settings import OidcSettings

__all__ = ["OidcClaims", "OidcVerifier", "looks_like_jwt"]


@dataclass(frozen=True)
class OidcClaims:
    repository: str
    repository_owner: str
    subject: str


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2


def _header(token: str) -> dict[str, Any]:
    segment = token.split(".", 1)[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (binascii.Error, ValueError):
        raise AuthRequired("OIDC token header is not valid base64 JSON") from None
    if not isinstance(header, dict):
        raise AuthRequired("OIDC token header is not a JSON object")
    return header


class OidcVerifier:
    def __init__(self, settings: OidcSettings, *, owner: str, http: httpx.AsyncClient) -> None:
        self._settings = settings
        self._owner = owner
        self._http = http
        self._keys: dict[str, RSAKey] = {}
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()

    @property
    def enabled(self) -> bool:
        return bool(self._settings.audience)

    async def verify(self, token: str) -> OidcClaims:
        if not self.enabled:
            raise AuthRequired("OIDC is not configured on this control plane (DD_OIDC_AUDIENCE)")
        if not looks_like_jwt(token):
            raise AuthRequired("not a JWT")
        header = _header(token)
        if header.get("alg") != "RS256":
            raise AuthRequired(f"OIDC token algorithm {header.get('alg')!r} refused (RS256 only)")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise AuthRequired("OIDC token names no key (kid)")
        key = await self._key(kid)
        try:
            decoded = jwt.decode(token, key, algorithms=["RS256"])
        except BadSignatureError:
            raise AuthRequired("OIDC token signature does not verify") from None
        except JoseError as exc:
            raise AuthRequired(f"OIDC token is malformed ({exc.error})") from None
        return self._check_claims(decoded.claims)

    def _check_claims(self, claims: dict[str, Any]) -> OidcClaims:
        s = self._settings
        registry = jwt.JWTClaimsRegistry(
            leeway=s.leeway_seconds,
            iss={"essential": True, "value": s.issuer},
            aud={"essential": True, "value": s.audience},
            exp={"essential": True},
            repository_owner={"essential": True},
            repository={"essential": True},
        )
        try:
            registry.validate(claims)
        except ExpiredTokenError:
            raise AuthRequired("OIDC token expired") from None
        except MissingClaimError as exc:
            raise AuthRequired(f"OIDC token is missing a claim ({exc.description})") from None
        except InvalidClaimError as exc:
            raise AuthRequired(f"OIDC token claim refused ({exc.description})") from None
        except InvalidTokenError as exc:
            raise AuthRequired(f"OIDC token not valid yet or refused ({exc.error})") from None
        owner = str(claims["repository_owner"])
        if owner.casefold() != self._owner.casefold():
            raise AuthRequired(f"OIDC token is for owner {owner!r}, not {self._owner!r}")
        if s.owner_id is not None and str(claims.get("repository_owner_id")) != str(s.owner_id):
            raise AuthRequired("OIDC token repository_owner_id does not match DD_OIDC_OWNER_ID")
        return OidcClaims(
            repository=str(claims["repository"]),
            repository_owner=owner,
            subject=str(claims.get("sub", "")),
        )

    async def _key(self, kid: str) -> RSAKey:
        now = time.monotonic()
        fresh = now - self._fetched_at < self._settings.jwks_ttl_seconds
        if kid in self._keys and fresh:
            return self._keys[kid]
        async with self._lock:
            stale = time.monotonic() - self._fetched_at >= self._settings.jwks_ttl_seconds
            may_refresh = (
                time.monotonic() - self._fetched_at >= self._settings.jwks_min_refresh_seconds
            )
            if stale or (kid not in self._keys and may_refresh):
                self._keys = await self._fetch_keys()
                self._fetched_at = time.monotonic()
        if kid not in self._keys:
            raise AuthRequired("OIDC token is signed by a key the issuer does not publish")
        return self._keys[kid]

    async def _fetch_keys(self) -> dict[str, RSAKey]:
        issuer = self._settings.issuer
        try:
            config = await self._get_json(f"{issuer}/.well-known/openid-configuration")
            if config.get("issuer", "").rstrip("/") != issuer:
                raise UpstreamError("OIDC discovery document names a different issuer")
            jwks = await self._get_json(str(config["jwks_uri"]))
            key_set = KeySet.import_key_set(jwks)  # type: ignore[arg-type]
        except (httpx.HTTPError, KeyError, ValueError, JoseError) as exc:
            reason = type(exc).__name__
            raise UpstreamError(f"could not load the OIDC issuer's keys ({reason})") from exc
        return {
            str(k.kid): k for k in key_set.keys if isinstance(k, RSAKey) and k.kid is not None
        }

    async def _get_json(self, url: str) -> dict[str, Any]:
        response = await self._http.get(url)
        response.raise_for_status()
        body = response.json()
        if not isinstance(body, dict):
            raise ValueError("expected a JSON object")
        return body
