"""pytest fixtures for the real kube-apiserver tier.

``cluster`` is session-scoped: one apiserver (about 5 s to start once built) with the
CRD installed. ``namespace`` gives every test a fresh namespace, because a bare
kube-apiserver has no namespace controller and never finishes deleting one.
If the binaries cannot be built the fixture errors: this tier never skips.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from dd_devcluster.cluster import LocalCluster

REPO = Path(__file__).resolve().parents[2]
CRD = REPO / "crds" / "previewenvironments.yaml"


@pytest.fixture(scope="session")
def cluster() -> Iterator[LocalCluster]:
    with LocalCluster() as c:
        c.kubectl("apply", "-f", str(CRD))
        c.kubectl(
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/previewenvironments.preview.devopsdefender.com",
        )
        yield c


@pytest.fixture
def namespace(cluster: LocalCluster, request: pytest.FixtureRequest) -> str:
    base = request.node.name.lower().replace("_", "-")
    name = f"{''.join(ch for ch in base if ch.isalnum() or ch == '-')[:40].strip('-')}-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", name)
    return name
