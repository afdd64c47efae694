"""The ``local`` VM provider: each "VM" is a control-plane process on this machine.

The embedded default for development, demos and tests. A VM is two things, like a
real one: a *record* on disk (the "disk": what was asked for) and, while it runs, a
*process*. The process is found by scanning ``/proc`` for the ``DD_INSTANCE`` marker
in its environment, so a restarted operator finds its processes by name (GET-by-name
on ground truth) and never starts a duplicate, even if it died between spawning a
process and writing the record.

Only the control plane shipped with the operator runs: no field of the object picks
a command, a path or an interpreter. Processes run in their own session so they
outlive an operator restart, exactly like VMs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from ..errors import TransientFailure
from ..model import refused_env_name
from ..naming import InstanceName, owner_of
from ..settings import LocalSettings
from .base import OperationState, PendingOperation, Vm, VmRequest

__all__ = ["LocalVmProvider"]

_MARKER = "DD_INSTANCE"
_STAMP = "DD_OWNER_STAMP"
_NAME_RE = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")
"""A VM name (GCE's grammar): names read back from status never address another path."""
_BOOT_KEYS = frozenset(
    {"DD_ENV", "DD_OWNER", "DD_HOSTNAME", "DD_BUILD_SHA", "DD_ATTEST_TOKEN", "DD_SESSION_SECRET"}
)
"""The variables ``_create`` itself puts in a record; any other must pass ``refused_env_name``."""


def _child_env(record_env: dict[str, str]) -> dict[str, str]:
    """A record's environment minus anything that would steer the interpreter or loader.

    Records written before the spec was checked (or edited on disk) are filtered here too.
    """
    return {
        k: v
        for k, v in record_env.items()
        if (k in _BOOT_KEYS or refused_env_name(k) is None) and "\x00" not in k + v
    }


@dataclass
class _Record:
    name: str
    owner: str
    port: int
    build_sha: str
    env: dict[str, str]
    stopped: bool
    created_at: str


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _process_env(pid: int) -> dict[str, str] | None:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return None
    env = {}
    for item in raw.split(b"\0"):
        key, sep, value = item.partition(b"=")
        if sep:
            env[key.decode(errors="replace")] = value.decode(errors="replace")
    return env


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except (OSError, IndexError):
        return True


class LocalVmProvider:
    """VmProvider over child processes; state lives under ``settings.state_dir/<cluster>``."""

    def __init__(self, settings: LocalSettings, *, cluster_id: str) -> None:
        self.settings = settings
        self.cluster_id = cluster_id
        self.dir = settings.state_dir / cluster_id
        self.dir.mkdir(parents=True, exist_ok=True)

    # -- records ("disks") -------------------------------------------------------------

    def _record_path(self, name: str) -> Path:
        return self.dir / f"{name}.json"

    def _read(self, name: str) -> _Record | None:
        if not _NAME_RE.fullmatch(name):
            return None
        try:
            return _Record(**json.loads(self._record_path(name).read_text()))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError) as exc:
            raise TransientFailure(f"local VM record {name} is unreadable: {exc}") from exc

    def _write(self, rec: _Record) -> None:
        path = self._record_path(rec.name)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(rec)))
        tmp.chmod(0o600)  # it holds the VM's environment, including its tokens
        tmp.replace(path)

    # -- processes ---------------------------------------------------------------------

    def _processes(self) -> dict[str, int]:
        """Instance name -> pid of every live control plane of this cluster and state dir.

        The state dir matters: two operators on one machine with the same cluster id (a
        dev cluster and a test run) must never see, and so never reap, each other's
        processes. Every control plane runs with its state dir as working directory.
        """
        found: dict[str, int] = {}
        mine = str(self.dir.resolve())
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            env = _process_env(int(entry.name))
            if not env or _MARKER not in env:
                continue
            try:
                if os.readlink(entry / "cwd") != mine:
                    continue
            except OSError:
                continue
            owner = owner_of(env.get(_STAMP))
            if owner and owner[0] == self.cluster_id and not _is_zombie(int(entry.name)):
                found[env[_MARKER]] = int(entry.name)
        return found

    def _spawn(self, rec: _Record) -> None:
        log = open(self.dir / f"{rec.name}.log", "ab")  # noqa: SIM115 - handed to the child
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/"),
            **_child_env(rec.env),
            "DD_PORT": str(rec.port),
            "DD_BIND": self.settings.host,
            "DD_DEV_ATTESTATION": "1",
            _MARKER: rec.name,
            _STAMP: rec.owner,
        }
        child = subprocess.Popen(
            [sys.executable, "-m", "dd_controlplane"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=str(self.dir),
        )
        log.close()
        # Until exec completes, /proc shows the parent's environment; wait for the marker so
        # the next get_vm sees this process and nothing starts a second one.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and child.poll() is None:
            if (_process_env(child.pid) or {}).get(_MARKER) == rec.name:
                return
            time.sleep(0.01)

    def _kill(self, pid: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if not Path(f"/proc/{pid}").exists() or _is_zombie(pid):
                return
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)

    def _vm(self, name: str, rec: _Record | None, pid: int | None) -> Vm:
        if rec is None:  # a live process with no record (we died mid-create): adopt it
            env = _process_env(pid) if pid else None
            env = env or {}
            return Vm(
                name=InstanceName(name),
                zone="local",
                status="RUNNING",
                owner=owner_of(env.get(_STAMP)),
                build_sha=env.get("DD_BUILD_SHA", ""),
                endpoint=f"http://{self.settings.host}:{env.get('DD_PORT', '0')}",
            )
        return Vm(
            name=InstanceName(name),
            zone="local",
            status="RUNNING" if pid else "TERMINATED",
            owner=owner_of(rec.owner),
            build_sha=rec.build_sha,
            endpoint=f"http://{self.settings.host}:{rec.port}" if pid else "",
            created_at=datetime.fromisoformat(rec.created_at),
        )

    # -- VmProvider ----------------------------------------------------------------------

    async def get_vm(self, name: InstanceName, zones: tuple[str, ...]) -> Vm | None:
        return await asyncio.to_thread(self._get, name)

    def _get(self, name: str) -> Vm | None:
        rec = self._read(name)
        pid = self._processes().get(name)
        if rec is None and pid is None:
            return None
        return self._vm(name, rec, pid)

    async def create_vm(self, request: VmRequest) -> PendingOperation | None:
        await asyncio.to_thread(self._create, request)
        return None

    def _create(self, request: VmRequest) -> None:
        if self._processes().get(request.name) is not None:
            return  # already running: creation is idempotent by name
        boot = request.boot
        rec = self._read(request.name) or _Record(
            name=request.name,
            owner=request.stamp.owner,
            port=_free_port(self.settings.host),
            build_sha=boot.build_sha,
            env={
                **boot.extra_env,
                "DD_ENV": boot.env,
                "DD_OWNER": boot.owner,
                "DD_HOSTNAME": boot.hostname,
                "DD_BUILD_SHA": boot.build_sha,
                "DD_ATTEST_TOKEN": boot.attest_token,
                # Generated on the "VM" itself, like a real VM's first boot: sessions survive
                # a control-plane restart, and the secret never passes through the cluster.
                "DD_SESSION_SECRET": secrets.token_urlsafe(32),
            },
            stopped=False,
            created_at=datetime.now(UTC).isoformat(),
        )
        rec.stopped = False
        self._write(rec)
        self._spawn(rec)

    async def check_operation(self, op: PendingOperation) -> OperationState:
        return OperationState(done=True)

    async def start_vm(self, vm: Vm) -> PendingOperation | None:
        await asyncio.to_thread(self._start, vm.name)
        return None

    def _start(self, name: str) -> None:
        rec = self._read(name)
        if rec is None or self._processes().get(name) is not None:
            return
        rec.stopped = False
        self._write(rec)
        self._spawn(rec)

    async def stop_vm(self, vm: Vm) -> PendingOperation | None:
        await asyncio.to_thread(self._stop, vm.name)
        return None

    def _stop(self, name: str) -> None:
        rec = self._read(name)
        if rec is not None:
            rec.stopped = True
            self._write(rec)
        pid = self._processes().get(name)
        if pid is not None:
            self._kill(pid)

    async def delete_vm(self, vm: Vm) -> PendingOperation | None:
        await asyncio.to_thread(self._delete, vm.name)
        return None

    def _delete(self, name: str) -> None:
        self._stop(name)
        if not _NAME_RE.fullmatch(name):
            return
        for path in (self._record_path(name), self.dir / f"{name}.log"):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    async def list_vms(self, cluster_id: str) -> list[Vm]:
        return await asyncio.to_thread(self._list)

    def _list(self) -> list[Vm]:
        procs = self._processes()
        names = set(procs) | {p.stem for p in self.dir.glob("*.json")}
        return [self._vm(n, self._read(n), procs.get(n)) for n in sorted(names)]

    async def close(self) -> None:
        return None
