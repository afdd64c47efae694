"""Run the operator as a separate process against a local cluster.

The main job and the end-to-end tests both drive the operator exactly as a user
would: a process with a kubeconfig, killed or stopped from outside.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from .cluster import LocalCluster

__all__ = ["OperatorProcess"]


class OperatorProcess:
    def __init__(
        self,
        cluster: LocalCluster,
        *,
        state_dir: Path,
        namespaces: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        args: Sequence[str] = ("--standalone",),
        log_path: Path | None = None,
    ) -> None:
        self.cluster = cluster
        self.state_dir = state_dir
        self.namespaces = list(namespaces)
        self.extra_env = dict(env or {})
        self.args = list(args)
        self.log_path = log_path or (state_dir.parent / "operator.log")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> OperatorProcess:
        env = {
            **self.cluster.env(),
            "DD_LOCAL_STATE_DIR": str(self.state_dir),
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        }
        cmd = [sys.executable, "-m", "dd_operator", *self.args]
        for ns in self.namespaces:
            cmd += ["-n", ns]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child
        # Its own session: a Ctrl-C meant for the demo (or pytest) must not kill the operator
        # before it has released its finalizers; whoever started it stops it.
        self.proc = subprocess.Popen(
            cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        return self

    def kill(self) -> None:
        """SIGKILL: no cleanup handlers run, exactly like a crashed pod."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self, timeout: float = 20) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def restart(self) -> None:
        self.kill()
        self.start()

    def log_tail(self, lines: int = 60) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None
