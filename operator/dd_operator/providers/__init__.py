"""Providers: each cloud behind a narrow Protocol declared in ``base``.

``build_vm_providers`` / ``build_edge_provider`` are the only places that pick an
implementation. Cloud adapters are imported lazily, so the local default loads no SDK.
"""

from __future__ import annotations

from ..retry import RequestBudget
from ..settings import OperatorSettings
from .base import EdgeProvider, VmProvider

__all__ = ["build_edge_provider", "build_vm_providers"]


def build_vm_providers(settings: OperatorSettings) -> dict[str, VmProvider]:
    """``local`` always; ``gce`` when a project is configured."""
    from .local import LocalVmProvider

    providers: dict[str, VmProvider] = {
        "local": LocalVmProvider(settings.local, cluster_id=settings.cluster_id)
    }
    if settings.gce.project:
        from .gce import GceVmProvider

        providers["gce"] = GceVmProvider(settings.gce)
    return providers


def build_edge_provider(
    settings: OperatorSettings, budget: RequestBudget | None = None
) -> EdgeProvider | None:
    """None for ``DD_EDGE=none``: status.url is then the VM's own URL."""
    if settings.edge != "cloudflare":
        return None
    from .cloudflare import CloudflareEdgeProvider

    return CloudflareEdgeProvider(settings.cloudflare, budget)
