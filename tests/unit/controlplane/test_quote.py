"""DCAP quote parsing: the real GCE quote, v5 forms, and every way bytes can be wrong."""

from __future__ import annotations

import struct

import pytest

from dd_controlplane.attestation.quote import parse_quote
from dd_controlplane.errors import QuoteFormatError

from .quote_samples import REAL_V4_MRTD, REAL_V4_RTMR0, real_v4, v5_from_v4, with_report_data


def test_real_gce_v4_quote_yields_the_mrtd_read_by_hand() -> None:
    quote = parse_quote(real_v4())
    assert quote.version == 4
    assert quote.tee_type == 0x81
    assert quote.attestation_key_type == 2
    assert quote.body_version == "1.0"
    assert quote.mrtd.hex() == REAL_V4_MRTD
    assert quote.rtmrs[0].hex() == REAL_V4_RTMR0
    assert quote.rtmrs[3] == bytes(48)
    assert quote.report_data == bytes(64)
    assert quote.length == 4935  # the file is zero-padded to 8000 bytes


def test_report_data_is_read_from_its_offset() -> None:
    report_data = bytes(range(64))
    assert parse_quote(with_report_data(real_v4(), report_data)).report_data == report_data


@pytest.mark.parametrize("body_version", ["1.0", "1.5"])
def test_v5_quotes_carry_the_same_measurements(body_version: str) -> None:
    quote = parse_quote(v5_from_v4(real_v4(), body_version=body_version))
    assert quote.version == 5
    assert quote.body_version == body_version
    assert quote.mrtd.hex() == REAL_V4_MRTD
    assert quote.rtmrs[0].hex() == REAL_V4_RTMR0


def test_every_truncation_is_a_format_error_never_a_crash() -> None:
    data = real_v4()[:4935]
    for cut in range(4935):
        with pytest.raises(QuoteFormatError):
            parse_quote(data[:cut])


def test_every_truncated_v5_15_is_a_format_error() -> None:
    data = v5_from_v4(real_v4()[:4935], body_version="1.5")
    for cut in range(0, len(data), 7):
        with pytest.raises(QuoteFormatError):
            parse_quote(data[:cut])


def test_truncation_message_says_truncated() -> None:
    with pytest.raises(QuoteFormatError, match="truncated"):
        parse_quote(real_v4()[:300])


@pytest.mark.parametrize(
    ("patch_at", "value", "message"),
    [
        (0, struct.pack("<H", 3), "unsupported quote version 3"),
        (4, struct.pack("<I", 0), "not TDX"),
        (632, struct.pack("<I", 10**6), "truncated"),
        (632, struct.pack("<I", 16), "shorter than"),
        (636 + 130, struct.pack("<I", 10**6), "overruns"),
    ],
)
def test_malformed_fields_are_named(patch_at: int, value: bytes, message: str) -> None:
    data = bytearray(real_v4())
    data[patch_at : patch_at + len(value)] = value
    with pytest.raises(QuoteFormatError, match=message):
        parse_quote(bytes(data))


def test_non_zero_bytes_after_the_quote_are_refused() -> None:
    data = bytearray(real_v4())
    data[6000] = 1
    with pytest.raises(QuoteFormatError, match="after the quote"):
        parse_quote(bytes(data))


def test_v5_with_an_sgx_body_or_a_wrong_size_is_refused() -> None:
    v5 = bytearray(v5_from_v4(real_v4()))
    sgx = bytes(v5[:48]) + struct.pack("<HI", 1, 384) + bytes(v5[54:])
    with pytest.raises(QuoteFormatError, match="not a TD report"):
        parse_quote(sgx)
    wrong = bytes(v5[:48]) + struct.pack("<HI", 2, 600) + bytes(v5[54:])
    with pytest.raises(QuoteFormatError, match="must be 584 bytes"):
        parse_quote(wrong)


def test_garbage_never_escapes_as_another_exception() -> None:
    import random

    rng = random.Random(1234)
    for _ in range(2000):
        blob = bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 800)))
        if rng.random() < 0.5 and len(blob) >= 8:
            blob = struct.pack("<HHI", rng.choice([4, 5]), 2, 0x81) + blob[8:]
        with pytest.raises(QuoteFormatError):
            parse_quote(blob)
