"""Inside one worker process of several: a whole gateway on the shared ports, telling its
supervisor (:mod:`~mnist_serving.lifecycle.supervisor`) when it serves, and draining when the
supervisor goes."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from multiprocessing.connection import Connection
from typing import Protocol

from mnist_serving.errors import StartupError
from mnist_serving.lifecycle.gateway import BoundPorts, Gateway, run_on_loop
from mnist_serving.observability.access_log import LineSink, configure_logging
from mnist_serving.settings import Settings, SettingsError
from mnist_serving.shared_state import GatewayShare


class GatewayBuilder(Protocol):
    """What makes a worker's gateway: :func:`mnist_serving.build.build_gateway`."""

    def __call__(
        self, settings: Settings, *, share: GatewayShare, access_sink: LineSink
    ) -> Gateway: ...


def worker_main(
    settings: Settings, share: GatewayShare, pipe: Connection, build: GatewayBuilder
) -> None:
    """A worker: one gateway on the shared ports, telling the supervisor when it serves."""
    # Ctrl-C reaches the whole process group; the supervisor passes it on once, as SIGTERM.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sink = configure_logging(settings.log_level, settings.access_log)
    try:
        gateway = build(settings, share=share, access_sink=sink)
    except (SettingsError, StartupError) as exc:
        pipe.send(("failed", f"worker {share.worker}: {exc}"))
        sys.exit(1)

    def serving(_ports: BoundPorts) -> None:
        pipe.send(("ready", os.getpid()))

    async def serve() -> int:
        import asyncio

        # The supervisor holds the other end: when it goes (even killed), this worker drains.
        def lifeline() -> None:
            try:
                pipe.recv()
            except (EOFError, OSError):
                asyncio.get_running_loop().remove_reader(pipe.fileno())
                gateway.request_stop()

        asyncio.get_running_loop().add_reader(pipe.fileno(), lifeline)
        return await gateway.serve(signals=(signal.SIGTERM,), on_serving=serving)

    try:
        code = run_on_loop(serve())
    except StartupError as exc:
        with contextlib.suppress(OSError):
            pipe.send(("failed", f"worker {share.worker}: {exc}"))
        sys.exit(1)
    sys.exit(code)
