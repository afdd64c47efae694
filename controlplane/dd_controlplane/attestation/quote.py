"""Pure parsing of Intel TDX DCAP quotes (versions 4 and 5) into a ``Quote``.

No I/O and no signature verification: this module says what a quote *claims*
(MRTD, RTMRs, report data); checking Intel's signature chain needs collateral we do not
fetch. Layout, from Intel's "TDX DCAP Quoting Library API" (all integers little-endian)::

    header (48 bytes)
      0  u16 version            4 or 5
      2  u16 attestation key    2 = ECDSA-256 with P-256
      4  u32 tee type           0x81 = TDX (0x00 would be SGX)
      8  u16 reserved, u16 reserved (QE/PCE SVN)
     12  16  QE vendor id
     28  20  user data
    v4: the TD report body follows at 48.
    v5: 48 u16 body type (2 = TD report 1.0, 3 = TD report 1.5), 50 u32 body size, body at 54.
    TD report body 1.0 (584 bytes; 1.5 appends tee_tcb_svn2[16] and mr_servicetd[48] = 648)
      0 tee_tcb_svn[16]  16 mrseam[48]  64 mrsignerseam[48]  112 seam_attributes[8]
    120 td_attributes[8]  128 xfam[8]  136 mrtd[48]  184 mrconfigid[48]  232 mrowner[48]
    280 mrownerconfig[48]  328 rtmr0..3[4*48]  520 report_data[64]
    then u32 signature data length and the signature data (ECDSA signature[64],
    attestation key[64], u16 certification data type, u32 size, certification data).

So in a v4 quote MRTD sits at 48 + 136 = 184, which is what the predecessor's CI read.
Buffers from configfs-tsm may be zero-padded past the signature data; padding is allowed,
any other trailing byte is a format error. Every malformed input raises
``QuoteFormatError`` with a message naming the field, never ``struct.error``/``IndexError``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ..errors import QuoteFormatError

__all__ = ["TDX_TEE_TYPE", "Quote", "parse_quote"]

TDX_TEE_TYPE = 0x81
HEADER_LEN = 48
TD_REPORT_10_LEN = 584
TD_REPORT_15_LEN = 648
_V5_BODY_TYPES = {2: ("1.0", TD_REPORT_10_LEN), 3: ("1.5", TD_REPORT_15_LEN)}
_MEASUREMENT = 48


@dataclass(frozen=True)
class Quote:
    version: int
    tee_type: int
    attestation_key_type: int
    body_version: str
    """``"1.0"`` (v4, or v5 type 2) or ``"1.5"`` (v5 type 3)."""
    qe_vendor_id: bytes
    tee_tcb_svn: bytes
    mrseam: bytes
    td_attributes: bytes
    xfam: bytes
    mrtd: bytes
    mrconfigid: bytes
    mrowner: bytes
    mrownerconfig: bytes
    rtmrs: tuple[bytes, bytes, bytes, bytes]
    report_data: bytes
    signature_data_len: int
    length: int
    """Bytes the quote really occupies (without trailing padding)."""


def _take(data: bytes, offset: int, size: int, what: str) -> bytes:
    end = offset + size
    if offset < 0 or end > len(data):
        raise QuoteFormatError(
            f"quote truncated: {what} needs bytes {offset}..{end}, quote has {len(data)}"
        )
    return data[offset:end]


def _u16(data: bytes, offset: int, what: str) -> int:
    return int(struct.unpack("<H", _take(data, offset, 2, what))[0])


def _u32(data: bytes, offset: int, what: str) -> int:
    return int(struct.unpack("<I", _take(data, offset, 4, what))[0])


def _locate_body(data: bytes, version: int) -> tuple[int, int, str]:
    """Offset, size and version of the TD report body."""
    if version == 4:
        return HEADER_LEN, TD_REPORT_10_LEN, "1.0"
    body_type = _u16(data, HEADER_LEN, "v5 body type")
    body_size = _u32(data, HEADER_LEN + 2, "v5 body size")
    if body_type not in _V5_BODY_TYPES:
        raise QuoteFormatError(
            f"v5 quote body type {body_type} is not a TD report (expected 2 or 3)"
        )
    body_version, expected = _V5_BODY_TYPES[body_type]
    if body_size != expected:
        raise QuoteFormatError(
            f"v5 TD report {body_version} body must be {expected} bytes, header says {body_size}"
        )
    return HEADER_LEN + 6, body_size, body_version


def _check_signature_data(data: bytes, offset: int, length: int) -> None:
    """The ECDSA signature data must hold its fixed part and a certification block that fits."""
    fixed = 64 + 64 + 2 + 4
    if length < fixed:
        raise QuoteFormatError(f"signature data is {length} bytes, shorter than {fixed}")
    cert_size = _u32(data, offset + 130, "certification data size")
    if fixed + cert_size > length:
        raise QuoteFormatError(
            f"certification data ({cert_size} bytes) overruns the signature data ({length})"
        )


def parse_quote(data: bytes) -> Quote:
    """Parse a TDX DCAP quote v4 or v5; raise ``QuoteFormatError`` on anything else."""
    if len(data) < HEADER_LEN:
        raise QuoteFormatError(f"quote truncated: {len(data)} bytes, a header alone is 48")
    version = _u16(data, 0, "version")
    if version not in (4, 5):
        raise QuoteFormatError(f"unsupported quote version {version} (expected 4 or 5)")
    attestation_key_type = _u16(data, 2, "attestation key type")
    tee_type = _u32(data, 4, "tee type")
    if tee_type != TDX_TEE_TYPE:
        raise QuoteFormatError(f"tee type {tee_type:#x} is not TDX ({TDX_TEE_TYPE:#x})")
    body_at, body_len, body_version = _locate_body(data, version)
    body = _take(data, body_at, body_len, f"TD report body {body_version}")
    sig_at = body_at + body_len
    sig_len = _u32(data, sig_at, "signature data length")
    _take(data, sig_at + 4, sig_len, "signature data")
    _check_signature_data(data, sig_at + 4, sig_len)
    end = sig_at + 4 + sig_len
    if any(data[end:]):
        raise QuoteFormatError(f"unexpected non-zero bytes after the quote's end at {end}")

    def measurement(offset: int) -> bytes:
        return body[offset : offset + _MEASUREMENT]

    return Quote(
        version=version,
        tee_type=tee_type,
        attestation_key_type=attestation_key_type,
        body_version=body_version,
        qe_vendor_id=data[12:28],
        tee_tcb_svn=body[0:16],
        mrseam=measurement(16),
        td_attributes=body[120:128],
        xfam=body[128:136],
        mrtd=measurement(136),
        mrconfigid=measurement(184),
        mrowner=measurement(232),
        mrownerconfig=measurement(280),
        rtmrs=(measurement(328), measurement(376), measurement(424), measurement(472)),
        report_data=body[520:584],
        signature_data_len=sig_len,
        length=end,
    )
