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

Secrets: the user-data holds no token, only ``secrets.json`` (Secret Manager resource
names) and ``fetch-secrets.py``. Like ``dd-controlplane.service``'s first ``ExecStartPre``,
the VM's shell runs that very script first, retrying every second as systemd's
``Restart=`` would, with ``secrets.json`` rewritten to point at the fake Secret Manager
(its API and its metadata token endpoint) and at this VM's directory; then it sources the
env file and the fetched ``attest.env`` (DD_ATTEST_TOKEN) and starts the control plane.

With a tunnel secret in ``secrets.json``, ``connector_hook(token, origin_url, up)`` plays
cloudflared with the token the script fetched: the Cloudflare fake can route the hostname
to this VM. Like the real unit, the connector comes up only once its token file exists and
the unit's ``ExecStartPre`` health wait is satisfied: if ``dd-cloudflared.service`` waits
for ``/health`` (``gce_boot.health_wait_command``), a watcher thread polls that URL on the
VM's address and fires ``up=True`` once it answers; a unit without the wait joins as soon
as the token is there, exactly as the real one would (so a regression in the boot
configuration shows up as 502s in the edge tests). ``halt_vm`` stops the watcher and fires
``up=False`` only if the connector had come up.
"""

from __future__ import annotations

import json
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

from dd_operator.providers.gce_boot import (
    CLOUDFLARED_UNIT,
    ENV_FILE,
    FETCH_SCRIPT,
    SECRETS_CONFIG,
    TUNNEL_TOKEN_FILE,
)

__all__ = ["BootedVm", "ConnectorHook", "boot_vm", "halt_vm"]

ConnectorHook = Callable[[str, str, bool], None]
"""``(tunnel_token, origin_url, up)``."""

_RUN = (
    'if [ -n "$4" ]; then until "$3" "$4" "$5"; do sleep 1; done; fi; '
    'set -a; . "$1"; if [ -n "$6" ]; then . "$6"; fi; '
    'DD_BIND="$2"; DD_DEV_ATTESTATION=1; exec "$3" -m dd_controlplane'
)
"""$1 env file, $2 address, $3 python, $4 fetch script, $5 its config, $6 attest env file."""


_HEALTH_WAIT_RE = re.compile(r"^ExecStartPre=.*curl [^\n]*http://127\.0\.0\.1:(\d+)(/health)", re.M)


@dataclass
class BootedVm:
    process: subprocess.Popen[bytes]
    origin: str
    tunnel_token: str
    """Empty until the connector has read its token file (the fetched secret)."""
    log_path: Path
    halted: threading.Event = field(default_factory=threading.Event)
    connected: threading.Event = field(default_factory=threading.Event)
    watcher: threading.Thread | None = None


def _connect_when_ready(
    vm: BootedVm, token_path: Path, health_url: str | None, hook: ConnectorHook
) -> None:
    """cloudflared: its token file exists and (with the ExecStartPre wait) ``/health``
    answers, then it joins the tunnel."""
    with httpx.Client(timeout=1.0) as client:
        while not vm.halted.is_set() and vm.process.poll() is None:
            try:
                if token_path.is_file() and token_path.read_text() and (
                    health_url is None or client.get(health_url).is_success
                ):
                    break
            except httpx.HTTPError:
                pass
            vm.halted.wait(0.05)
        else:
            return
    vm.tunnel_token = token_path.read_text()
    hook(vm.tunnel_token, vm.origin, True)
    vm.connected.set()


def _point_at_fakes(config: dict[str, object], root: Path, secret_manager: str) -> dict[str, object]:
    """``secrets.json`` as this fake VM reads it: the fake's API and metadata token
    endpoint, and output files under the VM's directory."""
    entries = config.get("secrets")
    assert isinstance(entries, list)
    return {
        "api": secret_manager,
        "token_url": f"{secret_manager}/computeMetadata/v1/instance/service-accounts/default/token",
        "secrets": [
            {**e, "path": str(root / str(e["path"]).lstrip("/"))} for e in entries
        ],
    }


def boot_vm(
    user_data: str, ip: str, root: Path, hook: ConnectorHook | None, *, secret_manager: str
) -> BootedVm:
    """Write the VM's files under ``root`` and start its control plane (after fetching its
    secrets from the fake Secret Manager at ``secret_manager``)."""
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
    fetch = ["", "", ""]  # script, config, attest env file: none without secrets
    tunnel_path: Path | None = None
    if SECRETS_CONFIG in files:
        config = _point_at_fakes(json.loads(files[SECRETS_CONFIG]), root, secret_manager)
        config_path = root / SECRETS_CONFIG.lstrip("/")
        config_path.write_text(json.dumps(config))
        fetch[:2] = [str(root / FETCH_SCRIPT.lstrip("/")), str(config_path)]
        for entry in config["secrets"]:  # type: ignore[attr-defined]
            if entry.get("env") == "DD_ATTEST_TOKEN":
                fetch[2] = entry["path"]
            elif entry["path"] == str(root / TUNNEL_TOKEN_FILE.lstrip("/")):
                tunnel_path = Path(entry["path"])
    log_path = root / "controlplane.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            ["/bin/sh", "-c", _RUN, "sh", str(env_file), ip, sys.executable, *fetch],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=root,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(root)},
        )
    vm = BootedVm(process, f"http://{ip}:{port}", "", log_path)
    if tunnel_path is not None and hook is not None:
        wait = _HEALTH_WAIT_RE.search(files.get(CLOUDFLARED_UNIT, ""))
        # without the wait the unit starts cloudflared as soon as it can: so does the fake
        url = f"http://{ip}:{wait.group(1)}{wait.group(2)}" if wait else None
        vm.watcher = threading.Thread(
            target=_connect_when_ready, args=(vm, tunnel_path, url, hook), daemon=True
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
