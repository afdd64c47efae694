"""Sub-benchmark 3: control-plane requests/s and Noise XX registrations/s, vs a bare Quart app.

Every server is a separate process on 127.0.0.1 (``python -m dd_controlplane``, the real
entry point, and ``benchmarks.servers`` for the bare baseline and the fake GitHub); this
process only generates load. HTTP load is a minimal keep-alive HTTP/1.1 client on raw
asyncio streams (``CONNECTIONS`` connections, each sending its next request as soon as
the previous answer is read), so the client costs as little CPU as a Python client can.
Registrations use the project's agent (``dd_controlplane.agent.register``): a websocket,
three Noise XX messages and the encrypted bootstrap, a new connection each time; their
baseline is the bare app's websocket (connect, one frame each way, close).

The client and the servers share the machine's cores, so absolute figures mostly say how
busy the machine was; the ratio to the bare app, measured minutes apart in the same run,
is the figure to compare. Targets are measured in interleaved slices of about a second
(rotating the order each round), so load from elsewhere on the machine falls on both sides.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from websockets.asyncio.client import connect

from dd_controlplane.agent import RegistrationFailed, register
from dd_controlplane.registration.noise import initiate, public_key_of, respond
from dd_devcluster.cluster import free_port

from .report import percentile, print_table, ratio, section
from .servers import BENCH_TOKEN

__all__ = ["Rate", "print_controlplane_load", "run_controlplane_load"]

REPO = Path(__file__).resolve().parents[1]
CONNECTIONS = 16
HANDSHAKE_CLIENTS = 4


@dataclass
class Rate:
    name: str
    seconds: float = 0.0
    count: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)
    baseline: str = ""

    @property
    def per_second(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0


class ServerProcess:
    def __init__(self, name: str, cmd: list[str], port: int, env: dict[str, str],
                 log: Path) -> None:
        self.name, self.port = name, port
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                cmd, cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                     "HOME": os.environ.get("HOME", "/"), "PYTHONPATH": str(REPO), **env},
            )
        self.log = log

    def wait_serving(self, path: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{self.port}{path}", timeout=2).status_code < 500:
                    return
            time.sleep(0.2)
        tail = self.log.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{self.name} did not serve {path}:\n{tail}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# -- load generators ------------------------------------------------------------------


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == b"content-length":
            return int(value)
    raise ValueError("response without Content-Length")


async def _http_worker(port: int, request: bytes, until: float, rate: Rate) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.monotonic() < until:
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            await reader.readexactly(_content_length(head))
            rate.latencies.append(time.perf_counter() - started)
            if head[9:12] == b"200":
                rate.count += 1
            else:
                rate.errors += 1
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def http_rate(name: str, port: int, path: str, seconds: float,
                    headers: dict[str, str] | None = None, baseline: str = "") -> Rate:
    lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Accept: application/json",
             *(f"{k}: {v}" for k, v in (headers or {}).items())]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode()
    rate = Rate(name, baseline=baseline)
    started = time.monotonic()
    await asyncio.gather(*(_http_worker(port, request, started + seconds, rate)
                           for _ in range(CONNECTIONS)))
    rate.seconds = time.monotonic() - started
    return rate


async def _timed_loop(rate: Rate, until: float, once: Callable[[], Awaitable[None]]) -> None:
    while time.monotonic() < until:
        started = time.perf_counter()
        try:
            await once()
        except (RegistrationFailed, OSError):
            rate.errors += 1
            continue
        rate.latencies.append(time.perf_counter() - started)
        rate.count += 1


async def websocket_rate(name: str, port: int, seconds: float) -> Rate:
    async def once() -> None:
        async with connect(f"ws://127.0.0.1:{port}/ws") as ws:
            await ws.send(b"\x01" * 32)
            await ws.recv()

    rate = Rate(name)
    started = time.monotonic()
    await asyncio.gather(*(_timed_loop(rate, started + seconds, once)
                           for _ in range(HANDSHAKE_CLIENTS)))
    rate.seconds = time.monotonic() - started
    return rate


async def register_rate(name: str, port: int, agent_key: bytes, server_public: bytes,
                        seconds: float, baseline: str) -> Rate:
    rate = Rate(name, baseline=baseline)
    started = time.monotonic()

    def worker(n: int) -> Callable[[], Awaitable[None]]:
        async def once() -> None:
            await register(f"ws://127.0.0.1:{port}/register", private_key=agent_key,
                           owner="acme", vm_name=f"bench-{n}", server_key=server_public)
        return once

    await asyncio.gather(*(_timed_loop(rate, started + seconds, worker(n))
                           for n in range(HANDSHAKE_CLIENTS)))
    rate.seconds = time.monotonic() - started
    return rate


class _Pipe:
    """One end of an in-memory frame channel."""

    def __init__(self, inbox: asyncio.Queue[bytes], outbox: asyncio.Queue[bytes]) -> None:
        self.inbox, self.outbox = inbox, outbox

    async def send(self, data: bytes) -> None:
        await self.outbox.put(data)

    async def receive(self) -> bytes:
        return await self.inbox.get()


async def noise_in_process_rate(seconds: float) -> Rate:
    """Both ends of the project's Noise XX code in this process: the crypto alone."""
    agent, server = secrets.token_bytes(32), secrets.token_bytes(32)
    rate = Rate("Noise XX handshake, both ends in one process (no I/O)")
    started = time.monotonic()
    while time.monotonic() < started + seconds:
        a, b = asyncio.Queue[bytes](), asyncio.Queue[bytes]()
        t0 = time.perf_counter()
        await asyncio.gather(initiate(_Pipe(a, b), agent, b"{}", deadline_seconds=5),
                             respond(_Pipe(b, a), server, deadline_seconds=5))
        rate.latencies.append(time.perf_counter() - t0)
        rate.count += 1
    rate.seconds = time.monotonic() - started
    return rate


# -- the run --------------------------------------------------------------------------


def _controlplane_env(port: int, github: int, server_key: bytes, agent_public: bytes,
                      tmp: Path, **extra: str) -> dict[str, str]:
    return {
        "DD_ENV": "pr-7", "DD_OWNER": "acme", "DD_HOSTNAME": "pr-7.preview.test",
        "DD_BUILD_SHA": "f" * 40, "DD_BIND": "127.0.0.1", "DD_PORT": str(port),
        "DD_GITHUB_API": f"http://127.0.0.1:{github}",
        "DD_SESSION_SECRET": secrets.token_hex(24),
        "DD_NOISE_STATIC_KEY": base64.b64encode(server_key).decode(),
        "DD_AGENT_KEYS": base64.b64encode(agent_public).decode(),
        "DD_TSM_ROOT": str(tmp / "no-tsm"), **extra,
    }


Measurement = Callable[[float], Awaitable[Rate]]


def _merge(total: Rate | None, part: Rate) -> Rate:
    if total is None:
        return part
    total.seconds += part.seconds
    total.count += part.count
    total.errors += part.errors
    total.latencies += part.latencies
    return total


async def _measure(ports: dict[str, int], seconds: float, rounds: int, agent: bytes,
                   server_public: bytes) -> list[Rate]:
    """Each target in turn for ``seconds / rounds``, ``rounds`` times over, starting one
    target later each round: the machine's other load then falls on the baseline and the
    subject alike, and no target always follows the same neighbour."""
    bearer = {"Authorization": f"Bearer {BENCH_TOKEN}"}
    bare = "bare Quart GET /health (constant JSON)"
    bare_ws = "bare Quart websocket: connect, 1 frame each way, close"
    targets: list[Measurement] = [
        lambda t: http_rate(bare, ports["bare"], "/health", t),
        lambda t: http_rate("dd-controlplane GET /health", ports["cp"], "/health", t,
                            baseline=bare),
        lambda t: http_rate("dd-controlplane GET /api/status, bearer (owner cache 60 s)",
                            ports["cp"], "/api/status", t, bearer, baseline=bare),
        lambda t: http_rate(
            "dd-controlplane GET /api/status, bearer (cache off: GitHub each time)",
            ports["cp-nocache"], "/api/status", t, bearer, baseline=bare),
        lambda t: websocket_rate(bare_ws, ports["bare"], t),
        lambda t: register_rate("dd-controlplane /register (Noise XX + bootstrap)",
                                ports["cp"], agent, server_public, t, baseline=bare_ws),
        noise_in_process_rate,
    ]
    totals: list[Rate | None] = [None] * len(targets)
    for r in range(rounds):
        for i in [(r + k) % len(targets) for k in range(len(targets))]:  # rotate the order
            totals[i] = _merge(totals[i], await targets[i](seconds / rounds))
    return [t for t in totals if t is not None]


def run_controlplane_load(seconds: float) -> list[Rate]:
    rounds = max(3, round(seconds))
    agent, server = secrets.token_bytes(32), secrets.token_bytes(32)
    ports = {k: free_port() for k in ("bare", "github", "cp", "cp-nocache")}
    servers: list[ServerProcess] = []
    with tempfile.TemporaryDirectory(prefix="dd-bench-cp-") as tmp_name:
        tmp = Path(tmp_name)
        try:
            for kind in ("bare", "github"):
                servers.append(ServerProcess(
                    kind, [sys.executable, "-m", "benchmarks.servers", kind, str(ports[kind])],
                    ports[kind], {}, tmp / f"{kind}.log"))
            for name, extra in (("cp", {}), ("cp-nocache", {"DD_OWNER_CACHE_SECONDS": "0"})):
                env = _controlplane_env(ports[name], ports["github"], server,
                                        public_key_of(agent), tmp, **extra)
                servers.append(ServerProcess(name, [sys.executable, "-m", "dd_controlplane"],
                                             ports[name], env, tmp / f"{name}.log"))
            for s in servers:
                s.wait_serving("/user" if s.name == "github" else "/health")
            check = httpx.get(f"http://127.0.0.1:{ports['cp']}/api/status", timeout=5,
                              headers={"Authorization": f"Bearer {BENCH_TOKEN}"})
            if check.status_code != 200:
                raise RuntimeError(f"/api/status answered {check.status_code}, not 200")
            return asyncio.run(_measure(ports, seconds, rounds, agent, public_key_of(server)))
        finally:
            for s in servers:
                s.stop()


def print_controlplane_load(rates: list[Rate], seconds: float) -> None:
    section(f"3. control plane on Hypercorn, 127.0.0.1, {seconds:.0f} s each in interleaved "
            f"slices ({CONNECTIONS} keep-alive connections; {HANDSHAKE_CLIENTS} websocket "
            "clients)")
    by_name = {r.name: r for r in rates}
    rows = []
    for r in rates:
        base = by_name.get(r.baseline)
        rows.append([r.name, f"{r.per_second:.0f}/s",
                     ratio(r.per_second, base.per_second) if base else "baseline"
                     if any(x.baseline == r.name for x in rates) else "-",
                     r.errors, percentile(r.latencies, 50) * 1000,
                     percentile(r.latencies, 99) * 1000])
    print_table(["what", "rate", "vs bare", "errors", "p50 ms", "p99 ms"], rows)
