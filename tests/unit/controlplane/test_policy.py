"""The registration admission rule, as a pure function."""

from __future__ import annotations

import base64
import json

import pytest

from dd_controlplane.registration.policy import Admit, Refuse, admit
from dd_controlplane.registration.registry import Registry

from .quote_samples import REAL_V4_MRTD, real_v4

KEY_A = b"a" * 32
KEY_B = b"b" * 32


def payload(**fields: object) -> bytes:
    body: dict[str, object] = {"owner": "acme", "vm_name": "worker-1"}
    body.update(fields)
    return json.dumps({k: v for k, v in body.items() if v is not None}).encode()


def decide(raw: bytes, key: bytes = KEY_A, **kw: object) -> Admit | Refuse:
    options: dict[str, object] = {
        "owner": "acme",
        "allowed_keys": frozenset({KEY_A}),
        "tofu": False,
        "pins": {},
    }
    options.update(kw)
    return admit(raw, key, **options)  # type: ignore[arg-type]


def test_allow_listed_key_with_the_right_owner_is_admitted() -> None:
    result = decide(payload())
    assert isinstance(result, Admit)
    assert (result.vm_name, result.pin, result.quote) == ("worker-1", False, None)


def test_owner_is_compared_case_insensitively_like_github() -> None:
    assert isinstance(decide(payload(owner="ACME")), Admit)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b"\xff\xfe", "not JSON"),
        (payload(owner="evil"), "owner 'evil'"),
        (payload(owner=None), "owner 'None'"),
        (payload(vm_name="Bad_Name"), "DNS label"),
        (payload(vm_name="x" * 64), "DNS label"),
        (payload(vm_name=7), "DNS label"),
        (payload(tdx_quote_b64="***"), "not base64"),
        (payload(tdx_quote_b64=5), "must be a string"),
        (payload(tdx_quote_b64=base64.b64encode(b"\x04\x00" + bytes(60)).decode()), "not TDX"),
    ],
)
def test_bad_payloads_are_refused_with_a_reason(raw: bytes, reason: str) -> None:
    result = decide(raw)
    assert isinstance(result, Refuse)
    assert reason in result.reason


def test_unknown_key_is_refused_without_tofu() -> None:
    assert decide(payload(), KEY_B) == Refuse("agent key is not on the allow-list")


def test_nothing_is_admitted_when_neither_list_nor_tofu_is_configured() -> None:
    assert isinstance(decide(payload(), KEY_A, allowed_keys=frozenset()), Refuse)


def test_tofu_pins_new_names_and_holds_them() -> None:
    first = decide(payload(), KEY_B, tofu=True)
    assert isinstance(first, Admit) and first.pin
    same = decide(payload(), KEY_B, tofu=True, pins={"worker-1": KEY_B})
    assert isinstance(same, Admit) and not same.pin
    other = decide(payload(), KEY_A, allowed_keys=frozenset(), tofu=True, pins={"worker-1": KEY_B})
    assert isinstance(other, Refuse) and "pinned to a different key" in other.reason


def test_a_real_quote_is_parsed_and_recorded() -> None:
    result = decide(payload(tdx_quote_b64=base64.b64encode(real_v4()).decode()))
    assert isinstance(result, Admit) and result.quote is not None
    record, new = Registry(clock=lambda: 100.0).record(result)
    assert new and record.mrtd == REAL_V4_MRTD


def test_registry_is_idempotent_per_name_and_key() -> None:
    now = [100.0]
    registry = Registry(clock=lambda: now[0])
    admitted = Admit(vm_name="w", public_key=KEY_A, quote=None, pin=False)
    first, new_first = registry.record(admitted)
    now[0] = 200.0
    again, new_again = registry.record(admitted)
    assert (new_first, new_again) == (True, False)
    assert again.agent_id == first.agent_id
    assert (again.registrations, again.first_registered, again.last_registered) == (2, 100.0, 200.0)
    assert len(registry.agents()) == 1
    rotated, new_rotated = registry.record(
        Admit(vm_name="w", public_key=KEY_B, quote=None, pin=False)
    )
    assert new_rotated and rotated.agent_id != first.agent_id
    assert registry.pins == {"w": KEY_B}
