"""A miniature reconcile for provider tests: drive one VM to RUNNING or to gone.

It follows the contract reconcile follows (providers/base.py): look up by name first,
create when absent, watch the operation on later passes, bump ``attempt`` after an
operation failed (so the retry gets a fresh requestId and the provider a fresh zone),
treat ``TransientFailure`` as "try again next pass" and ``PermanentFailure`` as final.
Each pass is one reconcile; nothing sleeps, so pass counts are call counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from dd_operator.errors import DDError, PermanentFailure, TransientFailure
from dd_operator.providers.base import PendingOperation, Vm, VmProvider, VmRequest

__all__ = ["Outcome", "converge_gone", "converge_running"]


@dataclass
class Outcome:
    vm: Vm | None = None
    passes: int = 0
    errors: list[DDError] = field(default_factory=list)


async def _finished(provider: VmProvider, pending: PendingOperation, out: Outcome) -> bool:
    """Whether the operation is over; a failed one is recorded (and raised if permanent)."""
    state = await provider.check_operation(pending)
    if state.done and state.error is not None:
        out.errors.append(state.error)
        if isinstance(state.error, PermanentFailure):
            raise state.error
        if pending.kind == "insert":
            raise _InsertFailed
    return state.done


class _InsertFailed(Exception):
    """The insert's operation ended in a transient error: next attempt, fresh requestId."""


async def converge_running(
    provider: VmProvider, request: VmRequest, *, max_passes: int = 30
) -> Outcome:
    out, pending, attempt = Outcome(), None, request.attempt
    for out.passes in range(1, max_passes + 1):
        try:
            if pending is not None:
                try:
                    if not await _finished(provider, pending, out):
                        continue
                except _InsertFailed:
                    attempt += 1
                pending = None
            vm = await provider.get_vm(request.name, request.zones)
            if vm is not None and vm.status == "RUNNING":
                out.vm = vm
                return out
            if vm is None:
                pending = await provider.create_vm(replace(request, attempt=attempt))
        except TransientFailure as exc:
            out.errors.append(exc)
    raise AssertionError(f"no RUNNING VM after {max_passes} passes: {out.errors!r}")


async def converge_gone(
    provider: VmProvider, vm: Vm, zones: tuple[str, ...], *, max_passes: int = 30
) -> Outcome:
    out, pending = Outcome(), None
    for out.passes in range(1, max_passes + 1):
        try:
            if pending is not None:
                if not await _finished(provider, pending, out):
                    continue
                pending = None
            current = await provider.get_vm(vm.name, zones)
            if current is None:
                return out
            pending = await provider.delete_vm(current)
        except TransientFailure as exc:
            out.errors.append(exc)
    raise AssertionError(f"VM {vm.name} still there after {max_passes} passes: {out.errors!r}")
