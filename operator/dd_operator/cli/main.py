"""``dd-preview``: argument parsing and exit codes, nothing else.

The subcommands live in ``commands``; the exit codes and their meanings in ``outcome``.
This module reads the few GitHub Actions variables a CI job provides
(``GITHUB_EVENT_PATH``, ``GITHUB_OUTPUT``, ``GITHUB_ACTIONS``) and turns the error family
into exit codes once, here.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import DDError, NotFound, PermanentFailure, TransientFailure
from ..naming import object_name_for_pr
from . import commands
from .desired import CiOptions
from .events import Apply, EventError, EventPolicy, decide
from .outcome import ExitCode

if TYPE_CHECKING:
    from .client import PreviewClient

__all__ = ["build_parser", "main"]

DEFAULT_NAMESPACE = "dd-previews"

_EPILOG = """exit codes:
  0  ok: applied, deleted, nothing to do, or ready
  1  failed: a permanent condition, or the apiserver refused the request
  2  usage: bad flags or event file
  3  timeout (wait)
  4  not found
  5  refused by policy (fork pull request)
  6  Kubernetes API unreachable: re-run the job
"""


def _add_cluster_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-n",
        "--namespace",
        default=os.environ.get("DD_PREVIEW_NAMESPACE", DEFAULT_NAMESPACE),
        help="namespace of the PreviewEnvironment (default: $DD_PREVIEW_NAMESPACE or %(default)s)",
    )
    p.add_argument(
        "--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config, in-cluster)"
    )
    p.add_argument("--context", help="kubeconfig context")


def _add_target_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", nargs="?", help="object name (default: pr-N from --pr or the event)")
    p.add_argument("--pr", type=int, help="pull request number; the object is pr-N")
    p.add_argument("--event", type=Path, help="event payload (default: $GITHUB_EVENT_PATH)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dd-preview",
        description="Preview environments for pull requests, from CI.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)

    ci = sub.add_parser(
        "ci",
        help="apply or delete the PreviewEnvironment for a pull_request event",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ci.add_argument("--event", type=Path, help="event payload (default: $GITHUB_EVENT_PATH)")
    ci.add_argument(
        "--owner",
        default="",
        help="GitHub user or org allowed to log in (default: the repository's owner)",
    )
    ci.add_argument("--ttl", default="", help="lifetime such as 72h or 1d12h (default: none)")
    ci.add_argument(
        "--provider", choices=["gce", "local"], help="where the VM runs (default: the CRD's, local)"
    )
    ci.add_argument("--allow-drafts", action="store_true", help="also preview draft pull requests")
    ci.add_argument(
        "--allow-forks",
        action="store_true",
        help="also preview pull requests from forks (their code runs on your VMs)",
    )
    ci.add_argument(
        "--teardown-timeout",
        type=float,
        default=300.0,
        help="seconds to wait for a closing environment before re-creating it",
    )
    _add_cluster_flags(ci)

    wait = sub.add_parser(
        "wait",
        help="block until the environment is ready; print its URL",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_target_flags(wait)
    wait.add_argument(
        "--sha",
        default="",
        help="commit the environment must be running "
        "(default: the event's head commit, if an event is given)",
    )
    wait.add_argument("--timeout", type=float, default=900.0, help="seconds (default: %(default)s)")
    wait.add_argument("--interval", type=float, default=5.0, help="poll interval in seconds")
    _add_cluster_flags(wait)

    for command, text in (
        ("get", "show environments as a table"),
        ("describe", "show one environment in detail"),
    ):
        p = sub.add_parser(
            command, help=text, epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
        )
        _add_target_flags(p)
        p.add_argument("-o", "--output", choices=["human", "json"], default="human")
        _add_cluster_flags(p)
    return parser


def _event_path(args: argparse.Namespace, env: Mapping[str, str]) -> Path | None:
    if args.event is not None:
        return Path(args.event)
    raw = env.get("GITHUB_EVENT_PATH", "")
    return Path(raw) if raw else None


def _target(
    args: argparse.Namespace, env: Mapping[str, str], *, required: bool
) -> tuple[str | None, str]:
    """(object name, commit sha from the event) for wait/get/describe."""
    if args.name:
        return args.name, ""
    if args.pr is not None:
        if args.pr < 1:
            raise EventError("--pr must be 1 or more")
        return object_name_for_pr(args.pr), ""
    path = _event_path(args, env)
    if path is None:
        if required:
            raise EventError(
                "name the environment: NAME, --pr N, or --event PATH ($GITHUB_EVENT_PATH)"
            )
        return None, ""
    payload: Mapping[str, Any] = commands.load_event(path)
    decision = decide(payload, EventPolicy(allow_drafts=True, allow_forks=True))
    number = payload.get("pull_request", {}).get("number")
    if not isinstance(number, int):
        raise EventError(f"event file {path} has no pull_request.number")
    sha = decision.commit_sha if isinstance(decision, Apply) else ""
    return object_name_for_pr(number), sha


def _run(args: argparse.Namespace, env: Mapping[str, str], console: commands.Console) -> ExitCode:
    def client() -> PreviewClient:
        from .client import connect  # imported only when the cluster is needed

        return connect(args.kubeconfig, args.context)

    if args.command == "ci":
        path = _event_path(args, env)
        if path is None:
            raise EventError(
                "no event: pass --event PATH, or run in GitHub Actions ($GITHUB_EVENT_PATH)"
            )
        return commands.run_ci(
            commands.load_event(path),
            EventPolicy(allow_drafts=args.allow_drafts, allow_forks=args.allow_forks),
            CiOptions(
                namespace=args.namespace,
                owner=args.owner,
                ttl=args.ttl,
                provider=args.provider or "",
            ),
            client,
            console,
            teardown_timeout=args.teardown_timeout,
        )
    name, event_sha = _target(args, env, required=args.command != "get")
    c = client()
    try:
        if args.command == "wait":
            assert name is not None
            return commands.run_wait(
                c,
                args.namespace,
                name,
                console,
                commit_sha=args.sha or event_sha,
                timeout=args.timeout,
                interval=args.interval,
            )
        if args.command == "get":
            return commands.run_get(c, args.namespace, name, args.output, console)
        assert name is not None
        return commands.run_describe(c, args.namespace, name, args.output, console)
    finally:
        c.close()


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    environ = os.environ if env is None else env
    args = build_parser().parse_args(argv)
    output = environ.get("GITHUB_OUTPUT", "")
    console = commands.Console(
        out=sys.stdout,
        err=sys.stderr,
        github_output=Path(output) if output else None,
        in_actions=environ.get("GITHUB_ACTIONS") == "true",
    )
    try:
        return int(_run(args, environ, console))
    except EventError as exc:
        console.problem("dd-preview usage", str(exc))
        return int(ExitCode.USAGE)
    except NotFound as exc:
        console.problem("preview environment not found", str(exc))
        return int(ExitCode.NOT_FOUND)
    except PermanentFailure as exc:
        console.problem(f"dd-preview: {exc.reason}", str(exc))
        return int(ExitCode.FAILED)
    except TransientFailure as exc:
        console.problem("Kubernetes API unreachable", f"{exc}; re-run the job")
        return int(ExitCode.UNREACHABLE)
    except DDError as exc:
        console.problem("dd-preview", str(exc))
        return int(ExitCode.FAILED)


if __name__ == "__main__":
    sys.exit(main())
