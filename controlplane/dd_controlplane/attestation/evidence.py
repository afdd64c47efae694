"""Evidence for a nonce: a parsed TDX quote, or a labelled development stand-in.

Nonce binding: the 64 bytes of TD report data are ``sha512(nonce)`` where ``nonce`` is
the *decoded* bytes of the ``?nonce=`` parameter. A verifier recomputes that and compares
it with ``report_data`` in the quote.

Without configfs-tsm the answer depends on ``DD_DEV_ATTESTATION``: off, an
``AttestationError`` ("not a TDX guest ..."); on, a stand-in whose ``tee``/``tee_type`` is
``none-dev``, ``dev`` is true, and whose ``quote_b64`` decodes to ASCII text starting
``DD-DEV-UNSIGNED`` (a DCAP parser refuses it: its first two bytes are not version 4 or 5).
Its MRTD is ``sha384("dd-preview dev mrtd|" + build)`` so it is stable per build.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
from pathlib import Path
from typing import TypedDict

from ..errors import AttestationError
from .quote import Quote, parse_quote
from .tsm import read_quote, tsm_available

__all__ = ["Evidence", "collect_evidence", "decode_nonce", "report_data_for"]

NONCE_MIN_BYTES = 8
NONCE_MAX_BYTES = 256
DEV_MARKER = b"DD-DEV-UNSIGNED-NOT-A-TDX-QUOTE\n"


class Evidence(TypedDict):
    quote_b64: str
    version: int
    tee: str
    tee_type: str
    body_version: str
    mrtd: str
    rtmr0: str
    rtmr1: str
    rtmr2: str
    rtmr3: str
    report_data: str
    nonce_binding: str
    dev: bool


class BadNonce(ValueError):
    """The ``nonce`` parameter is missing or not 8..256 bytes of base64."""


def decode_nonce(raw: str | None) -> bytes:
    if not raw:
        raise BadNonce("nonce is required: ?nonce=<base64 of 8..256 random bytes>")
    text = raw.replace(" ", "+").strip()  # an unencoded "+" arrives as " "
    text += "=" * (-len(text) % 4)
    try:
        nonce = base64.b64decode(text.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        raise BadNonce("nonce must be base64") from None
    if not NONCE_MIN_BYTES <= len(nonce) <= NONCE_MAX_BYTES:
        raise BadNonce(f"nonce must decode to {NONCE_MIN_BYTES}..{NONCE_MAX_BYTES} bytes")
    return nonce


def report_data_for(nonce: bytes) -> bytes:
    return hashlib.sha512(nonce).digest()


def _from_quote(raw: bytes, quote: Quote) -> Evidence:
    return {
        "quote_b64": base64.b64encode(raw[: quote.length]).decode(),
        "version": quote.version,
        "tee": "tdx",
        "tee_type": "tdx",
        "body_version": quote.body_version,
        "mrtd": quote.mrtd.hex(),
        "rtmr0": quote.rtmrs[0].hex(),
        "rtmr1": quote.rtmrs[1].hex(),
        "rtmr2": quote.rtmrs[2].hex(),
        "rtmr3": quote.rtmrs[3].hex(),
        "report_data": quote.report_data.hex(),
        "nonce_binding": "report_data = sha512(nonce)",
        "dev": False,
    }


def dev_evidence(report_data: bytes, build: str) -> Evidence:
    def measure(label: str) -> str:
        return hashlib.sha384(f"dd-preview dev {label}|{build}".encode()).hexdigest()

    blob = DEV_MARKER + b"build=" + build.encode() + b"\nreport_data=" + report_data.hex().encode()
    return {
        "quote_b64": base64.b64encode(blob).decode(),
        "version": 0,
        "tee": "none-dev",
        "tee_type": "none-dev",
        "body_version": "none",
        "mrtd": measure("mrtd"),
        "rtmr0": measure("rtmr0"),
        "rtmr1": measure("rtmr1"),
        "rtmr2": measure("rtmr2"),
        "rtmr3": measure("rtmr3"),
        "report_data": report_data.hex(),
        "nonce_binding": "report_data = sha512(nonce)",
        "dev": True,
    }


async def collect_evidence(
    *, tsm_root: Path, dev: bool, build: str, nonce: bytes
) -> Evidence:
    """Real TDX when configfs-tsm exists; else the dev stand-in if allowed; else an error."""
    report_data = report_data_for(nonce)
    if not tsm_available(tsm_root):
        if dev:
            return dev_evidence(report_data, build)
        raise AttestationError(f"not a TDX guest (no configfs-tsm at {tsm_root})")
    report = await asyncio.to_thread(read_quote, tsm_root, report_data)
    quote = parse_quote(report.outblob)
    if quote.report_data != report_data:
        raise AttestationError("the quote's report data does not match the nonce")
    return _from_quote(report.outblob, quote)
