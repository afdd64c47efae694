"""``GET /cp/attest?nonce=``: a TDX quote bound to the caller's nonce.

Who may ask: a GitHub Actions OIDC token for ``DD_OWNER`` (see ``attestation/oidc.py``),
or ``Authorization: Bearer <DD_ATTEST_TOKEN>``, the per-environment secret the operator
uses to record MRTD (compared in constant time). Browser sessions and GitHub PATs do not
count: this is a machine endpoint. Answers: 200 evidence JSON, 400 bad nonce, 401 with
the reason (e.g. "OIDC token expired"), 503 "not a TDX guest (no configfs-tsm at ...)".
"""

from __future__ import annotations

import hmac
import logging
import time

from quart import Blueprint, request
from quart.typing import ResponseReturnValue

from ..attestation.evidence import BadNonce, Evidence, collect_evidence, decode_nonce
from ..errors import AuthRequired
from ..state import State, current_state
from .guard import bearer_token

__all__ = ["blueprint"]

log = logging.getLogger(__name__)

blueprint = Blueprint("attest", __name__)


async def _caller(state: State) -> str:
    token = bearer_token()
    if token is None:
        raise AuthRequired(
            "send Authorization: Bearer <GitHub Actions OIDC token or DD_ATTEST_TOKEN>"
        )
    expected = state.settings.attestation.attest_token
    if expected and hmac.compare_digest(token.encode(), expected.encode()):
        return "operator (DD_ATTEST_TOKEN)"
    claims = await state.serving().oidc.verify(token)
    return f"github-oidc:{claims.repository}"


def remember_summary(state: State, evidence: Evidence) -> None:
    state.attestation_summary = {
        "available": True, "tee": evidence["tee"], "mrtd": evidence["mrtd"],
        "dev": evidence["dev"], "version": evidence["version"],
    }
    state.attestation_summary_at = time.monotonic()


@blueprint.get("/cp/attest")
async def attest() -> ResponseReturnValue:
    state = current_state()
    caller = await _caller(state)
    try:
        nonce = decode_nonce(request.args.get("nonce"))
    except BadNonce as exc:
        return {"code": "INVALID_INPUT", "message": str(exc)}, 400
    a = state.settings.attestation
    evidence = await collect_evidence(
        tsm_root=a.tsm_root, dev=a.dev, build=state.settings.build_sha, nonce=nonce
    )
    remember_summary(state, evidence)
    log.info("attestation served to %s (tee=%s)", caller, evidence["tee"])
    return dict(evidence), 200, {"Cache-Control": "no-store"}
