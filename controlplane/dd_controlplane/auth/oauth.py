"""GitHub OAuth (web flow) with Authlib's async httpx client; states single-use and expiring.

Authlib has no Quart integration, so the flow is driven by hand (research/testing.md §6):
``start`` mints a state and remembers it here (with the post-login path) for
``STATE_TTL_SECONDS``; the route also puts it in the browser's session, so a callback
must present a state that we issued *and* that this browser started (no login CSRF).
``take`` removes the state on first use, whatever the outcome. Scopes: ``read:user
read:org`` (the org scope lets ``/user/orgs`` see private memberships).
"""

from __future__ import annotations

import secrets
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable

from authlib.deprecate import AuthlibDeprecationWarning
from authlib.integrations.base_client.errors import OAuthError

with warnings.catch_warnings():
    # Authlib 1.x nudges httpx users towards httpx2 on import; we pin httpx (pyproject).
    warnings.simplefilter("ignore", AuthlibDeprecationWarning)
    from authlib.integrations.httpx_client import AsyncOAuth2Client

from ..errors import AuthRequired, UpstreamError
from ..settings import GitHubSettings

__all__ = ["SCOPES", "STATE_TTL_SECONDS", "OAuthFlow"]

SCOPES = "read:user read:org"
STATE_TTL_SECONDS = 600
MAX_PENDING_STATES = 4096


class OAuthFlow:
    def __init__(
        self, settings: GitHubSettings, *, callback_url: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._callback_url = callback_url
        self._clock = clock
        self._pending: OrderedDict[str, tuple[float, str]] = OrderedDict()

    def _client(self) -> AsyncOAuth2Client:
        return AsyncOAuth2Client(
            client_id=self._settings.client_id,
            client_secret=self._settings.client_secret,
            scope=SCOPES,
            redirect_uri=self._callback_url,
            token_endpoint_auth_method="client_secret_post",  # noqa: S106 - a method name
            timeout=10.0,
        )

    def start(self, next_path: str) -> tuple[str, str]:
        """The authorize URL to send the browser to, and the state it carries."""
        state = secrets.token_urlsafe(32)
        now = self._clock()
        self._pending[state] = (now + STATE_TTL_SECONDS, next_path)
        while len(self._pending) > MAX_PENDING_STATES:
            self._pending.popitem(last=False)
        client = self._client()
        url, _ = client.create_authorization_url(
            f"{self._settings.oauth_url}/login/oauth/authorize", state=state
        )
        return str(url), state

    def take(self, state: str) -> str | None:
        """The post-login path for ``state`` if it is pending and fresh; it is used up."""
        now = self._clock()
        for stale in [s for s, (exp, _) in self._pending.items() if exp <= now]:
            del self._pending[stale]
        entry = self._pending.pop(state, None)
        return entry[1] if entry else None

    async def exchange(self, code: str) -> str:
        """Trade the callback's code for an access token."""
        async with self._client() as client:
            try:
                token = await client.fetch_token(
                    f"{self._settings.oauth_url}/login/oauth/access_token", code=code
                )
            except OAuthError as exc:
                raise AuthRequired(f"GitHub refused the login code ({exc.error})") from None
            except Exception as exc:
                raise UpstreamError(f"GitHub token exchange failed ({type(exc).__name__})") from exc
        access_token = token.get("access_token") if isinstance(token, dict) else None
        if not isinstance(access_token, str) or not access_token:
            raise AuthRequired("GitHub returned no access token")
        return access_token
