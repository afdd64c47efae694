"""Fixtures: a fresh fake Cloudflare per test, a provider pointed at it, a tiny origin, a clock."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from dd_operator.naming import Stamp
from dd_operator.providers.cloudflare import CloudflareEdgeProvider

from .fake import FakeCloudflare

CLUSTER = "cftest"


class FakeClock:
    """A clock and a sleep that only move when someone sleeps: 5-minute windows in no time."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


class Origin:
    """A stand-in for a VM's control plane: answers ``/health`` with the Host it was asked for."""

    def __init__(self, build: str = "origin-build") -> None:
        self.build = build
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = json.dumps({
                    "service": "origin", "build": outer.build, "path": self.path,
                    "host": self.headers.get("Host"),
                    "proto": self.headers.get("X-Forwarded-Proto"),
                }).encode()
                self.send_response(200 if self.path.startswith("/health") else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)


@pytest.fixture
def fake() -> Iterator[FakeCloudflare]:
    with FakeCloudflare() as server:
        yield server


@pytest.fixture
async def provider(fake: FakeCloudflare) -> AsyncIterator[CloudflareEdgeProvider]:
    p = CloudflareEdgeProvider(fake.settings())
    yield p
    await p.close()


@pytest.fixture
def origin() -> Iterator[Origin]:
    server = Origin()
    yield server
    server.close()


def new_stamp(name: str = "pe", cluster_id: str = CLUSTER) -> Stamp:
    return Stamp(cluster_id=cluster_id, namespace="previews", name=name, uid=str(uuid.uuid4()))


@pytest.fixture
def stamp() -> Stamp:
    return new_stamp()
