"""The control plane as the operator's ``local`` provider runs it: a child process.

Started with exactly the variables the provider guarantees; checked over real HTTP.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import httpx
import pytest

from tests.support.wait import wait_for


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _provider_env(port: int) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""),
        "DD_ENV": "pr-7",
        "DD_OWNER": "acme",
        "DD_HOSTNAME": "pr-7.preview.localhost",
        "DD_BUILD_SHA": "0123456789abcdef0123456789abcdef01234567",
        "DD_PORT": str(port),
        "DD_BIND": "127.0.0.1",
        "DD_ATTEST_TOKEN": "per-env-attest-token",
        "DD_DEV_ATTESTATION": "1",
    }


def _health(port: int) -> dict[str, object] | None:
    response = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1.0)
    return response.json() if response.status_code == 200 else None


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_serves_health_and_exits_zero_on_signal(stop_signal: signal.Signals) -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "dd_controlplane"],
        env=_provider_env(port),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        body = wait_for(lambda: _health(port), timeout=20, message="/health to answer")
        assert body["service"] == "dd-controlplane"
        assert body["env"] == "pr-7"
        assert body["build"] == "0123456789abcdef0123456789abcdef01234567"
        assert body["hostname"] == "pr-7.preview.localhost"
        assert isinstance(body["uptime_seconds"], float)
        proc.send_signal(stop_signal)
        assert proc.wait(timeout=10) == 0
        output = proc.stdout.read() if proc.stdout else ""
        assert "sessions will not survive a restart" in output
        assert "per-env-attest-token" not in output
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()


@pytest.mark.parametrize("missing", ["DD_ENV", "DD_OWNER"])
def test_missing_required_setting_exits_nonzero_naming_it(missing: str) -> None:
    env = _provider_env(_free_port())
    del env[missing]
    result = subprocess.run(
        [sys.executable, "-m", "dd_controlplane"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert missing in result.stderr
