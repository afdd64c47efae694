"""Quote bytes for tests: the real GCE TDX v4 quote, and v5 quotes rebuilt from it.

The v5 forms keep every measurement of the real quote, so one expected MRTD covers all.
"""

from __future__ import annotations

import struct
from pathlib import Path

REAL_V4_PATH = Path("/work/shared/testdata/tdx/gce-cos-113-tdx-quote-v4.dat")
"""A quote captured on a GCE Container-Optimized OS 113 TDX VM (nobody here wrote it)."""

REAL_V4_MRTD = (
    "dae67181d3d65e073ad8f95b7907d5e927bfe9761c9ff3e9b89734a45d8954db"
    "a41394c7717cb2735396c1d04231f94a"
)
"""Read by hand: ``data[184:232].hex()`` (header 48 + mrtd's offset 136 in the TD report)."""

REAL_V4_RTMR0 = (
    "3fa2f61f395b7f5feefb4ec2df61297f109ad8abcd6410c1b7df60f21f37b192"
    "97fc35e544039c7e1edece752afd17f6"
)


def real_v4() -> bytes:
    return REAL_V4_PATH.read_bytes()


def with_report_data(quote: bytes, report_data: bytes) -> bytes:
    """The v4 quote with its report data replaced (what a TD would return for that inblob)."""
    assert len(report_data) == 64
    return quote[: 48 + 520] + report_data + quote[48 + 584 :]


def v5_from_v4(v4: bytes, *, body_version: str = "1.0") -> bytes:
    body = v4[48 : 48 + 584]
    rest = v4[48 + 584 :]
    header = struct.pack("<H", 5) + v4[2:48]
    if body_version == "1.0":
        return header + struct.pack("<HI", 2, 584) + body + rest
    extra = bytes(range(16)) + bytes([0xAB]) * 48  # tee_tcb_svn2, mr_servicetd
    return header + struct.pack("<HI", 3, 648) + body + extra + rest
