"""``dd-agent``: register with a control plane over Noise XX and print the bootstrap JSON.

    dd-agent --url wss://pr-7.example.com/register --owner acme --vm-name worker-1 \\
             --key-file ~/.config/dd-agent/key [--server-key BASE64] [--quote-file quote.bin]
    dd-agent --key-file ~/.config/dd-agent/key --print-public-key

The static key file holds 32 raw bytes (created with mode 0600 when missing); its public
half is what goes on the control plane's ``DD_AGENT_KEYS``. ``--server-key`` pins the
control plane's static public key. Exit codes: 0 registered, 1 refused or failed, 2 usage.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import secrets
import sys
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from .registration.noise import MAX_MESSAGE_LEN, HandshakeFailed, initiate, public_key_of

__all__ = ["RegistrationFailed", "load_or_create_key", "main", "register"]


class RegistrationFailed(Exception):
    """The control plane refused us or the exchange broke; ``close_code`` when it closed."""

    def __init__(self, message: str, close_code: int | None = None) -> None:
        super().__init__(message)
        self.close_code = close_code


class _Frames:
    def __init__(self, ws: ClientConnection) -> None:
        self._ws = ws

    async def send(self, data: bytes) -> None:
        await self._ws.send(data)

    async def receive(self) -> bytes:
        frame = await self._ws.recv()
        if not isinstance(frame, bytes):
            raise HandshakeFailed("control plane sent a text frame")
        return frame


async def register(
    url: str, *, private_key: bytes, owner: str, vm_name: str, quote: bytes | None = None,
    server_key: bytes | None = None, deadline_seconds: float = 15.0,
) -> dict[str, Any]:
    """One registration; returns the bootstrap the control plane sent."""
    payload: dict[str, Any] = {"owner": owner, "vm_name": vm_name}
    if quote is not None:
        payload["tdx_quote_b64"] = base64.b64encode(quote).decode()
    try:
        async with connect(url, max_size=MAX_MESSAGE_LEN, open_timeout=deadline_seconds) as ws:
            done = await initiate(
                _Frames(ws), private_key, json.dumps(payload).encode(),
                expected_server_key=server_key, deadline_seconds=deadline_seconds,
            )
            reply = await asyncio.wait_for(ws.recv(), deadline_seconds)
            if not isinstance(reply, bytes):
                raise RegistrationFailed("control plane sent a text frame")
            bootstrap = json.loads(done.connection.decrypt(reply))
    except ConnectionClosed as exc:
        code = exc.rcvd.code if exc.rcvd else None
        reason = exc.rcvd.reason if exc.rcvd else "connection dropped"
        raise RegistrationFailed(f"control plane closed ({code}): {reason}", code) from exc
    except HandshakeFailed as exc:
        raise RegistrationFailed(exc.reason) from exc
    except (OSError, TimeoutError) as exc:
        raise RegistrationFailed(f"could not reach {url} ({type(exc).__name__})") from exc
    if not isinstance(bootstrap, dict):
        raise RegistrationFailed("bootstrap is not a JSON object")
    return bootstrap


def load_or_create_key(path: Path) -> bytes:
    if path.exists():
        key = path.read_bytes()
        if len(key) != 32:
            raise ValueError(f"{path} must hold exactly 32 raw bytes")
        return key
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key)
    return key


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dd-agent", description=__doc__.split("\n")[0])
    p.add_argument("--url", help="ws(s)://host/register")
    p.add_argument("--owner", default=os.environ.get("DD_OWNER", ""))
    p.add_argument("--vm-name", default=os.environ.get("DD_VM_NAME", ""))
    p.add_argument("--key-file", type=Path, required=True)
    p.add_argument("--server-key", help="base64 static public key of the control plane to pin")
    p.add_argument("--quote-file", type=Path, help="a TDX quote to send with the registration")
    p.add_argument("--print-public-key", action="store_true")
    return p


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    try:
        key = load_or_create_key(args.key_file)
    except (OSError, ValueError) as exc:
        print(f"dd-agent: {exc}", file=sys.stderr)
        sys.exit(2)
    if args.print_public_key:
        print(base64.b64encode(public_key_of(key)).decode())
        return
    if not (args.url and args.owner and args.vm_name):
        print("dd-agent: --url, --owner and --vm-name are required", file=sys.stderr)
        sys.exit(2)
    try:
        bootstrap = asyncio.run(register(
            args.url, private_key=key, owner=args.owner, vm_name=args.vm_name,
            quote=args.quote_file.read_bytes() if args.quote_file else None,
            server_key=base64.b64decode(args.server_key) if args.server_key else None,
        ))
    except RegistrationFailed as exc:
        print(f"dd-agent: registration failed: {exc}", file=sys.stderr)
        sys.exit(1)
    print(json.dumps(bootstrap, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
