"""``create_app(settings)``: builds one Quart app, registers the blueprints, wires errors.

Each test builds its own app from its own ``Settings``; nothing here reads the
environment (that is ``settings.py``) or serves (that is ``__main__``). Shared clients
are opened in ``before_serving`` and closed in ``after_serving``.

Every response carries security headers: a CSP that allows only our own origin plus the
inline style/script bearing this response's nonce, no framing, no referrer (so an OAuth
``code`` never leaks through a Referer).
"""

from __future__ import annotations

import logging
import secrets

from quart import Quart, Response, g
from quart.typing import ResponseReturnValue

from .auth.cookies import configure_sessions
from .auth.oauth import OAuthFlow
from .errors import AuthRequired, ControlPlaneError
from .routes import attest, auth, dashboard, health, register
from .settings import Settings
from .state import State

__all__ = ["create_app"]

log = logging.getLogger(__name__)


def _security_headers(response: Response) -> Response:
    nonce = g.get("csp_nonce", "")
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'none'; connect-src 'self'; img-src 'self' data:; form-action 'self'; "
        f"style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}'; "
        "frame-ancestors 'none'; base-uri 'none'",
    )
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    return response


def _error_response(exc: ControlPlaneError) -> ResponseReturnValue:
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, AuthRequired) else {}
    if exc.status >= 500:
        log.warning("%s: %s", type(exc).__name__, exc)
    return dict(exc.body()), exc.status, headers


def create_app(settings: Settings) -> Quart:
    app = Quart("dd_controlplane")
    state = State(settings=settings)
    if settings.github.oauth_enabled:
        state.oauth = OAuthFlow(settings.github, callback_url=settings.oauth_callback_url)
    app.extensions["dd"] = state
    configure_sessions(app, settings.session)

    @app.before_serving
    async def _open() -> None:
        state.open()

    @app.after_serving
    async def _close() -> None:
        await state.close()

    @app.before_request
    async def _nonce() -> None:
        g.csp_nonce = secrets.token_urlsafe(16)

    app.after_request(_security_headers)
    app.register_error_handler(ControlPlaneError, _error_response)
    for blueprint in (health.blueprint, auth.blueprint, attest.blueprint,
                      register.blueprint, dashboard.blueprint):
        app.register_blueprint(blueprint)
    return app
