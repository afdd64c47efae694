"""The seams between the reconcile logic and the clouds, declared by their consumer.

Each Protocol lists only the calls ``reconcile`` and ``reaper`` make (as CAPG's
``instancesInterface`` lists only Get, Insert and Delete). Implementations map their
SDK's errors into ``dd_operator.errors`` at their edge:

- a confirmed 404 is ``None`` from a ``get``/``find`` and "done" for a delete;
- any failed read raises ``TransientFailure`` (or ``PermanentFailure``): unknown is never gone;
- a listing that did not complete raises ``IncompleteListing``.

Every method is ``async``; adapters over synchronous SDKs run them in a thread.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol, runtime_checkable

import httpx

from ..errors import DDError
from ..naming import InstanceName, Stamp

__all__ = [
    "BootConfig",
    "DnsRecord",
    "EdgeProvider",
    "HoldsVmSecrets",
    "OperationState",
    "PendingOperation",
    "PreviewReport",
    "PullRequestReporter",
    "Tunnel",
    "Vm",
    "VmProvider",
    "VmRequest",
]

OperationKind = Literal["insert", "start", "stop", "delete"]


@dataclass(frozen=True)
class BootConfig:
    """What a VM runs: the control plane and, with an edge, cloudflared.

    The two tokens exist only in memory and in the VM's own boot configuration;
    ``repr`` hides them so they cannot leak through a log line.
    """

    env: str
    owner: str
    hostname: str
    build_sha: str
    port: int
    version: str = ""
    extra_env: Mapping[str, str] = field(default_factory=dict)
    tunnel_token: str = field(default="", repr=False)
    attest_token: str = field(default="", repr=False)
    """Bearer the operator uses for the VM's ``/cp/attest`` (one per environment)."""


@dataclass(frozen=True)
class VmRequest:
    name: InstanceName
    stamp: Stamp
    pull_request: int
    boot: BootConfig
    zones: tuple[str, ...]
    """Ordered preference; the provider skips zones it recently saw exhausted."""
    machine_type: str
    disk_size_gb: int
    max_run_seconds: int | None
    """Cloud-side TTL backstop (``scheduling.maxRunDuration``); None when there is no ttl."""
    attempt: int = 0
    """Bumped by reconcile after a failed insert, so the retry gets a fresh requestId."""


@dataclass(frozen=True)
class Vm:
    name: InstanceName
    zone: str
    status: str
    """GCE's vocabulary: PROVISIONING, STAGING, RUNNING, STOPPING, TERMINATED, ..."""
    owner: tuple[str, str] | None
    """``(cluster_id, uid)`` from the VM's stamp, or None when it carries none."""
    build_sha: str
    endpoint: str
    """Base URL where the operator reaches this VM's control plane directly ("" if none yet)."""
    created_at: datetime | None = None


@dataclass(frozen=True)
class PendingOperation:
    """A cloud operation in flight; recorded in status so a restart keeps watching it."""

    kind: OperationKind
    name: str
    zone: str
    target: InstanceName


@dataclass(frozen=True)
class OperationState:
    done: bool
    error: DDError | None = None
    """Set when the operation finished with an error (e.g. zone exhausted)."""


class VmProvider(Protocol):
    async def get_vm(self, name: InstanceName, zones: tuple[str, ...]) -> Vm | None:
        """The VM, or None when every candidate zone answered 404."""

    async def create_vm(self, request: VmRequest) -> PendingOperation | None:
        """Start creating; None when creation completed synchronously."""

    async def check_operation(self, op: PendingOperation) -> OperationState:
        """A purged operation (404) reports done; reconcile then trusts ``get_vm``."""

    async def start_vm(self, vm: Vm) -> PendingOperation | None: ...

    async def stop_vm(self, vm: Vm) -> PendingOperation | None: ...

    async def delete_vm(self, vm: Vm) -> PendingOperation | None:
        """A VM already gone (404) counts as deleted: returns None."""

    async def list_vms(self, cluster_id: str) -> list[Vm]:
        """Every VM stamped with ``cluster_id``, all zones, all pages, or IncompleteListing."""

    async def close(self) -> None: ...


@runtime_checkable
class HoldsVmSecrets(Protocol):
    """A VM provider that keeps an environment's tokens outside its VMs (gce: Secret Manager)."""

    async def delete_secrets(self, stamp: Stamp) -> None:
        """Delete them (404 is done); teardown calls it once the VMs are gone."""


@dataclass(frozen=True)
class Tunnel:
    id: str
    name: str
    connections: int = 0
    created_at: datetime | None = None


@dataclass(frozen=True)
class DnsRecord:
    id: str
    name: str
    content: str
    comment: str
    created_at: datetime | None = None


class EdgeProvider(Protocol):
    """Makes ``https://{hostname}`` reach an environment's VMs (Cloudflare Tunnel + CNAME)."""

    async def find_tunnel(self, stamp: Stamp) -> Tunnel | None:
        """By exact deterministic name, every page, ignoring soft-deleted tunnels."""

    async def create_tunnel(self, stamp: Stamp) -> Tunnel: ...

    async def configure_tunnel(
        self, tunnel: Tunnel, hostname: str, port: int, *, suspended: bool = False
    ) -> None:
        """Ingress: hostname -> http://localhost:{port} (``http_status:503`` while
        ``suspended``, so the URL says the environment is suspended), then http_status:404."""

    async def tunnel_token(self, tunnel: Tunnel) -> str: ...

    async def find_dns(self, hostname: str) -> DnsRecord | None:
        """The CNAME for hostname whoever owns it; the caller checks the stamp."""

    async def create_dns(self, stamp: Stamp, hostname: str, tunnel: Tunnel) -> DnsRecord: ...

    async def delete_dns(self, record: DnsRecord) -> None:
        """404 counts as done."""

    async def delete_tunnel(self, tunnel: Tunnel) -> None:
        """Cleans up connections first; raises TransientFailure while deletion is refused."""

    async def list_tunnels(self, cluster_id: str) -> list[Tunnel]: ...

    async def list_dns(self, cluster_id: str) -> list[DnsRecord]: ...

    def public_url(self, hostname: str) -> str: ...

    async def probe(self, hostname: str, path: str = "/health") -> httpx.Response:
        """GET ``path`` through the public hostname, the way a user reaches it."""

    async def close(self) -> None: ...


@dataclass(frozen=True)
class PreviewReport:
    """What a pull request is told about its environment."""

    repository: str
    pull_request: int
    commit_sha: str
    namespace: str
    name: str
    url: str
    ready: bool
    reason: str
    message: str
    expires_at: datetime | None
    deleted: bool = False
    failed: bool = False
    """The blocking reason is permanent (retrying will not fix it): deployment ``failure``."""
    uid: str = ""
    """The object's uid, written into the PR comment's hidden marker as the ownership stamp."""
    expiring_soon: bool = False
    """The ttl runs out soon: the comment says how to keep the environment."""


class PullRequestReporter(Protocol):
    async def report(self, report: PreviewReport) -> None:
        """Create or edit in place the one PR comment, and the deployment status."""

    async def close(self) -> None: ...
