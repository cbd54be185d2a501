"""The :class:`Gateway`: one object owns the process's serving lifecycle.

It loads the model (through the repository), binds and starts the REST server (uvicorn, on a
socket bound here) and the gRPC server, announces the bound ports (a line for people, the
``--ready-file`` JSON for tools), and on SIGTERM/SIGINT drains: readiness off at once (gRPC
health follows), no new connections, requests in progress finish, the model is unloaded, exit
0. A second signal stops without waiting. Nothing of uvicorn is patched: a small subclass of
its server leaves the signals to the gateway and says when it listens, and it serves a socket
bound here. As one of several worker processes (:mod:`mnist_serving.lifecycle.supervisor`) it binds its
ports with ``SO_REUSEPORT``, after its model is loaded, so the kernel sends it connections
only once it can answer them.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import os
import signal
import socket
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from dataclasses import asdict, dataclass

import uvicorn
from starlette.types import ASGIApp

from mnist_serving.adapters.grpc.server import GrpcServer
from mnist_serving.core.accounting import RequestAccounting
from mnist_serving.core.inference import InferenceCore
from mnist_serving.core.rollout_driver import RolloutDriver
from mnist_serving.files import write_atomically
from mnist_serving.lifecycle.sockets import bind_socket
from mnist_serving.lifecycle.tls import Tls, grpc_credentials, rest_context
from mnist_serving.settings import Settings

log = logging.getLogger(__name__)
GRPC_GRACE_SECONDS = 5.0
REST_GRACE_SECONDS = 10
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@dataclass(frozen=True)
class BoundPorts:
    """What ``--ready-file`` holds once the gateway serves."""

    pid: int
    rest_url: str
    rest_port: int
    grpc_port: int | None  # None: gRPC off
    tls: bool
    workers: int = 1  # processes serving these ports (pid: the supervisor's, with several)


class RestServer(uvicorn.Server):
    """uvicorn's server, leaving SIGTERM/SIGINT to the gateway and saying when it listens."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.listening = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the Gateway owns the signals and the drain

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.listening.set()


class Gateway:
    def __init__(
        self,
        settings: Settings,
        core: InferenceCore,
        accounting: RequestAccounting,
        app: ASGIApp,
        grpc_server: GrpcServer | None,
        tls: Tls | None,
        rest_protocol: type[asyncio.Protocol] | None = None,
        rollout: RolloutDriver | None = None,
        *,
        shared_ports: bool = False,
    ) -> None:
        self.settings = settings
        self._shared_ports = shared_ports  # one worker of several: bind with SO_REUSEPORT
        self.core = core
        self.accounting = accounting
        self.app = app
        self._grpc = grpc_server
        self._tls = tls
        self._rest_protocol = rest_protocol  # uvicorn's httptools protocol, or a subclass
        self.rollout = rollout
        self._rest: RestServer | None = None
        self._rest_task: asyncio.Task[None] | None = None
        self._rest_socket: socket.socket | None = None
        self._stop = asyncio.Event()
        self._key_watch: asyncio.Task[None] | None = None
        self.ports: BoundPorts | None = None

    # -- for in-process use (tests, embedding): the model without the servers ---------------

    @contextlib.asynccontextmanager
    async def model_loaded(self) -> AsyncIterator[Gateway]:
        """The model loaded around the block; :attr:`app` answers in-process meanwhile."""
        await self._load()
        try:
            yield self
        finally:
            await self._unload()

    async def _load(self) -> None:
        if self.core.samples is not None:
            self.core.samples.start()
        if self.rollout is not None:
            self.rollout.prepare()
        await self.core.repository.start()
        if self.rollout is not None:
            await self.rollout.start()
        if self.settings.api_keys_file is not None and self.settings.model_poll_seconds > 0:
            self._key_watch = asyncio.create_task(self._watch_keys(), name="key-watcher")

    async def _watch_keys(self) -> None:
        """Re-read the API keys file as often as the model folder is looked at: a key added
        or revoked takes effect within one interval, in every worker (each reads it)."""
        while True:
            await asyncio.sleep(self.settings.model_poll_seconds)
            self.accounting.access.refresh()

    async def _unload(self) -> None:
        if self._key_watch is not None:
            self._key_watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._key_watch
        if self.rollout is not None:
            await self.rollout.close()
        if self.core.shadow is not None:  # mirrors are never worth waiting for
            await self.core.shadow.close()
        await self.core.repository.close()
        if self.core.samples is not None:  # what is queued is written before the exit
            await asyncio.to_thread(self.core.samples.close)

    # -- the process lifecycle ------------------------------------------------------------

    async def serve(
        self,
        sockets: list[socket.socket] | None = None,
        *,
        signals: tuple[signal.Signals, ...] = STOP_SIGNALS,
        on_serving: Callable[[BoundPorts], None] | None = None,
    ) -> int:
        """Start, serve until one of ``signals``, drain; the exit code (0 after a clean drain).
        ``on_serving`` is told the ports instead of the ready line and file (a worker tells
        its supervisor)."""
        loop = asyncio.get_running_loop()
        for sig in signals:
            loop.add_signal_handler(sig, self.request_stop)
        try:
            await self.start(sockets, on_serving)
            await self._stop.wait()
        finally:
            await self.stop()
            for sig in signals:
                loop.remove_signal_handler(sig)
        return 0

    def request_stop(self) -> None:
        """Begin the drain; asked twice, stop without waiting for requests in progress."""
        if self._stop.is_set() and self._rest is not None:
            self._rest.force_exit = True
        self.core.readiness.drain()
        self._stop.set()

    async def start(
        self,
        sockets: list[socket.socket] | None = None,
        on_serving: Callable[[BoundPorts], None] | None = None,
    ) -> BoundPorts:
        """Load the model, then bind and start REST and gRPC; the ports once serving."""
        await self._load()
        # Move everything built at start-up out of the collector's sight: full collections then
        # scan only per-request garbage, which keeps their pauses out of the latency tail.
        gc.collect()
        gc.freeze()
        s = self.settings
        self._rest_socket = (
            sockets[0]
            if sockets
            else bind_socket(s.host, s.rest_port, reuse_port=self._shared_ports)
        )
        await self._start_rest(self._rest_socket)
        grpc_port = await self._start_grpc()
        self.ports = self._ports(grpc_port)
        if on_serving is not None:
            on_serving(self.ports)
        else:
            announce(self.settings, self.ports)
        return self.ports

    async def _start_rest(self, sock: socket.socket) -> None:
        self._rest = RestServer(self._uvicorn_config())
        self._rest_task = asyncio.create_task(self._rest.serve([sock]), name="rest-server")
        listening = asyncio.create_task(self._rest.listening.wait())
        await asyncio.wait({self._rest_task, listening}, return_when=asyncio.FIRST_COMPLETED)
        if self._rest_task.done():
            listening.cancel()
            self._rest_task.result()  # raises what stopped it
            raise RuntimeError("the REST server stopped while starting")

    async def _start_grpc(self) -> int | None:
        if self._grpc is None:
            return None
        credentials = grpc_credentials(self._tls) if self._tls is not None else None
        port = self._grpc.bind(
            self.settings.host, self.settings.grpc_port, credentials, shared=self._shared_ports
        )
        await self._grpc.start()
        return port

    async def stop(self) -> None:
        """Drain and unload: readiness off, REST closed gracefully, then gRPC once the requests
        in progress are answered (both bounded), then the model closed."""
        self.core.readiness.drain()
        if self._rest is not None and self._rest_task is not None:
            self._rest.should_exit = True
            await self._rest_task
        if self._grpc is not None:
            await self.accounting.wait_idle(GRPC_GRACE_SECONDS)
            await self._grpc.stop(GRPC_GRACE_SECONDS)
        await self._unload()
        self.accounting.access_log.flush()  # the last turn's lines, before the loop goes
        if self.settings.ready_file is not None and self.ports is not None:
            self.settings.ready_file.unlink(missing_ok=True)  # ours: written when serving

    # -- details --------------------------------------------------------------------------

    def _uvicorn_config(self) -> uvicorn.Config:
        s, tls = self.settings, self._tls
        return uvicorn.Config(
            self.app,
            log_level=s.log_level,
            log_config=None,  # uvicorn's lines go through the gateway's format (access_log)
            access_log=False,  # the core writes one line per request, with more in it
            http=self._rest_protocol or "httptools",
            lifespan="off",  # the gateway, not the ASGI lifespan, loads the model
            timeout_graceful_shutdown=REST_GRACE_SECONDS,
            ssl_context_factory=(lambda _config, _default: rest_context(tls)) if tls else None,
        )

    def _ports(self, grpc_port: int | None) -> BoundPorts:
        assert self._rest_socket is not None
        port = int(self._rest_socket.getsockname()[1])
        return bound_ports(self.settings, port, grpc_port)


def bound_ports(
    settings: Settings, rest_port: int, grpc_port: int | None, workers: int = 1
) -> BoundPorts:
    """What this process serves on, as the ready line and file tell it (a wildcard host is
    shown as loopback, which a local client can reach)."""
    host = settings.host
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    tls = settings.tls_cert_file is not None
    scheme = "https" if tls else "http"
    return BoundPorts(
        os.getpid(), f"{scheme}://{shown}:{rest_port}", rest_port, grpc_port, tls, workers
    )


def announce(settings: Settings, ports: BoundPorts) -> None:
    """A line for people; the ready file (written whole, then renamed) for tools."""
    host = ports.rest_url.rsplit(":", 1)[0].split("//", 1)[1]
    grpc_text = f", gRPC {host}:{ports.grpc_port}" if ports.grpc_port else ", gRPC off"
    grpc_text += " (TLS)" if ports.grpc_port and ports.tls else ""
    base = ports.rest_url
    workers = f", {ports.workers} workers" if ports.workers > 1 else ""
    line = f"ready on {base}{grpc_text}{workers}  (API docs {base}/docs, metrics {base}/metrics)"
    if settings.access_log == "json":  # every line of a JSON log is JSON
        log.info(line, extra={"fields": {"message": "ready", **asdict(ports)}})
    else:
        print(f"mnist-serve: {line}", flush=True)
    if settings.ready_file is not None:
        write_atomically(settings.ready_file, json.dumps(asdict(ports), indent=2) + "\n")


def run(gateway: Gateway) -> int:
    """Serve on a fresh event loop (uvloop where installed) until told to stop."""
    return run_on_loop(gateway.serve())


def run_on_loop(main: Coroutine[None, None, int]) -> int:
    """Run ``main`` on a fresh event loop, uvloop's where installed."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvicorn[standard] brings it on Linux and macOS
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)
