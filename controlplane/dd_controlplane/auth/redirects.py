"""``safe_next``: where a login may send the browser afterwards. Same-site paths only.

Accepted: an absolute path on this host (``/x?y``). Refused (becomes ``/``): anything
with a scheme or host (``https://evil``), protocol-relative ``//evil``, ``/\\evil``
(browsers treat ``\\`` as ``/``), control characters, and overlong values.
"""

from __future__ import annotations

__all__ = ["safe_next"]

MAX_NEXT_LEN = 2048


def safe_next(value: str | None) -> str:
    if not value or len(value) > MAX_NEXT_LEN:
        return "/"
    if not value.startswith("/") or value.startswith("//"):
        return "/"
    if "\\" in value or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        return "/"
    return value
