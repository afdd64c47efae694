"""``dd-devcluster``: the local cluster and the main job.

dd-devcluster build          build (or find cached) kube-apiserver + kubectl
dd-devcluster demo [--once]  the main job (see ``demo``)
dd-devcluster up             a bare cluster until Ctrl-C; prints its kubeconfig
"""

from __future__ import annotations

import contextlib
import signal
import sys

__all__ = ["main"]


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    command = args[0] if args else "demo"
    if command == "build":
        from .binaries import ensure_binaries

        bins = ensure_binaries()
        print(f"kube-apiserver: {bins.apiserver}\nkubectl: {bins.kubectl}")
    elif command == "demo":
        from .demo import run_demo

        sys.exit(run_demo(once="--once" in args[1:]))
    elif command == "up":
        from .cluster import LocalCluster

        with LocalCluster() as cluster:
            print(f"export KUBECONFIG={cluster.kubeconfig}\nkubectl: {cluster.binaries.kubectl}")
            with contextlib.suppress(KeyboardInterrupt):
                signal.pause()
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
