"""The fault matrix: each fault switch, what the provider makes of it, and what it costs.

Every row runs one create-to-RUNNING convergence through ``driver.converge_running`` (a
miniature reconcile) with one fault switched on, and pins the outcome and the exact
number of GCE calls, so a change that adds calls shows up here. The baseline row is the
fault-free cost. The fake is read-driven (one step per read), so counts are exact.
"""

from __future__ import annotations

import pytest

from dd_operator.errors import PermanentFailure, TransientFailure
from dd_operator.providers.gce import GceVmProvider

from .conftest import ZONES, vm_request
from .driver import converge_gone, converge_running
from .fake import FakeCompute, Fault

ROWS = [
    # (id, fault, expected outcome, transient errors seen, GCE calls)
    ("none", None, "RUNNING in a", 0, 7),
    (
        "429 insert",
        Fault(kind="http", method="instances.insert", status=429, retry_after=7, times=1),
        "RUNNING in a",
        1,
        11,
    ),
    (
        "403 rateLimitExceeded insert",
        Fault(
            kind="http", method="instances.insert", status=403, reason="rateLimitExceeded", times=1
        ),
        "RUNNING in a",
        1,
        11,
    ),
    (
        "500 get",
        Fault(kind="http", method="instances.get", status=500, times=1),
        "RUNNING in a",
        1,
        10,
    ),
    (
        "503 get",
        Fault(kind="http", method="instances.get", status=503, times=1),
        "RUNNING in a",
        1,
        10,
    ),
    (
        "503 operation get",
        Fault(kind="http", method="zoneOperations.get", status=503, times=1),
        "RUNNING in a",
        1,
        8,
    ),
    (
        "timeout insert",
        Fault(kind="delay", method="instances.insert", seconds=2.0, times=1),
        "RUNNING in a",
        1,
        6,
    ),
    (
        "zone exhausted a",
        Fault(kind="zone_exhausted", zone=ZONES[0], times=1),
        "RUNNING in b",
        1,
        12,
    ),
    (
        "quota exceeded a",
        Fault(kind="quota_exceeded", zone=ZONES[0], times=1),
        "RUNNING in b",
        1,
        12,
    ),
    ("operations purged", Fault(kind="purge_operations"), "RUNNING in a", 0, 7),
    ("403 forbidden", Fault(kind="http", status=403, reason="forbidden"), "PermissionDenied", 0, 3),
]


@pytest.mark.parametrize(
    ("fault", "outcome", "transients", "calls"), [r[1:] for r in ROWS], ids=[r[0] for r in ROWS]
)
async def test_fault_matrix(
    fault: Fault | None,
    outcome: str,
    transients: int,
    calls: int,
    fake: FakeCompute,
    provider: GceVmProvider,
) -> None:
    if fault is not None:
        fake.add_fault(fault)
    try:
        result = await converge_running(provider, vm_request())
    except PermanentFailure as exc:
        seen = exc.reason
        errors = 0
    else:
        assert result.vm is not None
        seen = f"RUNNING in {result.vm.zone[-1]}"
        errors = len(result.errors)
        assert all(isinstance(e, TransientFailure) for e in result.errors)
    assert (seen, errors, sum(fake.calls().values())) == (outcome, transients, calls), fake.calls()


TEARDOWN_ROWS = [
    # (id, fault, transient errors seen, GCE calls from RUNNING to confirmed gone)
    ("none", None, 0, 6),
    ("503 delete", Fault(kind="http", method="instances.delete", status=503, times=1), 1, 8),
    ("429 delete", Fault(kind="http", method="instances.delete", status=429, times=1), 1, 8),
    ("timeout delete", Fault(kind="delay", method="instances.delete", seconds=2.0, times=1), 1, 5),
    ("operations purged", Fault(kind="purge_operations"), 0, 6),
]


@pytest.mark.parametrize(
    ("fault", "transients", "calls"),
    [r[1:] for r in TEARDOWN_ROWS],
    ids=[r[0] for r in TEARDOWN_ROWS],
)
async def test_teardown_fault_matrix(
    fault: Fault | None, transients: int, calls: int, fake: FakeCompute, provider: GceVmProvider
) -> None:
    vm = (await converge_running(provider, vm_request())).vm
    assert vm is not None
    fake.reset_calls()
    if fault is not None:
        fake.add_fault(fault)
    gone = await converge_gone(provider, vm, ZONES)
    assert all(isinstance(e, TransientFailure) for e in gone.errors)
    assert fake.instance_names() == []
    assert (len(gone.errors), sum(fake.calls().values())) == (transients, calls), fake.calls()
