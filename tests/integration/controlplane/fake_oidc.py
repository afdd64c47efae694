"""A fake GitHub Actions OIDC issuer: discovery, JWKS, and RS256 tokens minted on demand.

Keys are generated locally (joserfc). ``rotate()`` adds a new signing key (published
immediately) so tests can prove the verifier refetches on an unknown ``kid``.
``jwks_fetches`` counts how often the JWKS was read.
"""

from __future__ import annotations

import base64
import functools
import json
import time
from typing import Any

from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from quart import Quart


@functools.cache
def pooled_key(index: int) -> RSAKey:
    """RSA keys are slow to generate; each index is made once per test session."""
    return RSAKey.generate_key(
        2048, parameters={"kid": f"k{index}", "use": "sig", "alg": "RS256"}, private=True
    )


class FakeIssuer:
    def __init__(self) -> None:
        self.base_url = ""
        self.keys: list[RSAKey] = []
        self.jwks_fetches = 0
        self.rotate()
        self.app = self._build()

    def rotate(self) -> RSAKey:
        key = pooled_key(len(self.keys))
        self.keys.append(key)
        return key

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims = {
            "iss": self.base_url,
            "aud": "dd-test",
            "sub": "repo:acme/webapp:pull_request",
            "repository": "acme/webapp",
            "repository_owner": "acme",
            "repository_owner_id": "4242",
            "ref": "refs/pull/7/merge",
            "sha": "0" * 40,
            "event_name": "pull_request",
            "run_id": "1",
            "jti": "j1",
            "iat": now,
            "nbf": now,
            "exp": now + 300,
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def mint(self, *, key: RSAKey | None = None, **overrides: Any) -> str:
        key = key or self.keys[-1]
        header = {"alg": "RS256", "kid": key.kid, "typ": "JWT"}
        return jwt.encode(header, self.claims(**overrides), key)

    def mint_unsigned(self, **overrides: Any) -> str:
        """``alg: none``: a token anyone can forge."""

        def b64(obj: object) -> str:
            return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

        header = {"alg": "none", "typ": "JWT", "kid": self.keys[-1].kid}
        return f"{b64(header)}.{b64(self.claims(**overrides))}."

    def _build(self) -> Quart:
        app = Quart("fake_oidc")

        @app.get("/.well-known/openid-configuration")
        async def discovery() -> object:
            return {
                "issuer": self.base_url,
                "jwks_uri": f"{self.base_url}/.well-known/jwks",
                "id_token_signing_alg_values_supported": ["RS256"],
            }

        @app.get("/.well-known/jwks")
        async def jwks() -> object:
            self.jwks_fetches += 1
            return KeySet(list(self.keys)).as_dict(private=False)

        return app
