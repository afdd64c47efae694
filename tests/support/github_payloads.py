"""GitHub's own example webhook payloads, from the npm package ``@octokit/webhooks-examples``.

Nobody here wrote these, so the CLI is tested against the shapes GitHub really sends.
The package is installed once, with npm, into the cache outside the checkout
(``~/.cache/dd-preview/npm``, or ``$DD_PREVIEW_CACHE/npm``). If it cannot be installed the
tests that use it fail: they never skip.
"""

from __future__ import annotations

import copy
import fcntl
import json
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

from dd_devcluster.binaries import cache_root

PACKAGE = "@octokit/webhooks-examples"
VERSION = "7.6.1"


def install_dir() -> Path:
    return cache_root() / "npm"


def _index() -> Path:
    return (
        install_dir()
        / "node_modules"
        / "@octokit"
        / "webhooks-examples"
        / "api.github.com"
        / "index.json"
    )


def _installed_version() -> str:
    package = _index().parents[1] / "package.json"
    try:
        return str(json.loads(package.read_text())["version"])
    except (OSError, ValueError, KeyError):
        return ""


def ensure_installed() -> Path:
    """Path of the package's ``index.json``, installing the pinned version when missing."""
    if _index().exists() and _installed_version() == VERSION:
        return _index()
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError(f"npm is needed to install {PACKAGE}@{VERSION} (apt-get install npm)")
    install_dir().mkdir(parents=True, exist_ok=True)
    with open(install_dir() / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (_index().exists() and _installed_version() == VERSION):
            result = subprocess.run(
                [
                    npm,
                    "install",
                    "--prefix",
                    str(install_dir()),
                    "--no-audit",
                    "--no-fund",
                    f"{PACKAGE}@{VERSION}",
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode != 0 or not _index().exists():
                raise RuntimeError(
                    f"npm install {PACKAGE}@{VERSION} failed ({result.returncode}):\n"
                    f"{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
                )
    return _index()


@cache
def _pull_request_examples() -> tuple[str, ...]:
    events = json.loads(ensure_installed().read_text())
    for event in events:
        if event.get("name") == "pull_request":
            return tuple(json.dumps(e) for e in event["examples"])
    raise RuntimeError(f"{PACKAGE}@{VERSION} has no pull_request examples")


def pull_request_examples() -> list[dict[str, Any]]:
    """Every ``pull_request`` example payload (fresh copies, safe to modify)."""
    return [json.loads(e) for e in _pull_request_examples()]


def pull_request_example(action: str) -> dict[str, Any]:
    """The first example payload for ``action`` (``opened``, ``synchronize``, ``closed`` ...)."""
    for example in pull_request_examples():
        if example["action"] == action:
            return copy.deepcopy(example)
    raise LookupError(f"{PACKAGE}@{VERSION} has no pull_request {action!r} example")
