"""Login and logout: ``/auth/pat`` (form), ``/auth/github/*`` (OAuth), ``/auth/logout``.

Each handler reads the request, calls one function from ``auth/`` and shapes the reply.
Failures on these browser routes answer HTML pages with the right status; tokens never
appear in pages, logs or redirects.
"""

from __future__ import annotations

import hmac
import logging
from urllib.parse import quote

from quart import Blueprint, redirect, render_template_string, request, session
from quart.typing import ResponseReturnValue

from ..auth.cookies import log_in, log_out
from ..auth.csrf import CSRF_FIELD, csrf_token, csrf_valid
from ..auth.redirects import safe_next
from ..errors import AuthRequired, ControlPlaneError, NotOwner
from ..state import current_state
from . import pages
from .guard import wants_html

__all__ = ["blueprint"]

log = logging.getLogger(__name__)

blueprint = Blueprint("auth", __name__)

_OAUTH_SESSION_KEY = "oauth_state"


async def _pat_form(next_path: str, *, error: str = "", status: int = 200) -> ResponseReturnValue:
    state = current_state()
    html = await render_template_string(
        pages.PAT_FORM,
        env=state.settings.env,
        owner=state.settings.owner,
        csrf_token=csrf_token(session),
        next=next_path,
        error=error,
        oauth=state.oauth is not None,
    )
    return html, status, {"Cache-Control": "no-store"}


async def _message(title: str, message: str, status: int, *, link: str = "") -> ResponseReturnValue:
    html = await render_template_string(
        pages.MESSAGE, title=title, message=message, link=link, link_text="Log in again"
    )
    return html, status, {"Cache-Control": "no-store"}


@blueprint.get("/auth/pat")
async def pat_form() -> ResponseReturnValue:
    return await _pat_form(safe_next(request.args.get("next")))


@blueprint.post("/auth/pat")
async def pat_submit() -> ResponseReturnValue:
    form = await request.form
    next_path = safe_next(form.get("next"))
    if not csrf_valid(session, form.get(CSRF_FIELD)):
        log.warning("PAT login refused: missing or wrong CSRF token")
        return await _pat_form(
            next_path, error="This form expired or did not come from this page; try again.",
            status=403,
        )
    token = (form.get("pat") or "").strip()
    if not token:
        return await _pat_form(next_path, error="Missing token.", status=401)
    try:
        principal = await current_state().serving().owner_check.check(token)
    except ControlPlaneError as exc:
        log.info("PAT login refused: %s", exc)
        return await _pat_form(next_path, error=str(exc), status=exc.status)
    log_in(session, principal.login)
    log.info("PAT login for %s (%s)", principal.login, principal.via)
    return redirect(next_path, 303)


@blueprint.get("/auth/github/start")
async def github_start() -> ResponseReturnValue:
    state = current_state()
    next_path = safe_next(request.args.get("next"))
    if state.oauth is None:
        if wants_html():
            return redirect(f"/auth/pat?next={quote(next_path, safe='/')}", 303)
        return {"code": "NOT_FOUND", "message": "GitHub OAuth is not configured"}, 404
    url, oauth_state = state.oauth.start(next_path)
    session[_OAUTH_SESSION_KEY] = oauth_state
    return redirect(url, 303)


@blueprint.get("/auth/github/callback")
async def github_callback() -> ResponseReturnValue:
    state = current_state()
    if state.oauth is None:
        if wants_html():
            return redirect("/auth/pat", 303)
        return {"code": "NOT_FOUND", "message": "GitHub OAuth is not configured"}, 404
    args = request.args
    issued = session.pop(_OAUTH_SESSION_KEY, None)
    returned = args.get("state", "")
    next_path = state.oauth.take(returned) if returned else None
    if args.get("error"):
        return await _message("Login cancelled", "GitHub did not complete the login.", 401,
                              link="/auth/pat")
    bound = isinstance(issued, str) and hmac.compare_digest(issued.encode(), returned.encode())
    if next_path is None or not bound:
        log.warning("OAuth callback refused: unknown, reused, expired or foreign state")
        return await _message("Login expired", "This login link is stale or was not started "
                              "in this browser.", 401, link="/auth/pat")
    code = args.get("code", "")
    if not code:
        return await _message("Login failed", "GitHub sent no code.", 400, link="/auth/pat")
    try:
        token = await state.oauth.exchange(code)
        principal = await state.serving().owner_check.check(token)
    except (AuthRequired, NotOwner) as exc:
        log.info("OAuth login refused: %s", exc)
        return await _message("Not allowed", str(exc), exc.status, link="/auth/pat")
    log_in(session, principal.login)
    log.info("OAuth login for %s (%s)", principal.login, principal.via)
    return redirect(next_path, 303)


@blueprint.route("/auth/logout", methods=["GET", "POST"])
async def logout() -> ResponseReturnValue:
    log_out(session)
    return await _message("Logged out", "Your session on this preview has ended.", 200,
                          link="/auth/pat?next=/")
