"""A GCE environment's VM secrets in Secret Manager: store before boot, delete at teardown.

Why Secret Manager: instance metadata (where ``user-data`` lives) is readable by anyone
with ``compute.instances.get``, project viewers included. So the tunnel token and the
attest token go into one secret per environment and kind (``naming.vm_secret_id``,
labelled with ``naming.gce_labels``), and the VM's boot configuration carries only their
resource names; the VM reads the values at boot with its own service account
(``gce_boot``). That service account needs ``roles/secretmanager.secretAccessor``; we do
not set per-secret IAM here, so grant it on the project (or on the ``dd-*`` secrets by an
IAM condition on ``resource.name``). The operator's account needs
``roles/secretmanager.admin`` (create, add versions, read the latest to compare, delete).

Idempotent store: read the latest version; equal value -> nothing to do (one call in the
steady state, and blue/green VMs share the versions); missing secret -> create it (409 =
someone already did) and add a version; different value (a new tunnel token) -> add a
version. Old versions are not disabled: ``latest`` is what a booting VM reads, and a
changed token happens only when the tunnel is re-created. Deleting the secret deletes
every version.

Errors map to ``dd_operator.errors``, chained with ``from exc``; messages name the secret
id, never its value.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeVar

import requests
from google.api_core import exceptions as api_exceptions
from google.auth import exceptions as auth_exceptions
from google.cloud import secretmanager

from .. import metrics
from ..errors import DDError, NotFound, PermanentFailure, TransientFailure
from ..naming import Stamp, vm_secret_id
from ..retry import parse_retry_after
from ..settings import GceSettings
from .gcp_auth import gcp_credentials

__all__ = ["SECRET_KINDS", "SecretKind", "VmSecrets"]

T = TypeVar("T")
SecretKind = Literal["tunnel-token", "attest-token"]
SECRET_KINDS: tuple[SecretKind, ...] = ("tunnel-token", "attest-token")
_TRANSPORT_ERRORS = (requests.RequestException, auth_exceptions.TransportError)


def _failure(exc: Exception, action: str) -> DDError:
    metrics.record_cloud_error("secretmanager", exc)
    if isinstance(exc, _TRANSPORT_ERRORS):
        return TransientFailure(
            f"Secret Manager did not answer while {action} ({type(exc).__name__})"
        )
    if isinstance(exc, auth_exceptions.GoogleAuthError):
        return TransientFailure(f"Secret Manager credentials failed while {action}")
    if not isinstance(exc, api_exceptions.GoogleAPICallError):
        raise exc
    code = exc.code or 0
    message = str(exc.message)[:200]
    if code == 404:
        return NotFound(f"Secret Manager: {action}: not found")
    if code in (401, 403):
        return PermanentFailure(
            "PermissionDenied",
            f"Secret Manager refused {action}: {message}. Grant the operator's service "
            "account roles/secretmanager.admin on the project",
        )
    if code == 400:
        return PermanentFailure("InvalidSecret", f"Secret Manager refused {action}: {message}")
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    retry_after = parse_retry_after(headers.get("Retry-After")) if headers is not None else None
    return TransientFailure(
        f"Secret Manager answered {code} while {action}; retrying", retry_after=retry_after
    )


class VmSecrets:
    """Store and delete an environment's VM secrets; every SDK call runs in a thread."""

    def __init__(self, settings: GceSettings) -> None:
        self._settings = settings
        options = (
            {"api_endpoint": settings.secret_manager_endpoint}
            if settings.secret_manager_endpoint
            else None
        )
        self._client = secretmanager.SecretManagerServiceClient(
            transport="rest",
            client_options=options,
            credentials=gcp_credentials(
                settings, scope="https://www.googleapis.com/auth/cloud-platform"
            ),
        )

    def resource_name(self, stamp: Stamp, kind: SecretKind) -> str:
        """``projects/P/secrets/S``: what the VM's boot configuration carries."""
        return self._client.secret_path(self._settings.project, vm_secret_id(stamp, kind))

    async def _call(self, method: Callable[..., T], **kwargs: Any) -> T:
        call = functools.partial(
            method, retry=None, timeout=self._settings.request_timeout_seconds, **kwargs
        )
        metrics.record_cloud_call("secretmanager")
        return await asyncio.to_thread(call)

    async def _latest(self, name: str) -> bytes | None:
        """The latest version's bytes; None when the secret or its versions do not exist."""
        try:
            answer = await self._call(
                self._client.access_secret_version, name=f"{name}/versions/latest"
            )
        except (api_exceptions.NotFound, api_exceptions.FailedPrecondition):
            return None  # no secret, no version, or the latest one disabled: add one
        except Exception as exc:
            raise _failure(exc, f"reading {name.rsplit('/', 1)[-1]}") from exc
        return bytes(answer.payload.data)

    async def store(
        self, stamp: Stamp, kind: SecretKind, value: str, labels: Mapping[str, str]
    ) -> str:
        """Make ``value`` the latest version of the environment's ``kind`` secret."""
        name = self.resource_name(stamp, kind)
        secret_id = name.rsplit("/", 1)[-1]
        data = value.encode()
        latest = await self._latest(name)
        if latest == data:
            return name
        if latest is None:
            try:
                await self._call(
                    self._client.create_secret,
                    parent=f"projects/{self._settings.project}",
                    secret_id=secret_id,
                    secret=secretmanager.Secret(
                        replication=secretmanager.Replication(
                            automatic=secretmanager.Replication.Automatic()
                        ),
                        labels=dict(labels),
                    ),
                )
            except api_exceptions.Conflict:
                pass  # created by an earlier attempt whose answer we never read
            except Exception as exc:
                raise _failure(exc, f"creating {secret_id}") from exc
        try:
            await self._call(
                self._client.add_secret_version,
                parent=name,
                payload=secretmanager.SecretPayload(data=data),
            )
        except Exception as exc:
            raise _failure(exc, f"adding a version to {secret_id}") from exc
        return name

    async def delete(self, stamp: Stamp) -> None:
        """Delete every kind of this environment's secrets; a 404 counts as done."""
        for kind in SECRET_KINDS:
            name = self.resource_name(stamp, kind)
            try:
                await self._call(self._client.delete_secret, name=name)
            except api_exceptions.NotFound:
                continue
            except Exception as exc:
                raise _failure(exc, f"deleting {name.rsplit('/', 1)[-1]}") from exc

    def close(self) -> None:
        self._client.transport.close()  # type: ignore[no-untyped-call]
