"""The control plane's error family, and the JSON shape they take on the wire.

::

    ControlPlaneError(code, status)
      AuthRequired           401  no credentials, or credentials GitHub/the issuer refused
      NotOwner               403  a real GitHub user who is not DD_OWNER nor in org DD_OWNER
      UpstreamError          502  GitHub or the OIDC issuer could not be asked
      AttestationError       503  no TDX (or configfs-tsm failed); the message says which
        QuoteFormatError     the quote bytes are truncated or not a TDX DCAP quote
      RegistrationRefused    a websocket registration closed with 1008 (policy violation)

Messages are for people and never carry tokens, raw upstream bodies or headers.
Only ``routes/`` turns these into HTTP answers (see ``app.py``'s error handler).
"""

from __future__ import annotations

from typing import TypedDict

__all__ = [
    "AttestationError",
    "AuthRequired",
    "ControlPlaneError",
    "ErrorBody",
    "NotOwner",
    "QuoteFormatError",
    "RegistrationRefused",
    "UpstreamError",
]


class ErrorBody(TypedDict):
    code: str
    message: str


class ControlPlaneError(Exception):
    code = "INTERNAL_ERROR"
    status = 500

    def body(self) -> ErrorBody:
        return {"code": self.code, "message": str(self)}


class AuthRequired(ControlPlaneError):
    code = "UNAUTHORIZED"
    status = 401


class NotOwner(ControlPlaneError):
    code = "FORBIDDEN"
    status = 403


class UpstreamError(ControlPlaneError):
    code = "EXTERNAL_ERROR"
    status = 502


class AttestationError(ControlPlaneError):
    code = "ATTESTATION_UNAVAILABLE"
    status = 503


class QuoteFormatError(AttestationError):
    code = "BAD_QUOTE"


class RegistrationRefused(ControlPlaneError):
    """Carries the reason logged and sent as the 1008 close reason."""

    code = "REGISTRATION_REFUSED"
    status = 403
