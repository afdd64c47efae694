"""The control plane as a real process, fed requests a hostile client would send.

Every answer must be deliberate: 2xx-4xx, or 502/503 naming an upstream (never a 500), redirects stay on this
host, nothing a client sends becomes a response header, and the process log holds no
traceback. GitHub is a closed local port, so a token check fails fast and offline.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.wait import wait_for


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    port, closed = _free_port(), _free_port()
    log_path = tmp_path_factory.mktemp("cp") / "cp.log"
    env = {
        "PATH": os.environ.get("PATH", ""),
        "DD_ENV": "pr-7", "DD_OWNER": "acme", "DD_HOSTNAME": "pr-7.preview.localhost",
        "DD_BUILD_SHA": "a" * 40, "DD_PORT": str(port), "DD_BIND": "127.0.0.1",
        "DD_ATTEST_TOKEN": "per-env-attest-token", "DD_DEV_ATTESTATION": "1",
        "DD_SESSION_SECRET": "s" * 40, "DD_GITHUB_API": f"http://127.0.0.1:{closed}",
    }
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "dd_controlplane"], env=env,
                                stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: httpx.get(f"{base}/health", timeout=1).status_code == 200,
                 timeout=20, message="/health")
        yield base, log_path
    finally:
        proc.terminate()
        proc.wait(10)


def _raw(base: str, request: bytes) -> bytes:
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(request)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
            if b"\r\n\r\n" in b"".join(chunks):
                break
        return b"".join(chunks)


@pytest.mark.parametrize(
    "next_value",
    ["//evil.example", "/\\evil.example", "https://evil.example/", "/%0d%0aSet-Cookie:%20x=1",
     "/\r\nSet-Cookie: x=1", "\\\\evil.example", "/" + "a" * 5000, "javascript:alert(1)",
     "/\u3000/evil", "%2F%2Fevil.example"],
)
def test_next_never_leaves_the_host_or_injects_a_header(
    control_plane: tuple[str, Path], next_value: str
) -> None:
    base, _ = control_plane
    with httpx.Client(base_url=base, timeout=5) as client:
        form = client.get("/auth/pat", params={"next": next_value})
        assert form.status_code == 200
        assert "Set-Cookie: x=1" not in form.text and "evil.example\"" not in form.text
        logout = client.get("/auth/logout", params={"next": next_value})
        assert logout.status_code < 500
        location = logout.headers.get("location", "/")
        assert location.startswith("/") and not location.startswith(("//", "/\\")), location
        assert "x=1" not in logout.headers.get("set-cookie", "")


@pytest.mark.parametrize(
    ("method", "path", "headers", "body"),
    [
        ("GET", "/", {"Cookie": "session=" + "A" * 60000}, b""),
        ("GET", "/", {"Cookie": "session=not.a.valid.signature"}, b""),
        ("GET", "/api/status", {"Authorization": "Bearer " + "x" * 20000}, b""),
        ("GET", "/api/status", {"Authorization": "Basic Zm9vOmJhcg=="}, b""),
        ("GET", "/api/status", {"Authorization": "Bearer ghp_unreachable_github"}, b""),
        ("GET", "/cp/attest?nonce=" + "zz" * 5000, {"Authorization": "Bearer per-env-attest-token"}, b""),
        ("GET", "/cp/attest?nonce=00", {"Authorization": "Bearer wrong"}, b""),
        ("POST", "/auth/pat", {"Content-Type": "application/x-www-form-urlencoded"},
         b"pat=\xff\xfe\xfd&next=\xc3\x28&csrf_token=\x80"),
        ("POST", "/auth/pat", {"Content-Type": "multipart/form-data; boundary=zz"}, b"--zz\r\n\xff\r\n"),
        ("POST", "/auth/pat", {"Content-Type": "application/x-www-form-urlencoded"},
         b"pat=" + b"x" * (17 * 1024 * 1024)),
        ("GET", "/../../../../etc/passwd", {}, b""),
        ("GET", "/static/..%2f..%2f..%2fetc%2fpasswd", {}, b""),
        ("GET", "/register", {"Upgrade": "websocket", "Connection": "Upgrade"}, b""),
    ],
)
def test_hostile_requests_get_a_deliberate_answer_never_a_500(
    control_plane: tuple[str, Path], method: str, path: str, headers: dict[str, str], body: bytes
) -> None:
    base, _ = control_plane
    with httpx.Client(base_url=base, timeout=10) as client:
        try:
            response = client.request(method, path, headers=headers, content=body)
        except httpx.RemoteProtocolError:
            return  # the server closed an oversized request: a deliberate refusal
    assert response.status_code < 500 or response.status_code in (502, 503), (
        response.status_code, response.text[:300])
    assert "root:" not in response.text


def test_raw_protocol_abuse_is_refused_and_nothing_was_a_traceback(
    control_plane: tuple[str, Path],
) -> None:
    base, log_path = control_plane
    answers = [
        _raw(base, b"GET /health HTTP/1.1\r\nHost: x\r\nX-Bad: \xff\xfe\r\n\r\n"),
        _raw(base, b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"X-Pad: " + b"a" * 200_000 + b"\r\n\r\n"),
        _raw(base, b"GET /auth/pat?next=/%0d%0aX-Injected:%201 HTTP/1.1\r\nHost: x\r\n\r\n"),
        _raw(base, b"BREW /health HTTP/1.1\r\nHost: x\r\n\r\n"),
    ]
    for answer in answers:
        status_line = answer.split(b"\r\n", 1)[0]
        assert not status_line.startswith(b"HTTP/1.1 5"), status_line
        assert b"\r\nX-Injected" not in answer
    assert httpx.get(f"{base}/health", timeout=5).status_code == 200  # still serving
    log = log_path.read_text(errors="replace")
    assert "Traceback" not in log, log[-3000:]
    assert "per-env-attest-token" not in log
