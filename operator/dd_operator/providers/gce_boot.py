"""Render a VM's boot configuration: cloud-init user-data that starts the control plane.

Pure: ``render_user_data(boot) -> str``, no I/O. The GCE provider puts the result in the
instance's ``user-data`` metadata; the fake Compute API boots VMs from the same text.

What the VM gets (all root-owned, written by cloud-init ``write_files``):

- ``/etc/dd-preview/controlplane.env`` (0600): ``KEY='value'`` lines, every value quoted
  with ``shlex.quote`` and every key checked against ``^[A-Z_][A-Z0-9_]*$``. The unit
  *sources* it with ``/bin/sh`` (``set -a; . file``), so shell quoting is exactly the
  grammar that reads it back: a value like ``$(reboot)`` or ``'; rm -rf /`` stays a string.
- ``/etc/dd-preview/tunnel-token`` (0600), only with a tunnel token: read by
  ``cloudflared tunnel run --token-file`` (cloudflared >= 2025.4.0), so the token never
  appears on a command line or in ``ps``.
- ``dd-controlplane.service``: installs the control plane with pip into a venv at
  ``/opt/dd-preview`` (``dd-preview==<version>``, the version the operator asked for;
  an empty version means the operator's own version) before the first start, then runs
  ``dd-controlplane``. Installing in ``ExecStartPre`` (not ``runcmd``) means a failed
  download is retried by systemd's ``Restart=`` instead of leaving a dead VM.
- ``dd-cloudflared.service``, only with a tunnel token: installs the pinned cloudflared
  release, waits until the control plane's ``/health`` answers on this VM, then runs the
  tunnel. Why wait: a connector that joins before its origin listens is routed traffic
  at once, so during blue/green users would get 502 from the new VM while the old one
  still serves. ``After=`` only orders unit *starts*, not readiness, so the wait is an
  ``ExecStartPre`` loop (bounded by ``TimeoutStartSec``; systemd's ``Restart=`` retries).

Why ``yaml.safe_dump`` and never string formatting: spec values (extra env, owner,
hostname) come from whoever may create a PreviewEnvironment, and YAML built by hand is
one newline away from an injected ``runcmd``.

Secrets: GCE metadata is readable by anything on the VM and by project viewers. Only the
VM's own credentials go here (its tunnel token, its attest bearer); never an
account-level API credential.
"""

from __future__ import annotations

import re
import shlex
from importlib import metadata

import yaml

from .base import BootConfig

__all__ = [
    "CLOUDFLARED_UNIT",
    "CLOUDFLARED_VERSION",
    "CONTROL_PLANE_UNIT",
    "ENV_FILE",
    "HEALTH_WAIT_SECONDS",
    "TUNNEL_TOKEN_FILE",
    "health_wait_command",
    "render_user_data",
]

ENV_FILE = "/etc/dd-preview/controlplane.env"
TUNNEL_TOKEN_FILE = "/etc/dd-preview/tunnel-token"  # noqa: S105 - a path, not a secret
CONTROL_PLANE_UNIT = "/etc/systemd/system/dd-controlplane.service"
CLOUDFLARED_UNIT = "/etc/systemd/system/dd-cloudflared.service"
VENV = "/opt/dd-preview"
PACKAGE = "dd-preview"
CLOUDFLARED_VERSION = "2025.4.0"
"""The first release with ``tunnel run --token-file``."""
HEALTH_WAIT_SECONDS = 900
"""How long cloudflared waits for the first ``/health`` answer (pip install included)."""

_ENV_KEY_RE = re.compile(r"^[A-Z_][A-Z0-9_]*$")
_VERSION_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}$")
"""PEP 440-ish (no epochs): nothing a shell or a systemd unit line would interpret."""

_RESERVED = ("DD_ENV", "DD_OWNER", "DD_HOSTNAME", "DD_BUILD_SHA", "DD_PORT", "DD_ATTEST_TOKEN")


def _package_version(version: str) -> str:
    chosen = version or metadata.version(PACKAGE)
    if not _VERSION_RE.match(chosen):
        raise ValueError(f"control plane version {chosen!r} is not a package version")
    return chosen


def render_env_file(boot: BootConfig) -> str:
    """``KEY='value'`` lines for ``/bin/sh`` to source; extra env cannot override ours."""
    values: dict[str, str] = {}
    for key, value in boot.extra_env.items():
        if not _ENV_KEY_RE.match(key):
            raise ValueError(f"environment variable name {key!r} must match [A-Z_][A-Z0-9_]*")
        if key in _RESERVED:
            raise ValueError(f"environment variable {key} is set by the operator")
        values[key] = str(value)
    values.update(
        {
            "DD_ENV": boot.env,
            "DD_OWNER": boot.owner,
            "DD_HOSTNAME": boot.hostname,
            "DD_BUILD_SHA": boot.build_sha,
            "DD_PORT": str(boot.port),
        }
    )
    if boot.attest_token:
        values["DD_ATTEST_TOKEN"] = boot.attest_token
    return "".join(f"{key}={shlex.quote(value)}\n" for key, value in values.items())


def _control_plane_unit(version: str) -> str:
    pip_spec = shlex.quote(f"{PACKAGE}=={version}")
    install = (
        f"test -x {VENV}/bin/dd-controlplane || "
        f"(python3 -m venv {VENV} && {VENV}/bin/pip install --no-input {pip_spec})"
    )
    run = f"set -a; . {ENV_FILE}; exec {VENV}/bin/dd-controlplane"
    return (
        "[Unit]\nDescription=dd-preview control plane\n"
        "Wants=network-online.target\nAfter=network-online.target\n\n"
        "[Service]\n"
        f"ExecStartPre=/bin/sh -c {shlex.quote(install)}\n"
        f"ExecStart=/bin/sh -c {shlex.quote(run)}\n"
        "Restart=always\nRestartSec=5\n\n"
        "[Install]\nWantedBy=multi-user.target\n"
    )


def health_wait_command(port: int) -> str:
    """Shell loop that returns once ``/health`` answers 2xx on this VM (no ``$``: systemd
    would expand it)."""
    url = f"http://127.0.0.1:{int(port)}/health"
    return f"until curl -fsS -o /dev/null --max-time 2 {url}; do sleep 1; done"


def _cloudflared_unit(port: int) -> str:
    url = (
        "https://github.com/cloudflare/cloudflared/releases/download/"
        f"{CLOUDFLARED_VERSION}/cloudflared-linux-amd64.deb"
    )
    install = (
        "command -v cloudflared >/dev/null || "
        f"(curl -fsSL -o /run/cloudflared.deb {url} && dpkg -i /run/cloudflared.deb)"
    )
    return (
        "[Unit]\nDescription=dd-preview Cloudflare tunnel connector\n"
        "Wants=network-online.target dd-controlplane.service\n"
        "After=network-online.target dd-controlplane.service\n\n"
        "[Service]\n"
        f"ExecStartPre=/bin/sh -c {shlex.quote(install)}\n"
        f"ExecStartPre=/bin/sh -c {shlex.quote(health_wait_command(port))}\n"
        f"TimeoutStartSec={HEALTH_WAIT_SECONDS}\n"
        "ExecStart=/usr/bin/cloudflared tunnel --no-autoupdate run "
        f"--token-file {TUNNEL_TOKEN_FILE}\n"
        "Restart=always\nRestartSec=5\n\n"
        "[Install]\nWantedBy=multi-user.target\n"
    )


def _file(path: str, content: str, permissions: str) -> dict[str, str]:
    return {"path": path, "owner": "root:root", "permissions": permissions, "content": content}


def render_user_data(boot: BootConfig) -> str:
    """The ``#cloud-config`` document for one VM (see the module docstring)."""
    version = _package_version(boot.version)
    files = [
        _file(ENV_FILE, render_env_file(boot), "0600"),
        _file(CONTROL_PLANE_UNIT, _control_plane_unit(version), "0644"),
    ]
    units = ["dd-controlplane.service"]
    if boot.tunnel_token:
        files.append(_file(TUNNEL_TOKEN_FILE, boot.tunnel_token, "0600"))
        files.append(_file(CLOUDFLARED_UNIT, _cloudflared_unit(boot.port), "0644"))
        units.append("dd-cloudflared.service")
    document = {
        "write_files": files,
        "runcmd": [
            ["systemctl", "daemon-reload"],
            ["systemctl", "enable", "--now", *units],
        ],
    }
    return "#cloud-config\n" + yaml.safe_dump(document, sort_keys=False, width=1_000_000)
