"""The ``gce`` VM provider: Intel TDX instances through google-cloud-compute over REST.

What lives here: building the Instance (TDX, TERMINATE on maintenance, boot disk from an
image family, labels, the ``maxRunDuration`` backstop, the rendered user-data), zone
placement with an in-memory cooldown, and the mapping of google.api_core / requests
errors into ``dd_operator.errors``. What does not: deciding *when* to create, stop or
delete (``reconcile``), and the boot configuration itself (``gce_boot``).

Why these choices:

1. ``*_unary`` calls plus our own ``ZoneOperationsClient`` on the same endpoint. The SDK's
   ``ExtendedOperation.result()`` polls through a client built *without* our
   ``client_options`` (research/testing.md section 3), and would block a handler anyway.
   The operation name goes into status; ``check_operation`` looks at it on a later pass.
2. ``retry=None`` on every call. The SDK would retry a 503 for up to 600 s inside a thread;
   reconcile owns retries (with ``retry.backoff`` and the server's Retry-After).
3. ``get_vm`` asks the zone we last saw the VM in first, so a steady reconcile costs one
   call, and says "gone" only when every candidate zone answered 404.
4. The control plane's port rides in the instance metadata (``dd-control-plane-port``), so
   ``get_vm`` can build ``Vm.endpoint`` from the instance alone: ``http://<internal IP>:<port>``
   (the operator reaches VMs over the VPC; the public route is the tunnel).
5. ``dd-build`` label: the build sha, label-encoded (lowercase, at most 63 chars; a 40-hex
   commit sha fits whole), so ``Vm.build_sha`` needs no extra read.
6. No token in the instance: ``create_vm`` first stores the tunnel and attest tokens in
   Secret Manager (``gce_secrets``), and the user-data names those secrets. The VM reads
   them with its own service account, so one is required (``DD_GCP_SERVICE_ACCOUNT``,
   granted ``roles/secretmanager.secretAccessor``) and gets the ``cloud-platform`` scope
   (IAM, not scopes, then limits what it can do). The secrets belong to the environment,
   not to one VM (blue/green VMs share them): ``delete_secrets`` runs in teardown after
   the VMs and the tunnel are gone.
"""

from __future__ import annotations

import asyncio
import functools
import re
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import requests
from google.api_core import exceptions as api_exceptions
from google.auth import exceptions as auth_exceptions
from google.cloud import compute_v1

from .. import metrics
from ..errors import DDError, IncompleteListing, NotFound, PermanentFailure, TransientFailure
from ..naming import InstanceName, Stamp, gce_labels, insert_request_id
from ..retry import parse_retry_after
from ..settings import ConfigError, GceSettings
from .base import OperationKind, OperationState, PendingOperation, Vm, VmRequest
from .gce_boot import SecretRefs, render_user_data
from .gce_secrets import VmSecrets
from .gcp_auth import gcp_credentials

__all__ = ["BUILD_LABEL", "PORT_METADATA_KEY", "GceVmProvider", "ZoneCooldown"]

T = TypeVar("T")

BUILD_LABEL = "dd-build"
PORT_METADATA_KEY = "dd-control-plane-port"
VM_SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
"""Secret Manager accepts only the ``cloud-platform`` scope; the VM's service account's IAM
roles (secretAccessor, log and metric writer) are what limit it."""

_CAPACITY_CODES = frozenset(
    {"ZONE_RESOURCE_POOL_EXHAUSTED", "ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS", "QUOTA_EXCEEDED"}
)
_RATE_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})
_QUOTA_REASONS = frozenset({"quotaExceeded", "QUOTA_EXCEEDED"})
_TRANSPORT_ERRORS = (requests.RequestException, auth_exceptions.TransportError)
_CLUSTER_RE = re.compile(r"^[a-z0-9-]{1,63}$")


class ZoneCooldown:
    """Zones that recently ran out of capacity or quota, skipped until their time is up."""

    def __init__(self, seconds: float, clock: Callable[[], float]) -> None:
        self._seconds = seconds
        self._clock = clock
        self._until: dict[str, float] = {}

    def cool(self, zone: str) -> None:
        self._until[zone] = self._clock() + self._seconds

    def pick(self, zones: tuple[str, ...]) -> str | None:
        now = self._clock()
        return next((z for z in zones if self._until.get(z, 0.0) <= now), None)

    def wait(self, zones: tuple[str, ...]) -> float:
        now = self._clock()
        return max(0.0, min((self._until.get(z, 0.0) - now for z in zones), default=0.0))


def _label_value(text: str) -> str:
    return re.sub(r"[^a-z0-9_-]", "_", text.lower())[:63]


def _api_message(exc: api_exceptions.GoogleAPICallError) -> str:
    """The server's own message, without the method and URL the SDK prepends."""
    response = getattr(exc, "response", None)
    try:
        text = str(response.json()["error"]["message"]) if response is not None else ""
    except (ValueError, KeyError, TypeError, AttributeError):
        text = ""
    return (text or str(exc.message))[:300]


def _reasons(exc: api_exceptions.GoogleAPICallError) -> set[str]:
    found = {str(e.get("reason", "")) for e in exc.errors if isinstance(e, dict)}
    if exc.reason:
        found.add(exc.reason)
    return found


def _retry_after(exc: api_exceptions.GoogleAPICallError) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    return parse_retry_after(headers.get("Retry-After")) if headers is not None else None


def _invalid_reason(message: str) -> str:
    text = message.lower()
    if "machinetype" in text or "machine type" in text:
        return "InvalidMachineType"
    if "image" in text:
        return "InvalidImage"
    return "InvalidInstanceConfig"


def _not_found_reason(message: str) -> str:
    return "ImageNotFound" if "image" in message.lower() else "ResourceNotFound"


def _vm(instance: compute_v1.Instance) -> Vm:
    labels = dict(instance.labels)
    cluster, uid = labels.get("dd-cluster"), labels.get("dd-uid")
    endpoint = ""
    ip = instance.network_interfaces[0].network_i_p if instance.network_interfaces else ""
    port = next((i.value for i in instance.metadata.items if i.key == PORT_METADATA_KEY), "")
    if ip and port.isdigit():
        endpoint = f"http://{ip}:{port}"
    created = None
    if instance.creation_timestamp:
        try:
            created = datetime.fromisoformat(instance.creation_timestamp)
        except ValueError:
            created = None
    return Vm(
        name=InstanceName(instance.name),
        zone=instance.zone.rsplit("/", 1)[-1],
        status=instance.status,
        owner=(cluster, uid) if cluster and uid else None,
        build_sha=labels.get(BUILD_LABEL, ""),
        endpoint=endpoint,
        created_at=created,
    )


class GceVmProvider:
    """``VmProvider`` over Compute Engine; every SDK call runs in a worker thread."""

    def __init__(
        self, settings: GceSettings, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if not settings.project:
            raise ConfigError("DD_GCP_PROJECT is required for the gce provider")
        self._settings = settings
        options = {"api_endpoint": settings.endpoint} if settings.endpoint else None
        credentials = gcp_credentials(settings, scope="https://www.googleapis.com/auth/compute")
        self._instances = compute_v1.InstancesClient(
            transport="rest", client_options=options, credentials=credentials
        )
        self._operations = compute_v1.ZoneOperationsClient(
            transport="rest", client_options=options, credentials=credentials
        )
        self._secrets = VmSecrets(settings)
        self._cooldown = ZoneCooldown(settings.zone_cooldown_seconds, clock)
        self._last_zone: dict[str, str] = {}

    # -- plumbing ---------------------------------------------------------------------

    async def _call(self, method: Callable[..., T], **kwargs: Any) -> T:
        call = functools.partial(
            method, retry=None, timeout=self._settings.request_timeout_seconds, **kwargs
        )
        metrics.record_cloud_call("gce")
        return await asyncio.to_thread(call)

    def _failure(self, exc: Exception, action: str, zone: str = "") -> DDError:
        """Classify a failed call; capacity and quota answers also cool the zone."""
        metrics.record_cloud_error("gce", exc)
        if isinstance(exc, _TRANSPORT_ERRORS):
            return TransientFailure(f"GCE did not answer while {action} ({type(exc).__name__})")
        if isinstance(exc, auth_exceptions.GoogleAuthError):
            return TransientFailure(f"GCE credentials failed while {action}: check the key or ADC")
        if not isinstance(exc, api_exceptions.GoogleAPICallError):
            raise exc
        code, reasons, message = exc.code, _reasons(exc), _api_message(exc)
        if reasons & _QUOTA_REASONS or any(c in message for c in _CAPACITY_CODES):
            if zone:
                self._cooldown.cool(zone)
            return TransientFailure(f"GCE quota or capacity exhausted while {action}: {message}")
        if code == 429 or reasons & _RATE_REASONS:
            return TransientFailure(
                f"GCE rate limit while {action}; backing off", retry_after=_retry_after(exc)
            )
        if code in (401, 403):
            return PermanentFailure(
                "PermissionDenied",
                f"GCE refused {action}: {message}. Grant the operator's service account "
                "compute.instances.* on the project",
            )
        if code == 400:
            return PermanentFailure(_invalid_reason(message), f"GCE refused {action}: {message}")
        if code == 404:
            return PermanentFailure(_not_found_reason(message), f"GCE {action}: {message}")
        return TransientFailure(
            f"GCE answered {code} while {action}; retrying", retry_after=_retry_after(exc)
        )

    def _operation_failure(
        self, op: compute_v1.Operation, kind: OperationKind, zone: str
    ) -> DDError | None:
        """None when the operation succeeded (or failed in a way that means "done")."""
        errors = list(op.error.errors)
        if not errors and op.http_error_status_code < 400:
            return None
        codes = {e.code for e in errors}
        message = (errors[0].message if errors else op.http_error_message)[:300]
        what = f"{kind} of {op.target_link.rsplit('/', 1)[-1] or 'an instance'} in {zone}"
        if codes & _CAPACITY_CODES:
            self._cooldown.cool(zone)
            return TransientFailure(
                f"{what} failed: {sorted(codes & _CAPACITY_CODES)[0]}; the next attempt "
                "moves to another zone"
            )
        if "RESOURCE_ALREADY_EXISTS" in codes:
            return None
        if "RESOURCE_NOT_FOUND" in codes:
            if kind != "insert":
                return None
            return PermanentFailure(_not_found_reason(message), f"{what} failed: {message}")
        if codes & {"PERMISSION_DENIED", "FORBIDDEN"} or op.http_error_status_code == 403:
            return PermanentFailure("PermissionDenied", f"{what} was refused: {message}")
        if codes & {"INVALID_FIELD_VALUE", "BAD_REQUEST"} or op.http_error_status_code == 400:
            return PermanentFailure(_invalid_reason(message), f"{what} was refused: {message}")
        return TransientFailure(f"{what} failed: {message}")

    def _pending(
        self, kind: OperationKind, op: compute_v1.Operation, zone: str, name: InstanceName
    ) -> PendingOperation | None:
        if op.status == compute_v1.Operation.Status.DONE:
            failure = self._operation_failure(op, kind, zone)
            if failure is not None:
                raise failure
            return None
        return PendingOperation(kind=kind, name=op.name, zone=zone, target=name)

    def _instance(self, request: VmRequest, zone: str, secrets: SecretRefs) -> compute_v1.Instance:
        s = self._settings
        try:
            user_data = render_user_data(request.boot, secrets)
        except ValueError as exc:
            raise PermanentFailure("InvalidSpec", f"boot configuration: {exc}") from exc
        scheduling = compute_v1.Scheduling(on_host_maintenance="TERMINATE")
        if request.max_run_seconds:
            scheduling.max_run_duration = compute_v1.Duration(seconds=request.max_run_seconds)
            scheduling.instance_termination_action = "DELETE"
        nic = compute_v1.NetworkInterface(
            network=s.network,
            access_configs=[compute_v1.AccessConfig(name="External NAT", type_="ONE_TO_ONE_NAT")],
        )
        if s.subnetwork:
            nic.subnetwork = s.subnetwork
        labels = gce_labels(request.stamp, request.boot.env, request.pull_request)
        labels[BUILD_LABEL] = _label_value(request.boot.build_sha)
        instance = compute_v1.Instance(
            name=request.name,
            machine_type=f"zones/{zone}/machineTypes/{request.machine_type or s.machine_type}",
            confidential_instance_config=compute_v1.ConfidentialInstanceConfig(
                confidential_instance_type="TDX"
            ),
            scheduling=scheduling,
            disks=[
                compute_v1.AttachedDisk(
                    boot=True,
                    auto_delete=True,
                    initialize_params=compute_v1.AttachedDiskInitializeParams(
                        source_image=(
                            f"projects/{s.image_project}/global/images/family/{s.image_family}"
                        ),
                        disk_size_gb=request.disk_size_gb or s.disk_size_gb,
                    ),
                )
            ],
            network_interfaces=[nic],
            metadata=compute_v1.Metadata(
                items=[
                    compute_v1.Items(key="user-data", value=user_data),
                    compute_v1.Items(key=PORT_METADATA_KEY, value=str(request.boot.port)),
                ]
            ),
            labels=labels,
        )
        if s.service_account:
            instance.service_accounts = [
                compute_v1.ServiceAccount(email=s.service_account, scopes=list(VM_SCOPES))
            ]
        return instance

    # -- VmProvider -------------------------------------------------------------------

    async def get_vm(self, name: InstanceName, zones: tuple[str, ...]) -> Vm | None:
        candidates = zones or self._settings.zones
        last = self._last_zone.get(name)
        order = ((last,) if last else ()) + tuple(z for z in candidates if z != last)
        unknown: tuple[DDError, Exception] | None = None
        for zone in order:
            try:
                instance = await self._call(
                    self._instances.get, project=self._settings.project, zone=zone, instance=name
                )
            except api_exceptions.NotFound:
                continue
            except Exception as exc:
                unknown = unknown or (self._failure(exc, f"reading {name} in {zone}"), exc)
                continue
            self._last_zone[name] = zone
            return _vm(instance)
        if unknown is not None:
            raise unknown[0] from unknown[1]
        self._last_zone.pop(name, None)
        return None

    async def _store_secrets(self, request: VmRequest) -> SecretRefs:
        """Put the environment's tokens in Secret Manager; the VM gets only their names."""
        boot = request.boot
        if not (boot.tunnel_token or boot.attest_token):
            return SecretRefs()
        if not self._settings.service_account:
            raise PermanentFailure(
                "ServiceAccountRequired",
                "a GCE VM reads its tokens from Secret Manager with its own service account: "
                "set DD_GCP_SERVICE_ACCOUNT (granted roles/secretmanager.secretAccessor)",
            )
        labels = gce_labels(request.stamp, boot.env, request.pull_request)
        tunnel = attest = ""
        if boot.tunnel_token:
            tunnel = await self._secrets.store(
                request.stamp, "tunnel-token", boot.tunnel_token, labels
            )
        if boot.attest_token:
            attest = await self._secrets.store(
                request.stamp, "attest-token", boot.attest_token, labels
            )
        return SecretRefs(tunnel_token=tunnel, attest_token=attest)

    async def delete_secrets(self, stamp: Stamp) -> None:
        """Delete the environment's Secret Manager secrets (404 is done); call once its
        VMs are gone, since blue/green VMs share them."""
        await self._secrets.delete(stamp)

    async def create_vm(self, request: VmRequest) -> PendingOperation | None:
        zones = request.zones or self._settings.zones
        zone = self._cooldown.pick(zones)
        if zone is None:
            raise TransientFailure(
                f"every candidate zone ({', '.join(zones)}) recently ran out of capacity; "
                "trying again when the first one cools down",
                retry_after=self._cooldown.wait(zones),
            )
        secrets = await self._store_secrets(request)
        insert = compute_v1.InsertInstanceRequest(
            project=self._settings.project,
            zone=zone,
            instance_resource=self._instance(request, zone, secrets),
            request_id=insert_request_id(request.stamp, request.name, zone, request.attempt),
        )
        try:
            op = await self._call(self._instances.insert_unary, request=insert)
        except api_exceptions.Conflict:
            self._last_zone[request.name] = zone  # it exists already: get_vm will see it
            return None
        except Exception as exc:
            raise self._failure(exc, f"creating {request.name} in {zone}", zone) from exc
        self._last_zone[request.name] = zone
        return self._pending("insert", op, zone, request.name)

    async def check_operation(self, op: PendingOperation) -> OperationState:
        try:
            current = await self._call(
                self._operations.get,
                project=self._settings.project,
                zone=op.zone,
                operation=op.name,
            )
        except api_exceptions.NotFound:
            return OperationState(done=True)  # purged after completion: trust get_vm
        except Exception as exc:
            raise self._failure(exc, f"checking the {op.kind} of {op.target}") from exc
        if current.status != compute_v1.Operation.Status.DONE:
            return OperationState(done=False)
        return OperationState(done=True, error=self._operation_failure(current, op.kind, op.zone))

    async def _act(
        self, kind: OperationKind, method: Callable[..., compute_v1.Operation], vm: Vm
    ) -> PendingOperation | None:
        try:
            op = await self._call(
                method, project=self._settings.project, zone=vm.zone, instance=vm.name
            )
        except api_exceptions.NotFound as exc:
            if kind == "start":
                raise NotFound(f"VM {vm.name} in {vm.zone} is gone; it cannot start") from exc
            return None
        except Exception as exc:
            raise self._failure(exc, f"{kind} of {vm.name} in {vm.zone}") from exc
        return self._pending(kind, op, vm.zone, vm.name)

    async def start_vm(self, vm: Vm) -> PendingOperation | None:
        return await self._act("start", self._instances.start_unary, vm)

    async def stop_vm(self, vm: Vm) -> PendingOperation | None:
        return await self._act("stop", self._instances.stop_unary, vm)

    async def delete_vm(self, vm: Vm) -> PendingOperation | None:
        return await self._act("delete", self._instances.delete_unary, vm)

    async def list_vms(self, cluster_id: str) -> list[Vm]:
        if not _CLUSTER_RE.match(cluster_id):
            raise ValueError(f"cluster id {cluster_id!r} is not a GCE label value")
        request = compute_v1.AggregatedListInstancesRequest(
            project=self._settings.project,
            filter=f'labels.dd-cluster = "{cluster_id}"',
            max_results=500,
        )

        def every_page() -> list[compute_v1.Instance]:
            pager = self._instances.aggregated_list(
                request=request, retry=None, timeout=self._settings.request_timeout_seconds
            )
            found: list[compute_v1.Instance] = []
            for scope, scoped in pager:
                if str(getattr(scoped.warning, "code", "")) == "UNREACHABLE":
                    raise IncompleteListing("gce", f"{scope} was unreachable")
                found.extend(scoped.instances)
            return found

        metrics.record_cloud_call("gce")
        try:
            instances = await asyncio.to_thread(every_page)
        except IncompleteListing:
            raise
        except Exception as exc:
            failure = self._failure(exc, "listing instances")
            raise IncompleteListing("gce", str(failure)) from exc
        return [_vm(i) for i in instances if i.labels.get("dd-cluster") == cluster_id]

    async def close(self) -> None:
        self._instances.transport.close()  # type: ignore[no-untyped-call]
        self._operations.transport.close()  # type: ignore[no-untyped-call]
        self._secrets.close()
