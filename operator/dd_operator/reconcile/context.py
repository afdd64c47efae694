"""Plain values a reconcile pass works on, parsed once from kopf's body."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..model import Spec
from ..naming import InstanceName, Stamp, instance_name

__all__ = ["Identity", "desired_instance"]


@dataclass(frozen=True)
class Identity:
    namespace: str
    name: str
    uid: str
    generation: int
    deleting: bool
    annotations: Mapping[str, str]

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any]) -> Identity:
        return cls(
            namespace=str(meta["namespace"]),
            name=str(meta["name"]),
            uid=str(meta["uid"]),
            generation=int(meta.get("generation") or 0),
            deleting=bool(meta.get("deletionTimestamp")),
            annotations=dict(meta.get("annotations") or {}),
        )

    def stamp(self, cluster_id: str) -> Stamp:
        return Stamp(cluster_id, self.namespace, self.name, self.uid)


def desired_instance(stamp: Stamp, spec: Spec) -> InstanceName:
    return instance_name(stamp, spec.env, spec.commit_sha)
