"""``dd-preview-operator``: run the operator (kopf) with dd-preview's handlers."""

from __future__ import annotations

import argparse
import logging
import sys

__all__ = ["main"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="dd-preview-operator", description=__doc__)
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        help="watch only this namespace (repeatable); default: all namespaces",
    )
    parser.add_argument(
        "--peering",
        default="dd-preview",
        help="kopf peering object used to keep one active replica",
    )
    parser.add_argument(
        "--priority",
        type=int,
        default=0,
        help="peering priority; give each replica a different one",
    )
    parser.add_argument(
        "--standalone",
        action="store_true",
        help="no peering at all (a single replica, e.g. development)",
    )
    parser.add_argument(
        "--liveness",
        default="",
        help="serve kopf's liveness probe, e.g. http://0.0.0.0:8080/healthz",
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)

    import kopf

    from .settings import ConfigError, OperatorSettings

    try:
        OperatorSettings.from_env()  # fail fast, before connecting anywhere
    except ConfigError as exc:
        print(f"dd-preview-operator: configuration error: {exc}", file=sys.stderr)
        sys.exit(2)
    from . import handlers  # noqa: F401 - registers the handlers

    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("kopf.objects", "kopf.activities.probe", "httpx", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING if not args.verbose else logging.DEBUG)
    kopf.run(
        clusterwide=not args.namespace,
        namespaces=args.namespace,
        standalone=args.standalone,
        peering_name=None if args.standalone else args.peering,
        priority=args.priority,
        liveness_endpoint=args.liveness or None,
    )


if __name__ == "__main__":
    main()
