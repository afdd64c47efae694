"""``manifests/`` against the real apiserver: it installs, and RBAC is least privilege.

The install uses fixed namespaces (dd-preview-system, dd-previews), so this module owns
them in the session's cluster; no other test uses those names.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dd_devcluster.cluster import LocalCluster

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[3]
MANIFESTS = REPO / "manifests"
OPERATOR = "system:serviceaccount:dd-preview-system:dd-preview-operator"
PE = "previewenvironments.preview.devopsdefender.com"


@pytest.fixture(scope="module")
def installed(cluster: LocalCluster) -> Iterator[LocalCluster]:
    """CRDs first (a CR of a CRD created in the same apply cannot be mapped), then all."""
    cluster.kubectl("apply", "-f", str(MANIFESTS / "peering" / "crds.yaml"))
    cluster.kubectl(
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd/clusterkopfpeerings.kopf.dev",
        "crd/kopfpeerings.kopf.dev",
    )
    cluster.kubectl("apply", "-f", str(MANIFESTS / "namespace.yaml"))
    dry = cluster.kubectl("apply", "--dry-run=server", "-k", str(MANIFESTS), check=False)
    assert dry.returncode == 0, dry.stderr
    assert "deployment.apps/dd-preview-operator created (server dry run)" in dry.stdout
    cluster.kubectl("apply", "-k", str(MANIFESTS))
    yield cluster


def can_i(cluster: LocalCluster, *args: str, who: str = OPERATOR) -> bool:
    r = cluster.kubectl("auth", "can-i", *args, f"--as={who}", check=False)
    answer = r.stdout.strip()
    assert answer in {"yes", "no"}, r.stdout + r.stderr
    return answer == "yes"


def test_server_side_dry_run_accepts_every_object(installed: LocalCluster) -> None:
    r = installed.kubectl("apply", "--dry-run=server", "-k", str(MANIFESTS), check=False)
    assert r.returncode == 0, r.stderr
    kinds = {line.split("/")[0] for line in r.stdout.splitlines()}
    assert {
        "namespace",
        "serviceaccount",
        "clusterrole.rbac.authorization.k8s.io",
        "clusterrolebinding.rbac.authorization.k8s.io",
        "role.rbac.authorization.k8s.io",
        "rolebinding.rbac.authorization.k8s.io",
        "configmap",
        "deployment.apps",
        "customresourcedefinition.apiextensions.k8s.io",
        "clusterkopfpeering.kopf.dev",
    } <= kinds


def test_deployment_is_hardened(installed: LocalCluster) -> None:
    import json

    d = json.loads(
        installed.kubectl(
            "get", "deployment", "dd-preview-operator", "-n", "dd-preview-system", "-o", "json"
        ).stdout
    )
    pod = d["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["resources"]["requests"] == {"cpu": "100m", "memory": "256Mi"}
    assert container["envFrom"] == [{"configMapRef": {"name": "dd-preview-operator"}}]
    secret_refs = {
        e["valueFrom"]["secretKeyRef"]["name"]
        for e in container["env"]
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    assert secret_refs == {"dd-preview-cloudflare", "dd-preview-github"}
    namespace_env = next(e for e in container["env"] if e["name"] == "DD_OPERATOR_NAMESPACE")
    assert namespace_env["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    assert "--peering=dd-preview" in container["args"]


ALLOWED = [
    # kopf watches PreviewEnvironments everywhere; handlers patch them; the reaper deletes.
    ("list", PE, "--all-namespaces"),
    ("watch", PE, "--all-namespaces"),
    ("get", PE, "-n", "team-a"),
    ("patch", PE, "-n", "dd-previews"),
    ("update", PE, "-n", "dd-previews"),
    ("delete", PE, "-n", "dd-previews"),
    ("patch", PE, "--subresource=status", "-n", "dd-previews"),
    ("update", PE, "--subresource=status", "-n", "team-a"),
    ("create", "events", "-n", "dd-previews"),
    ("patch", "events", "-n", "team-a"),
    ("list", "customresourcedefinitions.apiextensions.k8s.io"),
    ("watch", "customresourcedefinitions.apiextensions.k8s.io"),
    ("list", "namespaces"),
    ("watch", "namespaces"),
    ("patch", "clusterkopfpeerings.kopf.dev/dd-preview"),
    ("watch", "clusterkopfpeerings.kopf.dev"),
    # The tunnel-token Secret, by name, in the preview namespace only.
    ("get", "secrets/pr-2-0123abcd-dd-preview", "-n", "dd-previews"),
    ("create", "secrets", "-n", "dd-previews"),
    ("update", "secrets", "-n", "dd-previews"),
    ("delete", "secrets", "-n", "dd-previews"),
    # reaper/runner.py: its Lease, in the operator's namespace only.
    ("get", "leases.coordination.k8s.io/dd-preview-reaper", "-n", "dd-preview-system"),
    ("update", "leases.coordination.k8s.io/dd-preview-reaper", "-n", "dd-preview-system"),
    ("create", "leases.coordination.k8s.io", "-n", "dd-preview-system"),
]

DENIED = [
    # No cluster-wide Secret access, no enumeration, nothing outside preview namespaces.
    ("get", "secrets", "--all-namespaces"),
    ("list", "secrets", "--all-namespaces"),
    ("list", "secrets", "-n", "dd-previews"),
    ("watch", "secrets", "-n", "dd-previews"),
    ("get", "secrets", "-n", "kube-system"),
    ("get", "secrets", "-n", "dd-preview-system"),
    ("create", "secrets", "-n", "team-a"),
    # CI creates PreviewEnvironments; the operator never does.
    ("create", PE, "-n", "dd-previews"),
    # Nothing about workloads, RBAC, namespaces' lifecycle or CRD definitions.
    ("create", "pods", "-n", "dd-previews"),
    ("create", "deployments.apps", "-n", "dd-preview-system"),
    ("delete", "namespaces"),
    ("update", "customresourcedefinitions.apiextensions.k8s.io"),
    ("create", "clusterrolebindings.rbac.authorization.k8s.io"),
    ("escalate", "clusterroles.rbac.authorization.k8s.io"),
    ("impersonate", "serviceaccounts", "-n", "dd-preview-system"),
    ("delete", "clusterkopfpeerings.kopf.dev/dd-preview"),
    ("get", "configmaps", "-n", "kube-system"),
    ("update", "leases.coordination.k8s.io/someone-elses", "-n", "dd-preview-system"),
    ("create", "leases.coordination.k8s.io", "-n", "kube-system"),
]


@pytest.mark.parametrize("check", ALLOWED, ids=lambda c: " ".join(c))
def test_operator_can(installed: LocalCluster, check: tuple[str, ...]) -> None:
    assert can_i(installed, *check), f"operator should be allowed: {' '.join(check)}"


@pytest.mark.parametrize("check", DENIED, ids=lambda c: " ".join(c))
def test_operator_cannot(installed: LocalCluster, check: tuple[str, ...]) -> None:
    assert not can_i(installed, *check), f"operator must NOT be allowed: {' '.join(check)}"


def test_ci_role_allows_the_cli_and_nothing_more(installed: LocalCluster) -> None:
    ci = "system:serviceaccount:dd-previews:ci-bot"
    installed.kubectl(
        "create",
        "rolebinding",
        "ci-bot",
        "-n",
        "dd-previews",
        "--role=dd-preview-ci",
        "--serviceaccount=dd-previews:ci-bot",
    )
    for verb in ("create", "patch", "get", "list", "watch", "delete"):
        assert can_i(installed, verb, PE, "-n", "dd-previews", who=ci), verb
    assert can_i(installed, "list", "events", "-n", "dd-previews", who=ci)
    assert not can_i(installed, "patch", PE, "--subresource=status", "-n", "dd-previews", who=ci)
    assert not can_i(installed, "get", "secrets", "-n", "dd-previews", who=ci)
    assert not can_i(installed, "create", PE, "-n", "team-a", who=ci)
