"""Serve a Quart app with Hypercorn on a free 127.0.0.1 port for the length of a block."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from hypercorn.asyncio import serve
from hypercorn.config import Config
from quart import Quart

from tests.support.wait import async_wait_for


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _accepting(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    await writer.wait_closed()
    return True


@asynccontextmanager
async def served(
    app: Quart, *, websocket_max_message_size: int | None = None
) -> AsyncIterator[str]:
    """Yields ``http://127.0.0.1:PORT``; stops the server (and its lifespan) on exit."""
    port = free_port()
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    config.errorlog = None
    config.graceful_timeout = 1.0
    if websocket_max_message_size is not None:
        config.websocket_max_message_size = websocket_max_message_size
    stop = asyncio.Event()
    task = asyncio.create_task(serve(app, config, shutdown_trigger=stop.wait))
    try:
        await async_wait_for(
            lambda: _accepting(port), timeout=10, interval=0.02, message=f"server on port {port}"
        )
        yield f"http://127.0.0.1:{port}"
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=10)
