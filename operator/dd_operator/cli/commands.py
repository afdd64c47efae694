"""What each ``dd-preview`` subcommand does, given parsed arguments and a cluster client.

``main`` parses flags and maps errors to exit codes; this module runs the steps and
writes what a CI log reader needs. Output goes through ``Console`` so tests can read it
and GitHub Actions gets step outputs (``$GITHUB_OUTPUT``) and error annotations.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ..errors import NotFound, PermanentFailure
from ..naming import object_name_for_pr
from .desired import CiOptions, preview_body
from .events import Apply, Delete, EventError, EventPolicy, Ignore, Refuse, decide
from .outcome import ExitCode
from .readiness import Readiness, assess
from .render import actions_annotation, describe, table, to_json, wait_line

if TYPE_CHECKING:  # the kubernetes client takes a second to import; ignored events skip it
    from .client import PreviewClient

__all__ = ["Console", "load_event", "run_ci", "run_describe", "run_get", "run_wait"]

ClientFactory = Callable[[], "PreviewClient"]


@dataclass
class Console:
    out: TextIO
    err: TextIO
    github_output: Path | None = None
    """``$GITHUB_OUTPUT``: ``key=value`` lines become the step's outputs."""
    in_actions: bool = False
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def note(self, text: str) -> None:
        print(text, file=self.err, flush=True)

    def problem(self, title: str, text: str) -> None:
        """An error line, plus an annotation on the run's page when inside Actions."""
        self.note(f"error: {text}")
        if self.in_actions:
            self.note(actions_annotation("error", title, text))

    def output(self, **values: str) -> None:
        if self.github_output is None:
            return
        with self.github_output.open("a", encoding="utf-8") as fh:
            for key, value in values.items():
                fh.write(f"{key}={value}\n")


def load_event(path: Path) -> Mapping[str, Any]:
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EventError(f"event file {path} does not exist") from None
    except (OSError, ValueError) as exc:
        raise EventError(f"event file {path} is not readable JSON: {exc}") from None
    if not isinstance(payload, Mapping):
        raise EventError(f"event file {path} does not hold a JSON object")
    return payload


def _wait_until_gone(
    client: PreviewClient, namespace: str, name: str, timeout: float, console: Console,
    interval: float,
) -> None:
    console.say(
        f"previewenvironment {namespace}/{name} is still being torn down (the PR was closed "
        f"earlier); waiting up to {timeout:.0f}s for it to finish before re-creating it"
    )
    deadline = time.monotonic() + timeout
    while client.get(namespace, name) is not None:
        if time.monotonic() > deadline:
            raise PermanentFailure(
                "StillDeleting",
                f"previewenvironment {namespace}/{name} is still being deleted after "
                f"{timeout:.0f}s; check `kubectl describe pe -n {namespace} {name}` and re-run",
            )
        time.sleep(interval)


def run_ci(
    payload: Mapping[str, Any], policy: EventPolicy, options: CiOptions, connect: ClientFactory,
    console: Console, *, teardown_timeout: float = 300.0, poll_interval: float = 2.0,
) -> ExitCode:
    decision = decide(payload, policy)
    if isinstance(decision, Ignore):
        console.say(f"nothing to do: {decision.reason}")
        console.output(action="ignore")
        return ExitCode.OK
    if isinstance(decision, Refuse):
        console.problem("dd-preview refused this pull request", decision.reason)
        console.output(action="refuse")
        return ExitCode.REFUSED
    client = connect()
    try:
        if isinstance(decision, Delete):
            return _ci_delete(client, decision, options, console)
        return _ci_apply(client, decision, options, console, teardown_timeout, poll_interval)
    finally:
        client.close()


def _ci_delete(
    client: PreviewClient, event: Delete, options: CiOptions, console: Console
) -> ExitCode:
    name = object_name_for_pr(event.pull_request)
    where = f"previewenvironment {options.namespace}/{name}"
    if client.delete(options.namespace, name):
        console.say(
            f"deleted {where} ({event.repository}#{event.pull_request} was {event.action}); "
            "the operator removes its VM, tunnel and DNS record before the object disappears"
        )
    else:
        console.say(f"{where} does not exist; nothing to delete")
    console.output(action="delete", name=name, namespace=options.namespace)
    return ExitCode.OK


def _ci_apply(
    client: PreviewClient, event: Apply, options: CiOptions, console: Console,
    teardown_timeout: float, poll_interval: float,
) -> ExitCode:
    body = preview_body(event, options)
    name = body["metadata"]["name"]
    existing = client.get(options.namespace, name)
    if existing is not None and (existing.get("metadata") or {}).get("deletionTimestamp"):
        _wait_until_gone(client, options.namespace, name, teardown_timeout, console, poll_interval)
        existing = None
    client.apply(body)
    where = f"previewenvironment {options.namespace}/{name}"
    subject = f"{event.repository}#{event.pull_request}"
    sha = event.commit_sha[:12]
    if existing is None:
        console.say(f"created {where} for {subject} at commit {sha}")
    else:
        previous = str((existing.get("spec") or {}).get("commitSha", ""))
        if previous == event.commit_sha:
            console.say(f"{where} for {subject} is already at commit {sha}; applied unchanged")
        else:
            console.say(f"updated {where} for {subject}: commit {previous[:12]} -> {sha}")
    console.output(action="apply", name=name, namespace=options.namespace, sha=event.commit_sha)
    return ExitCode.OK


def run_wait(
    client: PreviewClient, namespace: str, name: str, console: Console, *, commit_sha: str = "",
    timeout: float = 900.0, interval: float = 5.0,
) -> ExitCode:
    where = f"previewenvironment {namespace}/{name}"
    target = f" at commit {commit_sha[:12]}" if commit_sha else ""
    console.note(f"waiting up to {timeout:.0f}s for {where}{target} to become ready")
    deadline = time.monotonic() + timeout
    last: tuple[str, str, str] | None = None
    readiness = Readiness("pending", condition="Ready", reason="NotFound")
    while True:
        obj = client.get(namespace, name)
        if obj is None:
            raise NotFound(f"{where} not found (did `dd-preview ci` run for this pull request?)")
        readiness = assess(obj, commit_sha=commit_sha)
        if readiness.state == "ready":
            console.note(wait_line(namespace, name, readiness))
            console.say(readiness.url)
            console.output(url=readiness.url)
            return ExitCode.OK
        if readiness.state != "pending":
            console.problem("preview environment failed", wait_line(namespace, name, readiness))
            return ExitCode.FAILED
        key = (readiness.condition, readiness.reason, readiness.message)
        if key != last:
            console.note(f"  {readiness.condition}: {readiness.reason or '-'}: {readiness.message}")
            last = key
        if time.monotonic() + interval > deadline:
            console.problem(
                "preview environment not ready in time",
                f"gave up after {timeout:.0f}s: " + wait_line(namespace, name, readiness),
            )
            return ExitCode.TIMEOUT
        time.sleep(interval)


def run_get(
    client: PreviewClient, namespace: str, name: str | None, output: str, console: Console,
) -> ExitCode:
    if name is None:
        objects = client.list_namespace(namespace)
        if output == "json":
            console.say(to_json({"apiVersion": "v1", "kind": "List", "items": objects}))
        else:
            console.say(table(objects, console.now()))
        return ExitCode.OK
    obj = client.get(namespace, name)
    if obj is None:
        raise NotFound(f"previewenvironment {namespace}/{name} not found")
    console.say(to_json(obj) if output == "json" else table([obj], console.now()))
    return ExitCode.OK


def run_describe(
    client: PreviewClient, namespace: str, name: str, output: str, console: Console,
) -> ExitCode:
    obj = client.get(namespace, name)
    if obj is None:
        raise NotFound(f"previewenvironment {namespace}/{name} not found")
    try:
        events = client.events(namespace, name)
    except PermanentFailure as exc:
        console.note(f"note: events are not readable with these credentials ({exc})")
        events = []
    if output == "json":
        console.say(to_json({"object": obj, "events": events}))
    else:
        console.say(describe(obj, events, console.now()))
    return ExitCode.OK
