"""How the operator checks a control plane: ``/health`` and ``/cp/attest``.

Ready means serving (DESIGN 3.2 invariant 6): several consecutive healthy answers that
report the expected build, then a quote whose MRTD is recorded. The attest nonce is
fresh per check and the answer must echo it in its report data, so an old VM (or a
replay) cannot pass for the new one.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
from dataclasses import dataclass

import httpx

__all__ = ["Attestation", "Health", "check_health", "fetch_attestation", "health_from_response"]


@dataclass(frozen=True)
class Health:
    ok: bool
    build: str = ""
    detail: str = ""


@dataclass(frozen=True)
class Attestation:
    mrtd: str = ""
    dev: bool = False
    error: str = ""


def health_from_response(resp: httpx.Response, expected_build: str) -> Health:
    if resp.status_code != 200:
        return Health(False, detail=f"/health answered {resp.status_code}")
    try:
        build = str(resp.json().get("build", ""))
    except ValueError:
        return Health(False, detail="/health did not answer JSON")
    if build != expected_build:
        return Health(
            False, build, f"serving build {build[:7] or 'unknown'}, expected {expected_build[:7]}"
        )
    return Health(True, build)


async def check_health(
    client: httpx.AsyncClient,
    endpoint: str,
    expected_build: str,
    *,
    checks: int,
    interval: float = 0.3,
) -> Health:
    """``checks`` consecutive good answers, or the first bad one."""
    result = Health(False, detail="not checked")
    for i in range(max(1, checks)):
        if i:
            await asyncio.sleep(interval)
        try:
            resp = await client.get(f"{endpoint}/health")
        except httpx.HTTPError as exc:
            return Health(False, detail=f"/health unreachable ({type(exc).__name__})")
        result = health_from_response(resp, expected_build)
        if not result.ok:
            return result
    return result


async def fetch_attestation(client: httpx.AsyncClient, endpoint: str, token: str) -> Attestation:
    nonce = secrets.token_bytes(32)
    try:
        resp = await client.get(
            f"{endpoint}/cp/attest",
            params={"nonce": base64.b64encode(nonce).decode()},
            headers={"Authorization": f"Bearer {token}"},
        )
    except httpx.HTTPError as exc:
        return Attestation(error=f"/cp/attest unreachable ({type(exc).__name__})")
    if resp.status_code != 200:
        return Attestation(error=f"/cp/attest answered {resp.status_code}")
    try:
        body = resp.json()
    except ValueError:
        return Attestation(error="/cp/attest did not answer JSON")
    expected = hashlib.sha512(nonce).hexdigest()
    if str(body.get("report_data", "")).lower() != expected:
        return Attestation(error="the quote's report data does not bind our nonce")
    return Attestation(mrtd=str(body.get("mrtd", "")).lower(), dev=bool(body.get("dev")))
