"""The rendered cloud-init stays valid YAML, every hostile value stays inert, and no token
is in it (only Secret Manager resource names; the VM fetches the values at boot).

The env file is checked the way the VM reads it: ``/bin/sh`` sources it (``set -a``), and
we compare what the shell exported with what we meant, byte for byte.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from dd_operator.providers.base import BootConfig
from dd_operator.providers.gce_boot import (
    ATTEST_ENV_FILE,
    CONTROL_PLANE_UNIT,
    ENV_FILE,
    FETCH_SCRIPT,
    SECRETS_CONFIG,
    SESSION_ENV_FILE,
    TUNNEL_TOKEN_FILE,
    SecretRefs,
    render_user_data,
    session_keys_command,
)

ATTEST_SECRET = "projects/test-project/secrets/dd-pe1-0123456789ab-attest-token"
TUNNEL_SECRET = "projects/test-project/secrets/dd-pe1-0123456789ab-tunnel-token"
ATTEST_ONLY = SecretRefs(attest_token=ATTEST_SECRET)
WITH_TUNNEL = SecretRefs(tunnel_token=TUNNEL_SECRET, attest_token=ATTEST_SECRET)

HOSTILE = [
    "it's",
    'say "hi"',
    "line1\nline2\n",
    "$(touch {pwned})",
    "`touch {pwned}`",
    "'; touch {pwned}; echo '",
    "${{HOME}}",
    "back\\slash",
    "runcmd:\n  - touch {pwned}",
    "#cloud-config",
    "%h %n",
]


def _boot(**overrides: Any) -> BootConfig:
    values: dict[str, Any] = {
        "env": "pr-7",
        "owner": "acme",
        "hostname": "pr-7.preview.example.com",
        "build_sha": "a" * 40,
        "port": 8080,
        "version": "1.2.3",
    }
    values.update(overrides)
    return BootConfig(**values)


def _parse(user_data: str) -> dict[str, Any]:
    assert user_data.startswith("#cloud-config\n")
    doc = yaml.safe_load(user_data)
    assert isinstance(doc, dict)
    return doc


def _files(doc: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {f["path"]: f for f in doc["write_files"]}


def _source_env(content: str, tmp_path: Path) -> dict[str, str]:
    env_file = tmp_path / "controlplane.env"
    env_file.write_text(content)
    out = subprocess.run(
        ["/bin/sh", "-c", 'set -a; . "$1"; env -0', "sh", str(env_file)],
        capture_output=True, check=True, cwd=tmp_path, env={"PATH": os.environ["PATH"]},
    ).stdout.decode()
    return dict(item.split("=", 1) for item in out.split("\0") if "=" in item)


def test_env_file_carries_the_control_plane_settings(tmp_path: Path) -> None:
    doc = _parse(render_user_data(_boot(attest_token="att-secret", extra_env={"FOO": "bar"}), ATTEST_ONLY))
    env = _source_env(_files(doc)[ENV_FILE]["content"], tmp_path)
    assert "DD_ATTEST_TOKEN" not in env  # fetched at boot into attest.env
    assert env["DD_ENV"] == "pr-7"
    assert env["DD_OWNER"] == "acme"
    assert env["DD_HOSTNAME"] == "pr-7.preview.example.com"
    assert env["DD_BUILD_SHA"] == "a" * 40
    assert env["DD_PORT"] == "8080"
    assert env["FOO"] == "bar"
    assert _files(doc)[ENV_FILE]["permissions"] == "0600"


@pytest.mark.parametrize("template", HOSTILE)
def test_hostile_values_stay_inert(template: str, tmp_path: Path) -> None:
    pwned = tmp_path / "pwned"
    value = template.format(pwned=pwned)
    boot = _boot(owner=value, hostname=value, extra_env={"EXTRA": value}, build_sha=value)
    doc = _parse(render_user_data(boot, ATTEST_ONLY))
    assert set(doc) == {"write_files", "runcmd"}
    env = _source_env(_files(doc)[ENV_FILE]["content"], tmp_path)
    assert env["DD_OWNER"] == value
    assert env["DD_HOSTNAME"] == value
    assert env["EXTRA"] == value
    assert env["DD_BUILD_SHA"] == value
    assert not pwned.exists()


@pytest.mark.parametrize("key", ["lower", "1ABC", "A-B", "A B", "A=B", "A\nB", ""])
def test_malformed_env_keys_are_refused(key: str) -> None:
    with pytest.raises(ValueError, match="environment variable"):
        render_user_data(_boot(extra_env={key: "x"}), ATTEST_ONLY)


def test_extra_env_cannot_override_operator_values() -> None:
    with pytest.raises(ValueError, match="set by the operator"):
        render_user_data(_boot(extra_env={"DD_BUILD_SHA": "0" * 40}), ATTEST_ONLY)


@pytest.mark.parametrize("version", ["1.0; reboot", "$(id)", "1.0 2.0", "'1'", "1!2.0"])
def test_malformed_versions_are_refused(version: str) -> None:
    with pytest.raises(ValueError, match="version"):
        render_user_data(_boot(version=version), ATTEST_ONLY)


def test_control_plane_unit_installs_the_requested_version() -> None:
    unit = _files(_parse(render_user_data(_boot(version="0.4.1"), ATTEST_ONLY)))[CONTROL_PLANE_UNIT]
    assert "dd-preview==0.4.1" in unit["content"]
    assert f". {ENV_FILE}; . {ATTEST_ENV_FILE};" in unit["content"]
    pre = [line for line in unit["content"].splitlines() if line.startswith("ExecStartPre=")]
    assert pre[0] == f"ExecStartPre=/usr/bin/python3 {FETCH_SCRIPT} {SECRETS_CONFIG}"


def test_empty_version_means_the_operators_own_version() -> None:
    unit = _files(_parse(render_user_data(_boot(version=""), ATTEST_ONLY)))[CONTROL_PLANE_UNIT]
    assert "dd-preview==0.1.0" in unit["content"]


def test_no_token_value_anywhere_only_secret_resource_names() -> None:
    tunnel, attest = "eyJ-tunnel-token-secret", "attest-bearer-secret"
    user_data = render_user_data(_boot(tunnel_token=tunnel, attest_token=attest), WITH_TUNNEL)
    assert tunnel not in user_data and attest not in user_data
    files = _files(_parse(user_data))
    assert TUNNEL_TOKEN_FILE not in files and ATTEST_ENV_FILE not in files
    config = json.loads(files[SECRETS_CONFIG]["content"])
    assert config["api"] == "https://secretmanager.googleapis.com"
    assert config["secrets"] == [
        {"name": ATTEST_SECRET, "path": ATTEST_ENV_FILE, "env": "DD_ATTEST_TOKEN"},
        {"name": TUNNEL_SECRET, "path": TUNNEL_TOKEN_FILE},
    ]
    assert files[FETCH_SCRIPT]["permissions"] == "0700"
    assert "0o600" in files[FETCH_SCRIPT]["content"]


def test_tunnel_secret_brings_cloudflared_reading_the_fetched_token_file() -> None:
    doc = _parse(render_user_data(_boot(), WITH_TUNNEL))
    cloudflared = next(f["content"] for f in doc["write_files"] if "cloudflared tunnel" in f["content"])
    assert f"--token-file {TUNNEL_TOKEN_FILE}" in cloudflared
    assert "dd-cloudflared.service" in doc["runcmd"][-1]


def test_without_secrets_nothing_is_fetched_or_sourced() -> None:
    doc = _parse(render_user_data(_boot(), SecretRefs()))
    files = _files(doc)
    assert json.loads(files[SECRETS_CONFIG]["content"])["secrets"] == []
    assert ATTEST_ENV_FILE not in files[CONTROL_PLANE_UNIT]["content"]


def test_no_tunnel_token_means_no_cloudflared() -> None:
    doc = _parse(render_user_data(_boot(), ATTEST_ONLY))
    assert TUNNEL_TOKEN_FILE not in _files(doc)
    assert all("cloudflared" not in f["content"] for f in doc["write_files"])
    assert doc["runcmd"][-1] == ["systemctl", "enable", "--now", "dd-controlplane.service"]


def test_repr_of_boot_config_hides_tokens() -> None:
    text = repr(_boot(tunnel_token="tok-1", attest_token="att-2"))
    assert "tok-1" not in text
    assert "att-2" not in text


def test_cloudflared_starts_only_after_the_control_plane_answers_health() -> None:
    """The unit's health wait, run by /bin/sh as systemd would, blocks until /health is 200."""
    import http.server
    import socket
    import threading

    from dd_operator.providers.gce_boot import CLOUDFLARED_UNIT

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    unit = _files(_parse(render_user_data(_boot(port=port), WITH_TUNNEL)))[CLOUDFLARED_UNIT]
    pre = [line.split("=", 1)[1] for line in unit["content"].splitlines()
           if line.startswith("ExecStartPre=")]
    assert len(pre) == 2 and "$" not in pre[1]  # install, then wait; systemd expands "$"
    wait = subprocess.Popen(["/bin/sh", "-c", pre[1].removeprefix("/bin/sh -c ").strip("'")])
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            wait.wait(1.5)  # nothing listens yet: cloudflared must not start

        class Health(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200 if self.path == "/health" else 404)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        server = http.server.HTTPServer(("127.0.0.1", port), Health)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            assert wait.wait(10) == 0
        finally:
            server.shutdown()
            server.server_close()
    finally:
        wait.kill()
        wait.wait()


def test_session_keys_are_made_on_the_vm_once_and_sourced(tmp_path: Path) -> None:
    unit = _files(_parse(render_user_data(_boot(), ATTEST_ONLY)))[CONTROL_PLANE_UNIT]["content"]
    assert session_keys_command().split(" ")[0] == "test"
    assert f". {SESSION_ENV_FILE};" in unit
    target = tmp_path / "session.env"
    command = session_keys_command().replace(SESSION_ENV_FILE, str(target))
    subprocess.run(["/bin/sh", "-c", command], check=True, cwd=tmp_path)
    first = target.read_text()
    assert oct(target.stat().st_mode & 0o777) == "0o600"
    env = _source_env(first, tmp_path)
    assert len(env["DD_SESSION_SECRET"]) == 64
    assert len(base64.b64decode(env["DD_NOISE_STATIC_KEY"], validate=True)) == 32
    subprocess.run(["/bin/sh", "-c", command], check=True, cwd=tmp_path)
    assert target.read_text() == first  # kept across restarts: sessions survive
