"""Who is asking: the session cookie or a GitHub bearer token, and what a refusal looks like.

``authenticate()`` tries, in order: a valid ``dd_session`` cookie (login stored at login
time), then ``Authorization: Bearer <GitHub token>`` through the owner check. A request
with neither gets ``AuthRequired``. ``owner_required`` turns ``AuthRequired`` into a 303
to the login page for browsers (``Accept`` prefers ``text/html``) and lets it become the
401 JSON answer for everyone else; ``NotOwner`` is always 403.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps
from typing import ParamSpec, TypeVar
from urllib.parse import quote

from quart import g, redirect, request, session
from quart.typing import ResponseReturnValue

from ..auth.cookies import logged_in_login
from ..auth.owner import Principal
from ..errors import AuthRequired
from ..state import current_state

__all__ = ["authenticate", "bearer_token", "login_url", "owner_required", "wants_html"]

P = ParamSpec("P")
R = TypeVar("R")


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip() or None


def wants_html() -> bool:
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "text/html"


def login_url(next_path: str) -> str:
    target = "/auth/github/start" if current_state().oauth is not None else "/auth/pat"
    return f"{target}?next={quote(next_path, safe='/')}"


async def authenticate() -> Principal:
    state = current_state()
    login = logged_in_login(session, state.settings.session.max_age_seconds)
    if login is not None:
        return Principal(login=login, via="session")
    token = bearer_token()
    if token is not None:
        return await state.serving().owner_check.check(token)
    raise AuthRequired("log in, or send Authorization: Bearer <GitHub token>")


def owner_required(
    view: Callable[P, Awaitable[ResponseReturnValue]],
) -> Callable[P, Awaitable[ResponseReturnValue]]:
    @wraps(view)
    async def guarded(*args: P.args, **kwargs: P.kwargs) -> ResponseReturnValue:
        try:
            g.principal = await authenticate()
        except AuthRequired:
            if wants_html():
                path = request.full_path.rstrip("?") if request.query_string else request.path
                return redirect(login_url(path), 303)
            raise
        return await view(*args, **kwargs)

    return guarded
