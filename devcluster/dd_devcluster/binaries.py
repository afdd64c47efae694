"""Build-once cache of the local cluster's binaries.

The Go module in ``localcluster/`` pins the Kubernetes release. The cache key is a
hash of that module's files, so changing the pin (or our mains) rebuilds, and nothing
else does. A file lock keeps parallel test runs from building twice.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Binaries", "cache_root", "ensure_binaries", "source_dir"]


@dataclass(frozen=True)
class Binaries:
    apiserver: Path
    kubectl: Path
    version: str


def source_dir() -> Path:
    """``localcluster/`` in the checkout this package was installed from (editable install)."""
    here = Path(__file__).resolve().parents[2] / "localcluster"
    if not (here / "build.sh").exists():
        raise RuntimeError(
            f"localcluster sources not found at {here}; install dd-preview with pip -e"
        )
    return here


def cache_root() -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "dd-preview"
    return Path(os.environ.get("DD_PREVIEW_CACHE", default))


def _source_key(src: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in src.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(src)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:12]


def ensure_binaries(*, log: bool = True) -> Binaries:
    """Return the cached binaries, building them first if this version is missing."""
    src = source_dir()
    version = (src / "K8S_VERSION").read_text().strip()
    out = cache_root() / f"k8s-{version}-{_source_key(src)}"
    bins = Binaries(out / "dd-apiserver", out / "kubectl", version)
    if bins.apiserver.exists() and bins.kubectl.exists():
        return bins
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.parent / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if bins.apiserver.exists() and bins.kubectl.exists():
            return bins
        if log:
            print(
                f"building kube-apiserver + kubectl {version} from the Go modules into {out}"
                " (first run only; about 10 minutes on 2 cores)",
                file=sys.stderr,
                flush=True,
            )
        started = time.monotonic()
        subprocess.run([str(src / "build.sh"), str(out)], check=True)
        if log:
            print(f"built in {time.monotonic() - started:.0f}s", file=sys.stderr, flush=True)
    return bins
