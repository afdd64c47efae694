"""Ordered, resumable teardown as data: DNS -> stop VMs -> delete VMs -> tunnel -> Secret.

Why this order: the CNAME goes first so nobody is routed to a dying environment; VMs
stop before the tunnel is deleted because Cloudflare refuses to delete a tunnel with
live connectors; the Secret goes last because a VM restart mid-teardown still needs
its token. Anything already gone (None) counts as done, so every step is idempotent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .observe import Observed
from .plan import BOOTING, HALTING, RUNNING, Step

__all__ = ["plan_teardown"]


def plan_teardown(*, status: Mapping[str, Any], observed: Observed, edge: bool) -> Step:
    op = status.get("operation") or {}
    if op.get("name"):
        if observed.operation is not None and not observed.operation.done:
            return Step("wait", delay=2, why=f"{op.get('kind')} in progress")
        return Step("finish-operation", str(op.get("target", "")))
    if edge and observed.dns is not None:
        return Step("delete-dns", observed.dns.id)
    present = {name: vm for name, vm in observed.vms.items() if vm is not None}
    for name, vm in present.items():
        if vm.status == RUNNING or vm.status in BOOTING:
            return Step("stop-vm", name)
    for name, vm in present.items():
        if vm.status in HALTING:
            return Step("wait", delay=2, why=f"{name} is stopping")
    for name in present:
        return Step("delete-vm", name)
    if edge and observed.tunnel is not None:
        return Step("delete-tunnel", observed.tunnel.id)
    if observed.secret is not None:
        return Step("delete-secret")
    return Step("done")
