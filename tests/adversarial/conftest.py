"""Every control plane a test's operator started dies with the test, even when it fails.

The local provider starts control planes in their own session (they outlive an operator,
like VMs), with the test's ``tmp_path`` as their working directory: that is how we find
exactly ours, by pid, and nobody else's.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest


def _control_planes_under(root: Path) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if b"DD_INSTANCE=" in (entry / "environ").read_bytes() and Path(
                os.readlink(entry / "cwd")
            ).is_relative_to(root):
                pids.append(int(entry.name))
    return pids


@pytest.fixture(autouse=True)
def no_stray_control_planes(tmp_path: Path) -> Iterator[None]:
    yield
    for pid in _control_planes_under(tmp_path):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
