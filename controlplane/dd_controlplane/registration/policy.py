"""Pure admission rule for a registering agent: ``admit(...) -> Admit | Refuse``.

The payload (decrypted Noise msg3) is JSON ``{"owner", "vm_name", "tdx_quote_b64"?}``.
In order:
1. it is a JSON object with a string ``owner`` and a ``vm_name`` that is a DNS label;
2. ``owner`` equals ``DD_OWNER`` (case-insensitive, as GitHub logins are);
3. the agent's static key (authenticated by the handshake) is on ``DD_AGENT_KEYS`` - or,
   with ``DD_AGENT_TOFU=1``, the VM name is new (pin it) or pinned to this same key;
   with neither configured nothing is admitted (deny by default);
4. a quote, when sent, parses as a TDX DCAP quote (recorded, not signature-verified).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from ..attestation.quote import Quote, parse_quote
from ..errors import QuoteFormatError

__all__ = ["Admit", "Refuse", "admit"]

_VM_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


@dataclass(frozen=True)
class Admit:
    vm_name: str
    public_key: bytes
    quote: Quote | None
    pin: bool
    """True when this admission creates the TOFU pin for ``vm_name``."""


@dataclass(frozen=True)
class Refuse:
    reason: str


def _parse(payload: bytes) -> dict[str, object] | Refuse:
    try:
        body = json.loads(payload)
    except (UnicodeDecodeError, ValueError):
        return Refuse("payload is not JSON")
    if not isinstance(body, dict):
        return Refuse("payload is not a JSON object")
    return body


def admit(
    payload: bytes, public_key: bytes, *, owner: str, allowed_keys: frozenset[bytes],
    tofu: bool, pins: Mapping[str, bytes],
) -> Admit | Refuse:
    body = _parse(payload)
    if isinstance(body, Refuse):
        return body
    claimed_owner, vm_name = body.get("owner"), body.get("vm_name")
    if not isinstance(vm_name, str) or not _VM_NAME.fullmatch(vm_name):
        return Refuse("vm_name must be a DNS label (a-z, 0-9, '-', at most 63)")
    if not isinstance(claimed_owner, str) or claimed_owner.casefold() != owner.casefold():
        return Refuse(f"owner {str(claimed_owner)[:64]!r} is not this control plane's owner")
    pin = False
    if public_key in allowed_keys:
        pass
    elif tofu:
        pinned = pins.get(vm_name)
        if pinned is None:
            pin = True
        elif pinned != public_key:
            return Refuse(f"vm_name {vm_name!r} is pinned to a different key")
    else:
        return Refuse("agent key is not on the allow-list")
    quote = None
    raw_quote = body.get("tdx_quote_b64")
    if raw_quote is not None:
        if not isinstance(raw_quote, str):
            return Refuse("tdx_quote_b64 must be a string")
        try:
            quote = parse_quote(base64.b64decode(raw_quote, validate=True))
        except (binascii.Error, ValueError):
            return Refuse("tdx_quote_b64 is not base64")
        except QuoteFormatError as exc:
            return Refuse(f"tdx quote refused: {exc}")
    return Admit(vm_name=vm_name, public_key=public_key, quote=quote, pin=pin)
