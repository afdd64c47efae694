"""``python -m dd_controlplane`` / ``dd-controlplane``: serve the app with Hypercorn.

Binds ``DD_BIND:DD_PORT`` (one port for every route: HTTP and the ``/register``
websocket). SIGTERM and SIGINT stop it gracefully and the process exits 0; a missing
required setting exits 2 with a message naming the variable.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from hypercorn.asyncio import serve
from hypercorn.config import Config

from .app import create_app
from .settings import ConfigError, Settings

__all__ = ["main"]

log = logging.getLogger("dd_controlplane")

MAX_FRAME_BYTES = 65535 + 1024
"""Noise messages are at most 65535 bytes; Hypercorn refuses bigger websocket messages
(close 1009) before our handler ever buffers them."""


def hypercorn_config(settings: Settings) -> Config:
    config = Config()
    config.bind = [f"{settings.bind}:{settings.port}"]
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")  # one log format, ours
    config.graceful_timeout = 2.0  # in-flight requests and handshakes are short
    config.websocket_max_message_size = MAX_FRAME_BYTES
    return config


async def _serve(settings: Settings) -> None:
    app = create_app(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info(
        "dd-controlplane env=%s build=%s listening on %s:%s",
        settings.env, settings.build_sha, settings.bind, settings.port,
    )
    await serve(app, hypercorn_config(settings), shutdown_trigger=stop.wait)
    log.info("dd-controlplane stopped")


def main() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"dd-controlplane: configuration error: {exc}", file=sys.stderr)
        sys.exit(2)
    if settings.session.ephemeral:
        log.warning("DD_SESSION_SECRET is not set: using a random per-process secret, "
                    "so sessions will not survive a restart")
    asyncio.run(_serve(settings))
    sys.exit(0)


if __name__ == "__main__":
    main()
