"""Noise XX over a binary frame channel: the responder (control plane) and initiator (agent).

``Noise_XX_25519_ChaChaPoly_SHA256``, empty prologue, no PSK; one websocket binary
frame per Noise message (at most 65535 bytes, Noise's own limit)::

    agent -> CP   msg1  e                      payload empty
    CP -> agent   msg2  e, ee, s, es           payload empty (agent may pin CP's static key)
    agent -> CP   msg3  s, se                  payload = registration JSON
    CP -> agent   one transport message        the bootstrap JSON (or a 1008 close)

Pitfall (research/testing.md §5): noiseprotocol deletes ``handshake_state`` once the last
handshake message is processed, and the peer's static key lives only there; we keep a
reference before reading msg3. The whole handshake runs under one deadline, so a peer
that stops halfway or trickles bytes holds nothing for longer than that.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from noise.connection import Keypair, NoiseConnection

__all__ = [
    "MAX_MESSAGE_LEN",
    "PROTOCOL_NAME",
    "FrameChannel",
    "HandshakeFailed",
    "Initiated",
    "Responded",
    "initiate",
    "public_key_of",
    "respond",
]

PROTOCOL_NAME = b"Noise_XX_25519_ChaChaPoly_SHA256"
MAX_MESSAGE_LEN = 65535

CLOSE_PROTOCOL_ERROR = 1002
CLOSE_UNSUPPORTED_DATA = 1003
CLOSE_TOO_BIG = 1009


class HandshakeFailed(Exception):
    """The peer did not speak the protocol; ``close_code`` is the websocket code to use."""

    def __init__(self, reason: str, close_code: int = CLOSE_PROTOCOL_ERROR) -> None:
        super().__init__(reason)
        self.reason = reason
        self.close_code = close_code


class FrameChannel(Protocol):
    """One binary frame in, one out. Implementations raise ``HandshakeFailed`` on text."""

    async def send(self, data: bytes) -> None: ...
    async def receive(self) -> bytes: ...


@dataclass
class Responded:
    connection: NoiseConnection
    peer_static: bytes
    payload: bytes


@dataclass
class Initiated:
    connection: NoiseConnection
    server_static: bytes


def public_key_of(private_key: bytes) -> bytes:
    return X25519PrivateKey.from_private_bytes(private_key).public_key().public_bytes(
        Encoding.Raw, PublicFormat.Raw
    )


def _connection(static_private: bytes, *, initiator: bool) -> NoiseConnection:
    conn = NoiseConnection.from_name(PROTOCOL_NAME)
    if initiator:
        conn.set_as_initiator()
    else:
        conn.set_as_responder()
    conn.set_keypair_from_private_bytes(Keypair.STATIC, static_private)
    conn.start_handshake()
    return conn


async def _receive(channel: FrameChannel) -> bytes:
    frame = await channel.receive()
    if len(frame) > MAX_MESSAGE_LEN:
        raise HandshakeFailed("frame larger than a Noise message (65535 bytes)", CLOSE_TOO_BIG)
    return frame


def _read(conn: NoiseConnection, frame: bytes, what: str) -> bytes:
    try:
        return bytes(conn.read_message(frame))
    except Exception as exc:
        raise HandshakeFailed(f"malformed {what}") from exc


def _peer_static(handshake_state: Any) -> bytes:
    rs = getattr(handshake_state, "rs", None)
    key = getattr(rs, "public_bytes", None)
    if not isinstance(key, bytes) or len(key) != 32:
        raise HandshakeFailed("peer sent no static key")
    return key


async def respond(
    channel: FrameChannel, static_private: bytes, *, deadline_seconds: float
) -> Responded:
    """Run the responder side through msg3; the caller decides, then replies."""
    conn = _connection(static_private, initiator=False)
    try:
        async with asyncio.timeout(deadline_seconds):
            _read(conn, await _receive(channel), "handshake message 1")
            await channel.send(bytes(conn.write_message(b"")))
            handshake_state = conn.noise_protocol.handshake_state  # kept: see module docstring
            payload = _read(conn, await _receive(channel), "handshake message 3")
    except TimeoutError:
        raise HandshakeFailed(f"handshake not completed within {deadline_seconds:.0f}s") from None
    if not conn.handshake_finished:
        raise HandshakeFailed("handshake did not finish")
    return Responded(connection=conn, peer_static=_peer_static(handshake_state), payload=payload)


async def initiate(
    channel: FrameChannel, static_private: bytes, payload: bytes, *,
    expected_server_key: bytes | None = None, deadline_seconds: float = 10.0,
) -> Initiated:
    """Run the initiator side; refuse a server whose static key is not the pinned one."""
    conn = _connection(static_private, initiator=True)
    try:
        async with asyncio.timeout(deadline_seconds):
            await channel.send(bytes(conn.write_message(b"")))
            _read(conn, await _receive(channel), "handshake message 2")
            server_static = _peer_static(conn.noise_protocol.handshake_state)
            if expected_server_key is not None and server_static != expected_server_key:
                raise HandshakeFailed("control plane's static key is not the pinned one")
            await channel.send(bytes(conn.write_message(payload)))
    except TimeoutError:
        raise HandshakeFailed(f"handshake not completed within {deadline_seconds:.0f}s") from None
    return Initiated(connection=conn, server_static=server_static)
