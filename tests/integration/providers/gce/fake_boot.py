""" "Booting" a fake VM: run its control plane locally from its rendered user-data.

What a real VM does at boot, minus systemd and pip: cloud-init writes ``write_files``
(here: under a per-VM directory instead of ``/``), then ``dd-controlplane.service`` runs
``/bin/sh -c 'set -a; . controlplane.env; exec dd-controlplane'``. We run the same shell
sourcing of the same env file, then ``python -m dd_controlplane`` from this checkout.
So a test sees exactly what the boot configuration would give the VM, quoting included.

Each VM gets its own loopback address (``127.<a>.<b>.<c>``, handed out by the fake and
reported as the instance's ``networkIP`` and ``natIP``) and binds the port its env file
names (``DD_PORT``), so two VMs of one environment (blue/green) both use the real port.
Two fake-only variables are added: ``DD_BIND`` (that address) and ``DD_DEV_ATTESTATION=1``
(there is no TDX here; the control plane labels its quotes as development stand-ins).

With a tunnel token in the user-data, ``connector_hook(token, origin_url, up)`` plays
cloudflared: the Cloudflare fake can route the hostname to this VM. Like the real unit,
the connector comes up only after the unit's ``ExecStartPre`` health wait is satisfied:
if ``dd-cloudflared.service`` waits for ``/health`` (``gce_boot.health_wait_command``),
a watcher thread polls that URL on the VM's address and fires ``up=True`` once it
answers; a unit without the wait joins at once, exactly as the real one would (so a
regression in the boot configuration shows up as 502s in the edge tests). ``halt_vm``
stops the watcher and fires ``up=False`` only if the connector had come up.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

from dd_operator.providers.gce_boot import CLOUDFLARED_UNIT, ENV_FILE, TUNNEL_TOKEN_FILE

__all__ = ["BootedVm", "ConnectorHook", "boot_vm", "halt_vm"]

ConnectorHook = Callable[[str, str, bool], None]
"""``(tunnel_token, origin_url, up)``."""

_RUN = 'set -a; . "$1"; DD_BIND="$2"; DD_DEV_ATTESTATION=1; exec "$3" -m dd_controlplane'


_HEALTH_WAIT_RE = re.compile(r"^ExecStartPre=.*curl [^\n]*http://127\.0\.0\.1:(\d+)(/health)", re.M)


@dataclass
class BootedVm:
    process: subprocess.Popen[bytes]
    origin: str
    tunnel_token: str
    log_path: Path
    halted: threading.Event = field(default_factory=threading.Event)
    connected: threading.Event = field(default_factory=threading.Event)
    watcher: threading.Thread | None = None


def _connect_when_healthy(vm: BootedVm, health_url: str, hook: ConnectorHook) -> None:
    """cloudflared's ExecStartPre: poll ``/health`` until it answers, then join the tunnel."""
    with httpx.Client(timeout=1.0) as client:
        while not vm.halted.is_set() and vm.process.poll() is None:
            try:
                if client.get(health_url).is_success:
                    break
            except httpx.HTTPError:
                pass
            vm.halted.wait(0.05)
        else:
            return
    hook(vm.tunnel_token, vm.origin, True)
    vm.connected.set()


def boot_vm(user_data: str, ip: str, root: Path, hook: ConnectorHook | None) -> BootedVm:
    """Write the VM's files under ``root`` and start its control plane."""
    if not user_data.startswith("#cloud-config\n"):
        raise ValueError("user-data is not a #cloud-config document")
    doc = yaml.safe_load(user_data)
    files: dict[str, str] = {}
    for entry in doc.get("write_files", []):
        path = root / str(entry["path"]).lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(str(entry.get("content", "")))
        path.chmod(int(str(entry.get("permissions", "0644")), 8))
        files[str(entry["path"])] = str(entry.get("content", ""))
    env_file = root / ENV_FILE.lstrip("/")
    port = dict(t.split("=", 1) for t in shlex.split(files[ENV_FILE]))["DD_PORT"]
    log_path = root / "controlplane.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            ["/bin/sh", "-c", _RUN, "sh", str(env_file), ip, sys.executable],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=root,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(root)},
        )
    vm = BootedVm(process, f"http://{ip}:{port}", files.get(TUNNEL_TOKEN_FILE, ""), log_path)
    if vm.tunnel_token and hook is not None:
        wait = _HEALTH_WAIT_RE.search(files.get(CLOUDFLARED_UNIT, ""))
        if wait is None:  # the unit starts cloudflared at once: so does the fake
            hook(vm.tunnel_token, vm.origin, True)
            vm.connected.set()
        else:
            url = f"http://{ip}:{wait.group(1)}{wait.group(2)}"
            vm.watcher = threading.Thread(
                target=_connect_when_healthy, args=(vm, url, hook), daemon=True
            )
            vm.watcher.start()
    return vm


def halt_vm(vm: BootedVm, hook: ConnectorHook | None, grace: float = 5.0) -> None:
    """Stop the control plane (SIGTERM, then SIGKILL after ``grace``) and its connector."""
    vm.halted.set()
    if vm.watcher is not None:
        vm.watcher.join(5)
    if vm.connected.is_set() and hook is not None:
        hook(vm.tunnel_token, vm.origin, False)
    if vm.process.poll() is None:
        vm.process.terminate()
        deadline = time.monotonic() + grace
        while vm.process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        if vm.process.poll() is None:
            vm.process.kill()
            vm.process.wait()
