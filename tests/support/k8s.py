"""Read PreviewEnvironments the way a user does: through kubectl."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from dd_devcluster.cluster import LocalCluster

SHA_A = "a" * 40
SHA_B = "b" * 40


def preview(name: str, *, pr: int, sha: str, provider: str = "local", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "preview.devopsdefender.com/v1alpha1",
        "kind": "PreviewEnvironment",
        "metadata": {"name": name},
        "spec": {
            "repository": "acme/webapp",
            "pullRequest": pr,
            "commitSha": sha,
            "owner": "acme",
            "provider": provider,
            **spec,
        },
    }


def apply(cluster: LocalCluster, namespace: str, obj: dict[str, Any]) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(obj))


def get(cluster: LocalCluster, namespace: str, name: str) -> dict[str, Any] | None:
    r = cluster.kubectl("get", "pe", name, "-n", namespace, "-o", "json", check=False)
    return json.loads(r.stdout) if r.returncode == 0 else None


def condition(obj: dict[str, Any] | None, type_: str) -> dict[str, Any]:
    for c in (obj or {}).get("status", {}).get("conditions", []):
        if c["type"] == type_:
            return dict(c)
    return {}


def is_ready_with(obj: dict[str, Any] | None, sha: str) -> bool:
    return (
        condition(obj, "Ready").get("status") == "True"
        and (obj or {}).get("status", {}).get("vm", {}).get("build") == sha
    )


def describe(cluster: LocalCluster, namespace: str) -> str:
    out = cluster.kubectl("describe", "pe", "-n", namespace, check=False)
    ev = cluster.kubectl("get", "events", "-n", namespace, check=False)
    return f"{out.stdout}{out.stderr}\n{ev.stdout}"


def local_processes(uid: str) -> list[dict[str, str]]:
    """Live control planes of one environment, as ``ps`` would show them (/proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "environ").read_bytes()
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if stat.split(") ", 1)[-1].startswith("Z"):
            continue
        env = dict(
            item.decode(errors="replace").split("=", 1) for item in raw.split(b"\0") if b"=" in item
        )
        if "DD_INSTANCE" in env and uid in env.get("DD_OWNER_STAMP", ""):
            found.append({"pid": entry.name, **env})
    return found
