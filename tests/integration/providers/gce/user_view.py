"""The fake Compute API seen from outside, as the operator's user sees a real project.

``instances`` lists what ``gcloud compute instances list --filter labels.dd-uid=...``
would show, through the real SDK over HTTP (not the fake's in-process state), and
``operator_env`` points an operator process at the fake with test-sized timeouts.
Shared by the operator-level tests (tests/e2e, tests/reliability).
"""

from __future__ import annotations

from google.auth.credentials import AnonymousCredentials
from google.cloud import compute_v1

from .conftest import ZONES
from .fake import FakeCompute

__all__ = ["instances", "operator_env"]


def operator_env(compute: FakeCompute, **extra: str) -> dict[str, str]:
    """The operator's environment for ``provider: gce`` against ``compute``.

    A 2 s request timeout (so the ``delay`` fault is a timeout) and a 60 s zone cooldown
    (longer than any test, so a refused zone stays skipped while the test watches).
    """
    return {
        **compute.env(),
        "DD_GCP_ZONES": ",".join(ZONES),
        "DD_GCE_REQUEST_TIMEOUT_SECONDS": "2",
        "DD_GCE_ZONE_COOLDOWN_SECONDS": "60",
        **extra,
    }


def instances(compute: FakeCompute, uid: str) -> list[tuple[str, str, str]]:
    """``(name, zone, status)`` of every instance stamped with ``uid``, via the real SDK."""
    client = compute_v1.InstancesClient(
        transport="rest",
        client_options={"api_endpoint": compute.url},
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
    )
    try:
        pager = client.aggregated_list(
            request=compute_v1.AggregatedListInstancesRequest(
                project=compute.project, filter=f'labels.dd-uid = "{uid}"'
            )
        )
        return sorted(
            (i.name, i.zone.rsplit("/", 1)[-1], i.status)
            for _, scoped in pager
            for i in scoped.instances
        )
    finally:
        client.transport.close()  # type: ignore[no-untyped-call]
