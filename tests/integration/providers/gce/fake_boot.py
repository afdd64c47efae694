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
cloudflared: the Cloudflare fake can route the hostname to this VM. It is called from
the fake's server thread.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from dd_operator.providers.gce_boot import ENV_FILE, TUNNEL_TOKEN_FILE

__all__ = ["BootedVm", "ConnectorHook", "boot_vm", "halt_vm"]

ConnectorHook = Callable[[str, str, bool], None]
"""``(tunnel_token, origin_url, up)``."""

_RUN = 'set -a; . "$1"; DD_BIND="$2"; DD_DEV_ATTESTATION=1; exec "$3" -m dd_controlplane'


@dataclass
class BootedVm:
    process: subprocess.Popen[bytes]
    origin: str
    tunnel_token: str
    log_path: Path


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
        hook(vm.tunnel_token, vm.origin, True)
    return vm


def halt_vm(vm: BootedVm, hook: ConnectorHook | None, grace: float = 5.0) -> None:
    """Stop the control plane (SIGTERM, then SIGKILL after ``grace``) and its connector."""
    if vm.tunnel_token and hook is not None:
        hook(vm.tunnel_token, vm.origin, False)
    if vm.process.poll() is None:
        vm.process.terminate()
        deadline = time.monotonic() + grace
        while vm.process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        if vm.process.poll() is None:
            vm.process.kill()
            vm.process.wait()
