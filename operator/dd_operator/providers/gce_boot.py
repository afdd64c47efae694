"""Render a VM's boot configuration: cloud-init user-data that starts the control plane.

Pure: ``render_user_data(boot, secrets) -> str``, no I/O. The GCE provider puts the result in the
instance's ``user-data`` metadata; the fake Compute API boots VMs from the same text.

What the VM gets (all root-owned, written by cloud-init ``write_files``):

- ``/etc/dd-preview/session.env`` (0600), created on the VM at first boot with
  ``openssl rand``: ``DD_SESSION_SECRET`` and ``DD_NOISE_STATIC_KEY``. They never leave
  the VM, and survive restarts and reboots (sessions and agent pins do too).
- ``/etc/dd-preview/controlplane.env`` (0600): ``KEY='value'`` lines, every value quoted
  with ``shlex.quote`` and every key checked against ``^[A-Z_][A-Z0-9_]*$``. The unit
  *sources* it with ``/bin/sh`` (``set -a; . file``), so shell quoting is exactly the
  grammar that reads it back: a value like ``$(reboot)`` or ``'; rm -rf /`` stays a string.
- No token at all. ``/etc/dd-preview/secrets.json`` names the environment's Secret
  Manager secrets (resource names, see ``gce_secrets``) and ``fetch-secrets.py`` (stdlib
  Python) reads them at boot, as root, before the control plane starts: an access token
  for the VM's own service account from the metadata server, then ``GET
  {api}/v1/{secret}/versions/latest:access``, ``payload.data`` base64-decoded into
  root-only files (0600, written to a temporary name and renamed):
  ``/etc/dd-preview/attest.env`` (``DD_ATTEST_TOKEN='...'``, sourced after the env file)
  and ``/etc/dd-preview/tunnel-token``, read by ``cloudflared tunnel run --token-file``
  (cloudflared >= 2025.4.0), so the token never appears on a command line or in ``ps``.
  A failed fetch fails the unit's ``ExecStartPre``; systemd's ``Restart=`` retries it.
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

Secrets: GCE metadata is readable by anything on the VM and by project viewers, so no
secret goes here, only the names of secrets the VM's service account may read
(``BootConfig.tunnel_token`` / ``attest_token`` are never rendered).
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from importlib import metadata

import yaml

from ..model import refused_env_name
from .base import BootConfig

__all__ = [
    "ATTEST_ENV_FILE",
    "CLOUDFLARED_UNIT",
    "CLOUDFLARED_VERSION",
    "CONTROL_PLANE_UNIT",
    "ENV_FILE",
    "FETCH_SCRIPT",
    "HEALTH_WAIT_SECONDS",
    "METADATA_TOKEN_URL",
    "SECRETS_CONFIG",
    "SECRET_MANAGER_API",
    "SESSION_ENV_FILE",
    "TUNNEL_TOKEN_FILE",
    "SecretRefs",
    "health_wait_command",
    "render_user_data",
    "session_keys_command",
]

ENV_FILE = "/etc/dd-preview/controlplane.env"
TUNNEL_TOKEN_FILE = "/etc/dd-preview/tunnel-token"  # noqa: S105 - a path, not a secret
ATTEST_ENV_FILE = "/etc/dd-preview/attest.env"
SESSION_ENV_FILE = "/etc/dd-preview/session.env"
"""Generated on the VM at first boot, never sent: the session-cookie and Noise keys."""
SECRETS_CONFIG = "/etc/dd-preview/secrets.json"
FETCH_SCRIPT = "/usr/local/lib/dd-preview/fetch-secrets.py"
SECRET_MANAGER_API = "https://secretmanager.googleapis.com"  # noqa: S105 - a URL
METADATA_TOKEN_URL = (
    "http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/token"  # noqa: S105
)
CONTROL_PLANE_UNIT = "/etc/systemd/system/dd-controlplane.service"
CLOUDFLARED_UNIT = "/etc/systemd/system/dd-cloudflared.service"
VENV = "/opt/dd-preview"
PACKAGE = "dd-preview"
CLOUDFLARED_VERSION = "2025.4.0"
"""The first release with ``tunnel run --token-file``."""
HEALTH_WAIT_SECONDS = 900
"""How long cloudflared waits for the first ``/health`` answer (pip install included)."""

_VERSION_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}$")
"""PEP 440-ish (no epochs): nothing a shell or a systemd unit line would interpret."""

_FETCH_SOURCE = """\
\"\"\"Fetch this VM's secrets from Secret Manager into root-only files (dd-preview).\"\"\"
import base64, json, os, shlex, sys, urllib.error, urllib.request


def get_json(url, headers):
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=15) as answer:
        return json.load(answer)


def write_private(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    temporary = path + ".tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(temporary, 0o600)
    os.replace(temporary, path)


def main(config_path):
    with open(config_path) as handle:
        config = json.load(handle)
    token = get_json(config["token_url"], {"Metadata-Flavor": "Google"})["access_token"]
    for entry in config["secrets"]:
        url = config["api"] + "/v1/" + entry["name"] + "/versions/latest:access"
        try:
            answer = get_json(url, {"Authorization": "Bearer " + token})
        except urllib.error.HTTPError as exc:
            sys.exit("reading " + entry["name"] + " failed: HTTP " + str(exc.code))
        value = base64.b64decode(answer["payload"]["data"]).decode()
        if entry.get("env"):
            value = entry["env"] + "=" + shlex.quote(value) + "\\n"
        write_private(entry["path"], value)


main(sys.argv[1])
"""


@dataclass(frozen=True)
class SecretRefs:
    """Secret Manager resource names (``projects/P/secrets/S``) a VM reads at boot.

    Empty means the VM has no such secret (no edge: no tunnel token, no cloudflared).
    """

    tunnel_token: str = ""
    attest_token: str = ""


def _package_version(version: str) -> str:
    chosen = version or metadata.version(PACKAGE)
    if not _VERSION_RE.match(chosen):
        raise ValueError(f"control plane version {chosen!r} is not a package version")
    return chosen


def render_env_file(boot: BootConfig) -> str:
    """``KEY='value'`` lines for ``/bin/sh`` to source; extra env cannot override ours."""
    values: dict[str, str] = {}
    for key, value in boot.extra_env.items():
        # parse_spec refused these already; checked again because this text becomes a VM's
        # environment (an object stored before a rule existed must not get through).
        if (why := refused_env_name(key)) is not None:
            raise ValueError(f"environment variable {key!r} is refused: {why}")
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
    return "".join(f"{key}={shlex.quote(value)}\n" for key, value in values.items())


def _secrets_config(secrets: SecretRefs) -> str:
    entries = []
    if secrets.attest_token:
        entries.append(
            {"name": secrets.attest_token, "path": ATTEST_ENV_FILE, "env": "DD_ATTEST_TOKEN"}
        )
    if secrets.tunnel_token:
        entries.append({"name": secrets.tunnel_token, "path": TUNNEL_TOKEN_FILE})
    config = {"api": SECRET_MANAGER_API, "token_url": METADATA_TOKEN_URL, "secrets": entries}
    return json.dumps(config, indent=2) + "\n"


def session_keys_command() -> str:
    """Create the VM's own session secret and Noise static key once (kept across restarts
    and reboots, so sessions and agent pins survive). No ``$``: systemd would expand it."""
    tmp = f"{SESSION_ENV_FILE}.tmp"
    return (
        f"test -s {SESSION_ENV_FILE} || (umask 077; "
        f"{{ printf 'DD_SESSION_SECRET='; openssl rand -hex 32; "
        f"printf 'DD_NOISE_STATIC_KEY='; openssl rand -base64 32; }} > {tmp} "
        f"&& mv {tmp} {SESSION_ENV_FILE})"
    )


def _control_plane_unit(version: str, *, attest: bool) -> str:
    pip_spec = shlex.quote(f"{PACKAGE}=={version}")
    install = (
        f"test -x {VENV}/bin/dd-controlplane || "
        f"(python3 -m venv {VENV} && {VENV}/bin/pip install --no-input {pip_spec})"
    )
    sources = f". {ENV_FILE}; . {ATTEST_ENV_FILE};" if attest else f". {ENV_FILE};"
    sources += f" . {SESSION_ENV_FILE};"
    run = f"set -a; {sources} exec {VENV}/bin/dd-controlplane"
    fetch = f"/usr/bin/python3 {FETCH_SCRIPT} {SECRETS_CONFIG}"
    return (
        "[Unit]\nDescription=dd-preview control plane\n"
        "Wants=network-online.target\nAfter=network-online.target\n\n"
        "[Service]\n"
        f"ExecStartPre={fetch}\n"
        f"ExecStartPre=/bin/sh -c {shlex.quote(session_keys_command())}\n"
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


def render_user_data(boot: BootConfig, secrets: SecretRefs) -> str:
    """The ``#cloud-config`` document for one VM (see the module docstring).

    The tokens in ``boot`` are ignored: the VM reads them from the secrets ``secrets`` names.
    """
    version = _package_version(boot.version)
    attest = bool(secrets.attest_token)
    files = [
        _file(ENV_FILE, render_env_file(boot), "0600"),
        _file(SECRETS_CONFIG, _secrets_config(secrets), "0600"),
        _file(FETCH_SCRIPT, _FETCH_SOURCE, "0700"),
        _file(CONTROL_PLANE_UNIT, _control_plane_unit(version, attest=attest), "0644"),
    ]
    units = ["dd-controlplane.service"]
    if secrets.tunnel_token:
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
