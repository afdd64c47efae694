"""Start and stop a real kube-apiserver (with embedded etcd) on loopback.

Used by the main job and by the test suite's ``cluster`` fixture, so both exercise
the same thing. Everything lives in one temporary directory that ``stop()`` removes;
the process is started in its own session so it can be stopped as a group.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .binaries import Binaries, ensure_binaries

__all__ = ["LocalCluster", "free_port"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalCluster:
    """A kube-apiserver on 127.0.0.1 with token auth and RBAC.

    ``kubeconfig`` authenticates as a ``system:masters`` admin. The token is random per
    cluster and lives only in the temporary directory.
    """

    def __init__(self, binaries: Binaries | None = None, *, workdir: Path | None = None) -> None:
        self.binaries = binaries or ensure_binaries()
        self._own_dir = workdir is None
        self.dir = Path(tempfile.mkdtemp(prefix="dd-cluster-")) if workdir is None else workdir
        self.port = free_port()
        self.etcd_port = free_port()
        self.token = secrets.token_hex(16)
        self.kubeconfig = self.dir / "kubeconfig"
        self.log_path = self.dir / "apiserver.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def _write_credentials(self) -> None:
        (self.dir / "certs").mkdir(exist_ok=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        (self.dir / "sa.key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            )
        )
        (self.dir / "sa.pub").write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        tokens = self.dir / "tokens.csv"
        tokens.write_text(f'{self.token},admin,admin-uid,"system:masters"\n')
        tokens.chmod(0o600)

    def _write_kubeconfig(self) -> None:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "dd-local",
                    "cluster": {
                        "server": self.server,
                        "certificate-authority": str(self.dir / "certs" / "apiserver.crt"),
                    },
                }
            ],
            "users": [{"name": "admin", "user": {"token": self.token}}],
            "contexts": [{"name": "dd-local", "context": {"cluster": "dd-local", "user": "admin"}}],
            "current-context": "dd-local",
        }
        self.kubeconfig.write_text(yaml.safe_dump(config))
        self.kubeconfig.chmod(0o600)

    def start(self, timeout: float = 120.0) -> LocalCluster:
        if not (self.dir / "tokens.csv").exists():
            self._write_credentials()
        args = [
            str(self.binaries.apiserver),
            f"--etcd-data-dir={self.dir / 'etcd'}",
            f"--etcd-port={self.etcd_port}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={self.port}",
            f"--cert-dir={self.dir / 'certs'}",
            "--service-cluster-ip-range=10.0.0.0/24",
            f"--service-account-issuer={self.server}",
            f"--service-account-key-file={self.dir / 'sa.pub'}",
            f"--service-account-signing-key-file={self.dir / 'sa.key'}",
            f"--token-auth-file={self.dir / 'tokens.csv'}",
            "--authorization-mode=RBAC",
            "--disable-admission-plugins=ServiceAccount",
            "--enable-priority-and-fairness=false",
            "--profiling=false",
            "--v=0",
        ]
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child for its lifetime
        self._proc = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        self._wait_ready(timeout)
        self._write_kubeconfig()
        return self

    def _wait_ready(self, timeout: float) -> None:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # the serving cert is self-signed and written at start
        deadline = time.monotonic() + timeout
        req = urllib.request.Request(  # noqa: S310 - our own https URL
            f"{self.server}/readyz", headers={"Authorization": f"Bearer {self.token}"}
        )
        while True:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"kube-apiserver exited with {self._proc.returncode}; log: {self.log_path}\n"
                    + self.log_tail()
                )
            with (
                contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError, OSError),
                urllib.request.urlopen(req, context=ctx, timeout=2) as resp,  # noqa: S310
            ):
                if resp.status == 200:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"kube-apiserver not ready after {timeout}s\n" + self.log_tail())
            time.sleep(0.25)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop_process(self) -> None:
        """Stop the apiserver but keep its data (a restart resumes from the same etcd)."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def restart(self, timeout: float = 120.0) -> None:
        self.stop_process()
        self.start(timeout)

    def stop(self) -> None:
        self.stop_process()
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def kubectl(
        self, *args: str, check: bool = True, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.binaries.kubectl), f"--kubeconfig={self.kubeconfig}", *args],
            check=check,
            capture_output=True,
            text=True,
            input=input,
            start_new_session=True,  # a Ctrl-C is for the caller to handle, not for kubectl
        )

    def env(self) -> dict[str, str]:
        """Environment for child processes (operator, CLI) that should talk to this cluster."""
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig)}

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
