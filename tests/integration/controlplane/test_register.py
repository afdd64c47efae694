"""``/register`` over a real Hypercorn server and real websocket clients: our agent, an
independent Noise implementation (dissononce), and clients that misbehave."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from dissononce.cipher.chachapoly import ChaChaPolyCipher
from dissononce.dh.x25519.private import PrivateKey
from dissononce.dh.x25519.x25519 import X25519DH
from dissononce.hash.sha256 import SHA256Hash
from dissononce.processing.handshakepatterns.interactive.XX import XXHandshakePattern
from dissononce.processing.impl.cipherstate import CipherState
from dissononce.processing.impl.handshakestate import HandshakeState
from dissononce.processing.impl.symmetricstate import SymmetricState
from noise.connection import Keypair, NoiseConnection
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from dd_controlplane.__main__ import hypercorn_config
from dd_controlplane.agent import RegistrationFailed, register
from dd_controlplane.app import create_app
from dd_controlplane.registration.noise import public_key_of
from tests.unit.controlplane.quote_samples import REAL_V4_MRTD, real_v4

from .conftest import AGENT_PRIVATE, OWNER_TOKEN, SERVER_PRIVATE, SettingsFactory, key_b64
from .serving import served

OTHER_PRIVATE = bytes(range(50, 82))
AGENT_PUBLIC = public_key_of(AGENT_PRIVATE)
SERVER_PUBLIC = public_key_of(SERVER_PRIVATE)

Serve = Callable[..., Awaitable[str]]


@pytest.fixture
async def serve_cp(make_settings: SettingsFactory) -> AsyncIterator[Serve]:
    """Start control planes under Hypercorn (with production's frame limit); yields ws URLs."""
    stack: list[object] = []

    async def start(**env: str) -> str:
        settings = make_settings(**env)
        max_size = hypercorn_config(settings).websocket_max_message_size
        context = served(create_app(settings), websocket_max_message_size=max_size)
        url = await context.__aenter__()
        stack.append(context)
        return url

    yield start
    for context in reversed(stack):
        await context.__aexit__(None, None, None)  # type: ignore[attr-defined]


def ws(url: str) -> str:
    return url.replace("http://", "ws://") + "/register"


async def close_code_of(action: Callable[[], Awaitable[object]]) -> tuple[int | None, str]:
    try:
        await action()
    except RegistrationFailed as exc:
        return exc.close_code, str(exc)
    raise AssertionError("registration was not refused")


# --- admitted agents -------------------------------------------------------------------------


async def test_allow_listed_agent_registers_and_receives_its_bootstrap(serve_cp: Serve) -> None:
    url = await serve_cp(DD_AGENT_KEYS=key_b64(AGENT_PUBLIC))
    bootstrap = await register(
        ws(url),
        private_key=AGENT_PRIVATE,
        owner="acme",
        vm_name="worker-1",
        server_key=SERVER_PUBLIC,
    )
    assert bootstrap["status"] == "registered"
    assert bootstrap["vm_name"] == "worker-1"
    assert bootstrap["env"] == "pr-7"
    assert bootstrap["new"] is True


async def test_re_registration_is_idempotent(serve_cp: Serve) -> None:
    url = await serve_cp(DD_AGENT_KEYS=key_b64(AGENT_PUBLIC))
    first = await register(ws(url), private_key=AGENT_PRIVATE, owner="acme", vm_name="worker-1")
    second = await register(
        ws(url), private_key=AGENT_PRIVATE, owner="acme", vm_name="worker-1", quote=real_v4()
    )
    assert second["agent_id"] == first["agent_id"]
    assert second["new"] is False
    assert second["registrations"] == 2
    async with httpx.AsyncClient() as http:
        status = (
            await http.get(f"{url}/api/status", headers={"Authorization": f"Bearer {OWNER_TOKEN}"})
        ).json()
    assert len(status["agents"]) == 1
    assert status["agents"][0]["vm_name"] == "worker-1"
    assert status["agents"][0]["mrtd"] == REAL_V4_MRTD


async def test_agent_refuses_a_control_plane_with_another_static_key(serve_cp: Serve) -> None:
    url = await serve_cp(DD_AGENT_KEYS=key_b64(AGENT_PUBLIC))
    with pytest.raises(RegistrationFailed, match="pinned"):
        await register(
            ws(url),
            private_key=AGENT_PRIVATE,
            owner="acme",
            vm_name="worker-1",
            server_key=public_key_of(OTHER_PRIVATE),
        )


async def test_tofu_pins_the_first_key_per_vm_name(serve_cp: Serve) -> None:
    url = await serve_cp(DD_AGENT_TOFU="1")
    await register(ws(url), private_key=AGENT_PRIVATE, owner="acme", vm_name="worker-1")
    await register(ws(url), private_key=AGENT_PRIVATE, owner="acme", vm_name="worker-1")
    code, message = await close_code_of(
        lambda: register(ws(url), private_key=OTHER_PRIVATE, owner="acme", vm_name="worker-1")
    )
    assert code == 1008
    assert "pinned to a different key" in message
    other = await register(ws(url), private_key=OTHER_PRIVATE, owner="acme", vm_name="worker-2")
    assert other["new"] is True


async def test_dissononce_agent_interoperates(serve_cp: Serve) -> None:
    """A second, independent Noise implementation plays the agent."""
    url = await serve_cp(DD_AGENT_KEYS=key_b64(AGENT_PUBLIC))
    dh = X25519DH()
    handshake = HandshakeState(SymmetricState(CipherState(ChaChaPolyCipher()), SHA256Hash()), dh)
    handshake.initialize(
        XXHandshakePattern(), True, b"", s=dh.generate_keypair(PrivateKey(AGENT_PRIVATE))
    )
    async with connect(ws(url)) as conn:
        message = bytearray()
        handshake.write_message(b"", message)
        await conn.send(bytes(message))
        handshake.read_message(await conn.recv(), bytearray())
        assert handshake.rs.data == SERVER_PUBLIC  # the control plane's static key
        message = bytearray()
        payload = json.dumps({"owner": "acme", "vm_name": "dissononce-vm"}).encode()
        _send_state, receive_state = handshake.write_message(payload, message)
        await conn.send(bytes(message))
        bootstrap = json.loads(receive_state.decrypt_with_ad(b"", await conn.recv()))
    assert bootstrap["vm_name"] == "dissononce-vm"
    assert bootstrap["status"] == "registered"


async def test_dd_agent_cli_prints_the_bootstrap(serve_cp: Serve, tmp_path: Path) -> None:
    key_file = tmp_path / "agent.key"
    printed = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-m",
            "dd_controlplane.agent",
            "--key-file",
            str(key_file),
            "--print-public-key",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    public = printed.stdout.strip()
    assert len(base64.b64decode(public)) == 32
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    url = await serve_cp(DD_AGENT_KEYS=public)
    result = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-m",
            "dd_controlplane.agent",
            "--key-file",
            str(key_file),
            "--url",
            ws(url),
            "--owner",
            "acme",
            "--vm-name",
            "cli-vm",
            "--server-key",
            key_b64(SERVER_PUBLIC),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["vm_name"] == "cli-vm"


# --- refusals ---------------------------------------------------------------------------------


async def test_wrong_owner_is_closed_with_policy_violation(
    serve_cp: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    url = await serve_cp(DD_AGENT_KEYS=key_b64(AGENT_PUBLIC))
    code, message = await close_code_of(
        lambda: register(ws(url), private_key=AGENT_PRIVATE, owner="evil-corp", vm_name="worker-1")
    )
    assert code == 1008
    assert "owner" in message
    assert "registration refused: owner 'evil-corp'" in caplog.text


async def test_unknown_key_is_closed_with_policy_violation(serve_cp: Serve) -> None:
    url = await serve_cp(DD_AGENT_KEYS=key_b64(AGENT_PUBLIC))
    code, message = await close_code_of(
        lambda: register(ws(url), private_key=OTHER_PRIVATE, owner="acme", vm_name="worker-1")
    )
    assert code == 1008
    assert "allow-list" in message


async def test_nothing_is_admitted_without_an_allow_list_or_tofu(serve_cp: Serve) -> None:
    url = await serve_cp()
    code, _ = await close_code_of(
        lambda: register(ws(url), private_key=AGENT_PRIVATE, owner="acme", vm_name="worker-1")
    )
    assert code == 1008


async def test_malformed_quote_is_refused(serve_cp: Serve) -> None:
    url = await serve_cp(DD_AGENT_KEYS=key_b64(AGENT_PUBLIC))
    code, message = await close_code_of(
        lambda: register(
            ws(url),
            private_key=AGENT_PRIVATE,
            owner="acme",
            vm_name="worker-1",
            quote=real_v4()[:700],
        )
    )
    assert code == 1008
    assert "truncated" in message


async def _raw_close_code(url: str, *frames: bytes | str) -> int | None:
    async with connect(ws(url), max_size=None) as conn:
        try:
            for frame in frames:
                await conn.send(frame)
            while True:
                await asyncio.wait_for(conn.recv(), 10)
        except ConnectionClosed as exc:
            return exc.rcvd.code if exc.rcvd else None
    return None


async def test_garbage_handshake_is_a_protocol_error(serve_cp: Serve) -> None:
    url = await serve_cp(DD_AGENT_KEYS=key_b64(AGENT_PUBLIC))
    assert await _raw_close_code(url, b"\x01" * 7) == 1002


async def test_text_frame_is_refused(serve_cp: Serve) -> None:
    url = await serve_cp(DD_AGENT_KEYS=key_b64(AGENT_PUBLIC))
    assert await _raw_close_code(url, "hello") == 1003


async def test_oversized_frame_is_refused_and_the_server_keeps_serving(serve_cp: Serve) -> None:
    url = await serve_cp(DD_AGENT_KEYS=key_b64(AGENT_PUBLIC))
    assert await _raw_close_code(url, b"\x00" * (1024 * 1024)) == 1009
    assert await _raw_close_code(url, b"\x00" * 65536) == 1009  # one byte past Noise's limit
    bootstrap = await register(ws(url), private_key=AGENT_PRIVATE, owner="acme", vm_name="w")
    assert bootstrap["status"] == "registered"


async def test_half_handshake_times_out_without_blocking_others(serve_cp: Serve) -> None:
    url = await serve_cp(DD_AGENT_KEYS=key_b64(AGENT_PUBLIC), DD_HANDSHAKE_TIMEOUT_SECONDS="2")
    async with connect(ws(url)) as stalled:
        noise = NoiseConnection.from_name(b"Noise_XX_25519_ChaChaPoly_SHA256")
        noise.set_as_initiator()
        noise.set_keypair_from_private_bytes(Keypair.STATIC, AGENT_PRIVATE)
        noise.start_handshake()
        await stalled.send(noise.write_message(b""))
        await stalled.recv()  # message 2 ... and then the agent goes silent
        # meanwhile other agents register normally
        for index in range(3):
            await register(ws(url), private_key=AGENT_PRIVATE, owner="acme", vm_name=f"w{index}")
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(stalled.recv(), 10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1002
    assert "within 2s" in closed.value.rcvd.reason


async def test_many_slow_clients_do_not_starve_a_good_one(serve_cp: Serve) -> None:
    url = await serve_cp(DD_AGENT_KEYS=key_b64(AGENT_PUBLIC), DD_HANDSHAKE_TIMEOUT_SECONDS="5")
    silent = [await connect(ws(url)).__aenter__() for _ in range(20)]
    try:
        bootstrap = await register(ws(url), private_key=AGENT_PRIVATE, owner="acme", vm_name="ok")
        assert bootstrap["status"] == "registered"
    finally:
        for conn in silent:
            await conn.close()
