"""Server processes for the control-plane benchmark: ``python -m benchmarks.servers KIND PORT``.

- ``bare``: the baseline. A Quart app with nothing of ours: ``GET /health`` answers a
  constant JSON object and ``/ws`` (websocket) answers one binary frame with a constant
  one, then closes. Served by Hypercorn with the control plane's settings (no access log,
  the same websocket frame limit), so the ratio isolates what dd_controlplane adds.
- ``github``: the fake GitHub of the control-plane tests (``tests/integration/
  controlplane/fake_github.py``) with one user, ``acme``, whose token is ``BENCH_TOKEN``.

Each runs in its own process so that the load generator, the fake GitHub and the server
under test do not share one interpreter (and one GIL). SIGTERM stops it.
"""

from __future__ import annotations

import asyncio
import signal
import sys

from hypercorn.asyncio import serve
from hypercorn.config import Config
from quart import Quart, websocket
from tests.integration.controlplane.fake_github import FakeGitHub

from dd_controlplane.__main__ import MAX_FRAME_BYTES

__all__ = ["BENCH_TOKEN", "bare_app", "main"]

BENCH_TOKEN = "ghp_benchmark_owner_token_0001"
CONSTANT = {"service": "bare", "env": "pr-7", "build": "f" * 40, "uptime_seconds": 1.0}


def bare_app() -> Quart:
    app = Quart("bare")

    @app.get("/health")
    async def health() -> dict[str, object]:
        return CONSTANT

    @app.websocket("/ws")
    async def ws() -> None:
        await websocket.accept()
        await websocket.receive()
        await websocket.send(b"\x00" * 48)
        await websocket.close(1000)

    return app


def _github_app(port: int) -> Quart:
    fake = FakeGitHub()
    fake.add_user(BENCH_TOKEN, "acme")
    fake.base_url = f"http://127.0.0.1:{port}"
    return fake.app


async def _serve(app: Quart, port: int) -> None:
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    config.graceful_timeout = 2.0
    config.websocket_max_message_size = MAX_FRAME_BYTES
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await serve(app, config, shutdown_trigger=stop.wait)


def main() -> None:
    kind, port = sys.argv[1], int(sys.argv[2])
    app = bare_app() if kind == "bare" else _github_app(port)
    asyncio.run(_serve(app, port))


if __name__ == "__main__":
    main()
