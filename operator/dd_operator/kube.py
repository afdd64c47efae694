"""The one place that calls the Kubernetes API outside kopf.

kopf owns watching, finalizers and handler bookkeeping. We call the API directly for
what kopf does not do for a daemon: status merge-patches, the per-environment Secret
(tunnel and attest tokens), the live object list the reaper reads last, the reaper's
Lease, and events posted from outside a handler (the reaper's).
The ``kubernetes`` client is synchronous, so every call runs in a thread.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from .errors import IncompleteListing, NotFound, TransientFailure
from .model import KIND, PLURAL, VERSION
from .naming import API_GROUP

__all__ = ["Kube"]


def _load() -> client.ApiClient:
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config()  # type: ignore[no-untyped-call]
    return client.ApiClient()


def _mapped(exc: ApiException, what: str) -> Exception:
    if exc.status == 404:
        return NotFound(f"{what} not found")
    return TransientFailure(f"{what}: Kubernetes API answered {exc.status} {exc.reason}")


class Kube:
    def __init__(self, api: client.ApiClient | None = None) -> None:
        self.api = api or _load()
        self.custom = client.CustomObjectsApi(self.api)
        self.core = client.CoreV1Api(self.api)

    async def patch_status(self, namespace: str, name: str, patch: Mapping[str, Any]) -> None:
        def call() -> None:
            try:
                self.custom.patch_namespaced_custom_object_status(
                    API_GROUP, VERSION, namespace, PLURAL, name, {"status": dict(patch)}
                )
            except ApiException as exc:
                raise _mapped(exc, f"{KIND} {namespace}/{name}") from exc

        await asyncio.to_thread(call)

    async def read_secret(self, namespace: str, name: str) -> dict[str, str] | None:
        def call() -> dict[str, str] | None:
            try:
                s = self.core.read_namespaced_secret(name, namespace)
            except ApiException as exc:
                if exc.status == 404:
                    return None
                raise _mapped(exc, f"Secret {namespace}/{name}") from exc
            return {k: base64.b64decode(v).decode() for k, v in (s.data or {}).items()}

        return await asyncio.to_thread(call)

    async def write_secret(
        self, namespace: str, name: str, data: Mapping[str, str], *, owner: Mapping[str, str]
    ) -> None:
        """Create or replace; owned by the PreviewEnvironment (``owner``: name and uid)."""
        body = client.V1Secret(
            metadata=client.V1ObjectMeta(
                name=name,
                namespace=namespace,
                labels={"app.kubernetes.io/managed-by": "dd-preview"},
                owner_references=[
                    client.V1OwnerReference(
                        api_version=f"{API_GROUP}/{VERSION}",
                        kind=KIND,
                        name=owner["name"],
                        uid=owner["uid"],
                        controller=True,
                        block_owner_deletion=True,
                    )
                ],
            ),
            type="Opaque",
            string_data=dict(data),
        )

        def call() -> None:
            try:
                self.core.create_namespaced_secret(namespace, body)
            except ApiException as exc:
                if exc.status != 409:
                    raise _mapped(exc, f"Secret {namespace}/{name}") from exc
                try:
                    self.core.replace_namespaced_secret(name, namespace, body)
                except ApiException as exc2:
                    raise _mapped(exc2, f"Secret {namespace}/{name}") from exc2

        await asyncio.to_thread(call)

    async def delete_secret(self, namespace: str, name: str) -> None:
        def call() -> None:
            try:
                self.core.delete_namespaced_secret(name, namespace)
            except ApiException as exc:
                if exc.status != 404:
                    raise _mapped(exc, f"Secret {namespace}/{name}") from exc

        await asyncio.to_thread(call)

    async def list_environments(self) -> list[dict[str, Any]]:
        """Every PreviewEnvironment in the cluster, all pages, or IncompleteListing."""

        def call() -> list[dict[str, Any]]:
            items: list[dict[str, Any]] = []
            token: str | None = None
            while True:
                try:
                    page = cast(
                        dict[str, Any],
                        self.custom.list_cluster_custom_object(
                            API_GROUP, VERSION, PLURAL, limit=500, _continue=token
                        ),
                    )
                except ApiException as exc:
                    raise IncompleteListing("kubernetes", f"list answered {exc.status}") from exc
                items.extend(page.get("items", []))
                token = page.get("metadata", {}).get("continue")
                if not token:
                    return items

        return await asyncio.to_thread(call)

    async def delete_environment(self, namespace: str, name: str, uid: str) -> None:
        """Delete with a uid precondition: never the re-created object of the same name."""

        def call() -> None:
            try:
                self.custom.delete_namespaced_custom_object(
                    API_GROUP,
                    VERSION,
                    namespace,
                    PLURAL,
                    name,
                    body=client.V1DeleteOptions(preconditions=client.V1Preconditions(uid=uid)),
                )
            except ApiException as exc:
                if exc.status not in (404, 409):
                    raise _mapped(exc, f"{KIND} {namespace}/{name}") from exc

        await asyncio.to_thread(call)

    async def claim_lease(
        self, namespace: str, name: str, holder: str, duration_seconds: int
    ) -> dict[str, Any] | None:
        """Acquire or renew a coordination.k8s.io/v1 Lease; the Lease's metadata if we hold it.

        Taken over only once the current holder has not renewed for ``duration_seconds``;
        every write carries the resourceVersion it read, so two replicas racing for an
        expired Lease cannot both win (the loser gets 409 and None).
        """
        coordination = client.CoordinationV1Api(self.api)

        def call() -> dict[str, Any] | None:
            now = datetime.now(UTC)
            try:
                lease: Any = coordination.read_namespaced_lease(name, namespace)
            except ApiException as exc:
                if exc.status != 404:
                    raise _mapped(exc, f"Lease {namespace}/{name}") from exc
                body = client.V1Lease(
                    metadata=client.V1ObjectMeta(name=name, namespace=namespace),
                    spec=client.V1LeaseSpec(
                        holder_identity=holder, lease_duration_seconds=duration_seconds,
                        acquire_time=now, renew_time=now, lease_transitions=0,
                    ),
                )
                try:
                    created: Any = coordination.create_namespaced_lease(namespace, body)
                except ApiException as exc2:
                    if exc2.status == 409:
                        return None
                    raise _mapped(exc2, f"Lease {namespace}/{name}") from exc2
                return {"name": name, "namespace": namespace, "uid": created.metadata.uid}
            spec = lease.spec
            renewed = spec.renew_time or spec.acquire_time
            expired = renewed is None or now - renewed > timedelta(
                seconds=spec.lease_duration_seconds or duration_seconds
            )
            if spec.holder_identity != holder:
                if not expired:
                    return None
                spec.holder_identity = holder
                spec.acquire_time = now
                spec.lease_transitions = (spec.lease_transitions or 0) + 1
            spec.renew_time = now
            spec.lease_duration_seconds = duration_seconds
            try:
                coordination.replace_namespaced_lease(name, namespace, lease)
            except ApiException as exc:
                if exc.status == 409:
                    return None
                raise _mapped(exc, f"Lease {namespace}/{name}") from exc
            return {"name": name, "namespace": namespace, "uid": lease.metadata.uid}

        return await asyncio.to_thread(call)

    async def post_event(
        self, involved: Mapping[str, Any], type_: str, reason: str, message: str
    ) -> None:
        """A core/v1 Event about ``involved`` (apiVersion, kind, name, namespace, uid)."""
        namespace = str(involved.get("namespace") or "default")
        now = datetime.now(UTC)
        body = client.CoreV1Event(
            metadata=client.V1ObjectMeta(
                generate_name=f"{involved.get('name', 'dd-preview')}.", namespace=namespace
            ),
            involved_object=client.V1ObjectReference(
                api_version=involved.get("apiVersion"), kind=involved.get("kind"),
                name=involved.get("name"), namespace=namespace, uid=involved.get("uid"),
            ),
            type=type_, reason=reason, message=message[:1024], count=1,
            first_timestamp=now, last_timestamp=now,
            source=client.V1EventSource(component="dd-preview-operator"),
            reporting_component="dd-preview-operator", reporting_instance="dd-preview-operator",
        )

        def call() -> None:
            try:
                self.core.create_namespaced_event(namespace, body)
            except ApiException as exc:
                raise _mapped(exc, f"Event in {namespace}") from exc

        await asyncio.to_thread(call)

    def close(self) -> None:
        self.api.close()  # type: ignore[no-untyped-call]
