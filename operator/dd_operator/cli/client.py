"""The ``dd-preview`` CLI's Kubernetes calls (the operator's own live in ``dd_operator.kube``).

Why a separate module: the CLI runs in CI with the job's kubeconfig, synchronously, and
needs only get/list/apply/delete of PreviewEnvironments plus their events; the operator's
``kube`` module serves kopf handlers. Both use the official client.

The kubernetes client's exceptions become ``dd_operator.errors`` here, at the edge:
404 is ``NotFound``; 401/403/409/422 (the apiserver refused, and will refuse again) are
``PermanentFailure`` carrying the apiserver's own message (it names the CEL rule that
failed); connection failures, 429 and 5xx are ``TransientFailure``. Messages never
include tokens or request headers.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar, cast

import urllib3.exceptions
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from ..errors import NotFound, PermanentFailure, TransientFailure
from ..model import PLURAL, VERSION
from ..naming import API_GROUP
from .desired import FIELD_MANAGER

__all__ = ["PreviewClient", "connect"]

T = TypeVar("T")

_TIMEOUT = (5.0, 30.0)
"""(connect, read) seconds per request: a hung API must not hang the CI job."""

_REFUSALS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    409: "Conflict",
    422: "Invalid",
}


def _status_message(exc: ApiException) -> str:
    """The apiserver's ``Status.message`` (what kubectl prints), trimmed."""
    try:
        body = json.loads(exc.body or "{}")
        message = str(body.get("message") or "")
    except (TypeError, ValueError):
        message = ""
    return (message or str(exc.reason or "")).strip()[:1000]


def _translate(what: str, call: Callable[[], T]) -> T:
    try:
        return call()
    except ApiException as exc:
        status = int(exc.status or 0)
        message = _status_message(exc)
        if status == 404:
            raise NotFound(f"{what}: not found") from exc
        if status in _REFUSALS:
            raise PermanentFailure(_REFUSALS[status], f"{what}: {message}") from exc
        raise TransientFailure(f"{what}: the Kubernetes API answered {status} {message}") from exc
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise TransientFailure(
            f"{what}: cannot reach the Kubernetes API ({type(exc).__name__})"
        ) from exc


class PreviewClient:
    """PreviewEnvironment calls over one ``ApiClient``."""

    def __init__(self, api_client: k8s.ApiClient) -> None:
        self._api_client = api_client
        self._objects = k8s.CustomObjectsApi(api_client)

    @property
    def server(self) -> str:
        return str(self._api_client.configuration.host)

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The object, or None when the apiserver says it does not exist."""
        try:
            return self._get(namespace, name)
        except NotFound:
            return None

    def _get(self, namespace: str, name: str) -> dict[str, Any]:
        result = _translate(
            f"get previewenvironment {namespace}/{name}",
            lambda: self._objects.get_namespaced_custom_object(
                API_GROUP, VERSION, namespace, PLURAL, name, _request_timeout=_TIMEOUT
            ),
        )
        return cast(dict[str, Any], result)

    def list_namespace(self, namespace: str, label_selector: str = "") -> list[dict[str, Any]]:
        result = _translate(
            f"list previewenvironments in {namespace}",
            lambda: self._objects.list_namespaced_custom_object(
                API_GROUP, VERSION, namespace, PLURAL,
                label_selector=label_selector, _request_timeout=_TIMEOUT,
            ),
        )
        return cast(list[dict[str, Any]], cast(dict[str, Any], result).get("items", []))

    def apply(self, body: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply as field manager ``dd-preview``.

        ``force``: CI is the authority for the fields it sets (the commit above all), so a
        conflicting hand edit of those fields is taken over rather than failing the job.
        """
        meta = body["metadata"]
        result = _translate(
            f"apply previewenvironment {meta['namespace']}/{meta['name']}",
            lambda: self._objects.patch_namespaced_custom_object(
                API_GROUP, VERSION, meta["namespace"], PLURAL, meta["name"], body,
                field_manager=FIELD_MANAGER, force=True,
                _content_type="application/apply-patch+yaml", _request_timeout=_TIMEOUT,
            ),
        )
        return cast(dict[str, Any], result)

    def delete(self, namespace: str, name: str) -> bool:
        """Ask for deletion; False when it was already gone. The operator's finalizer
        keeps the object until every cloud resource is removed."""
        try:
            _translate(
                f"delete previewenvironment {namespace}/{name}",
                lambda: self._objects.delete_namespaced_custom_object(
                    API_GROUP, VERSION, namespace, PLURAL, name, _request_timeout=_TIMEOUT
                ),
            )
        except NotFound:
            return False
        return True

    def events(self, namespace: str, name: str) -> list[dict[str, Any]]:
        """Events about the object, oldest first (what ``kubectl describe`` shows)."""
        # CoreV1Api takes seconds to import; only ``describe`` needs it.
        core = k8s.CoreV1Api(self._api_client)
        result = _translate(
            f"list events of previewenvironment {namespace}/{name}",
            lambda: core.list_namespaced_event(
                namespace,
                field_selector=f"involvedObject.name={name},involvedObject.kind=PreviewEnvironment",
                _request_timeout=_TIMEOUT,
            ),
        )
        serialize = self._api_client.sanitize_for_serialization
        events = [cast(dict[str, Any], serialize(e)) for e in result.items]  # type: ignore[no-untyped-call]
        events.sort(key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""))
        return events

    def close(self) -> None:
        self._api_client.close()  # type: ignore[no-untyped-call]


def connect(kubeconfig: str | None = None, context: str | None = None) -> PreviewClient:
    """The kubeconfig (``--kubeconfig``, ``$KUBECONFIG`` or ``~/.kube/config``), else the
    in-cluster service account, as kubectl and the official client do."""
    try:
        api_client = k8s_config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig, context=context
        )
        return PreviewClient(api_client)
    except (ConfigException, OSError) as kube_exc:
        if kubeconfig or context:
            raise PermanentFailure(
                "NoKubeconfig", f"cannot load kubeconfig {kubeconfig or ''}: {kube_exc}"
            ) from kube_exc
        configuration = k8s.Configuration()
        try:
            k8s_config.load_incluster_config(  # type: ignore[no-untyped-call]
                client_configuration=configuration
            )
        except ConfigException:
            raise PermanentFailure(
                "NoKubeconfig",
                "no kubeconfig found ($KUBECONFIG, ~/.kube/config) and not running in a cluster",
            ) from kube_exc
        return PreviewClient(k8s.ApiClient(configuration))
