"""Several gateway processes on the same ports: ``mnist-serve --workers N``.

One Python process does about one core of HTTP, JSON and batching; a worker per core uses
them all. The :class:`Supervisor` owns the processes:

- It reserves the REST and gRPC ports (a bound, not listening, ``SO_REUSEPORT`` socket each,
  held for its whole life), then spawns the workers. Each worker is a whole gateway, with its
  own runtime and batcher, that binds those ports with ``SO_REUSEPORT`` once its model is
  loaded, so the kernel spreads new connections across the workers that are listening.
- The gateway is ready when every worker is. A worker that cannot start (no model, a bad
  setting the workers see) stops the start with its own message, not a restart loop.
- A worker that dies later is restarted with backoff (0.5 s, doubling to 30 s, reset after a
  minute of good health), counted in ``mnist_worker_restarts_total`` and logged; its live
  gauges and recent-traffic ring are removed so no series of a dead process remains.
- SIGTERM or SIGINT (once) drains every worker as one gateway drains; a second one stops
  them without waiting. Workers ignore SIGINT themselves (Ctrl-C reaches the whole process
  group; the supervisor passes it on once) and stop by themselves if the supervisor dies.

What the workers share (the metrics folder, canary credit, rate-limit buckets) is made here
and handed to each at spawn (:class:`~mnist_serving.shared_state.GatewayShare`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from mnist_serving.core.access_control import token_buckets
from mnist_serving.errors import StartupError
from mnist_serving.files import write_atomically
from mnist_serving.lifecycle.gateway import (
    GRPC_GRACE_SECONDS,
    REST_GRACE_SECONDS,
    BoundPorts,
    announce,
    bound_ports,
)
from mnist_serving.lifecycle.preflight import prepare
from mnist_serving.lifecycle.sockets import reserve_port
from mnist_serving.lifecycle.worker import GatewayBuilder, worker_main
from mnist_serving.observability.multiprocess import WORKER_TABLE, worker_files
from mnist_serving.settings import Settings
from mnist_serving.shared_state import GatewayShare, SharedFloats

log = logging.getLogger(__name__)
START_TIMEOUT_SECONDS = 600.0  # a SavedModel load with warm-up on a slow disk, at worst
# A drain is REST's grace, then gRPC's, then unloading; past this a worker is killed.
DRAIN_SECONDS = REST_GRACE_SECONDS + GRPC_GRACE_SECONDS + 15.0
FIRST_BACKOFF_SECONDS = 0.5
MAX_BACKOFF_SECONDS = 30.0
HEALTHY_SECONDS = 60.0  # a worker up this long starts its backoff over
FOLDER_PREFIX = "mnist-gateway-"


class WorkerStartFailed(Exception):
    """A worker could not start; the message says which and why."""


@dataclass
class _Worker:
    index: int
    process: BaseProcess
    pipe: Connection  # the supervisor's end; the worker's lifeline
    started: float = field(default_factory=time.monotonic)
    ready: bool = False

    @property
    def pid(self) -> int:
        assert self.process.pid is not None
        return self.process.pid


def backoff(failures: int) -> float:
    """Seconds before restarting a worker that has died ``failures`` times in a row (≥ 1)."""
    return float(min(MAX_BACKOFF_SECONDS, FIRST_BACKOFF_SECONDS * 2 ** (failures - 1)))


def describe_exit(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


class Supervisor:
    """``build``: each worker's gateway maker (the composition root's, given by the command:
    this layer chooses no implementation); module-level, so a spawned process can be given it."""

    def __init__(self, settings: Settings, build: GatewayBuilder) -> None:
        if not isinstance(settings.workers, int) or settings.workers < 2:
            raise ValueError("a supervisor runs two workers or more; decide 'auto' first")
        self.settings = settings
        self._build = build
        self.count = settings.workers
        self._context = multiprocessing.get_context("spawn")  # no threads copied, no TF fork
        self._workers: dict[int, _Worker] = {}
        self._failures: dict[int, int] = {}  # deaths in a row, by worker index
        self._due: dict[int, float] = {}  # restarts waiting for their backoff
        self._restarts = 0
        self._signals: list[int] = []
        self._folder = Path()  # made at start: the workers' metrics and recent traffic
        self._reserved: list[socket.socket] = []
        self._share_parts: tuple[SharedFloats, SharedFloats] | None = None
        self._ports: BoundPorts | None = None

    # -- the lifecycle ----------------------------------------------------------------------

    def run(self) -> int:
        """Start every worker, keep them running until told to stop, drain; the exit code."""
        wake_read, wake_write = socket.socketpair()
        wake_read.setblocking(False)
        wake_write.setblocking(False)
        previous = {sig: signal.signal(sig, self._on_signal) for sig in _STOP}
        old_fd = signal.set_wakeup_fd(wake_write.fileno())
        try:
            self._start(wake_read)
            if self._signals:
                return self._drain(wake_read)
            self._supervise(wake_read)
            return self._drain(wake_read)
        except WorkerStartFailed as exc:
            print(f"mnist-serve: {exc}", file=sys.stderr, flush=True)
            self._drain(wake_read)  # the workers that did start
            return 1
        finally:
            signal.set_wakeup_fd(old_fd)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            wake_read.close()
            wake_write.close()
            self._clean_up()

    def _on_signal(self, signum: int, _frame: object) -> None:
        self._signals.append(signum)

    def _start(self, wake: socket.socket) -> None:
        prepare(self.settings)  # the settings' files, checked once, in one message
        remove_stale_folders(Path(tempfile.gettempdir()))
        try:
            self._folder = Path(tempfile.mkdtemp(prefix=FOLDER_PREFIX))
        except OSError as exc:
            raise WorkerStartFailed(
                f"cannot make the workers' metrics folder in {tempfile.gettempdir()} ({exc}); "
                "give the gateway a writable TMPDIR (a memory-backed one is best)"
            ) from None
        buckets = token_buckets(self._context)
        self._share_parts = (SharedFloats(1, context=self._context), buckets)
        rest_port, grpc_port = self._reserve_ports()
        self._worker_settings = self.settings.model_copy(
            update={
                "workers": 1,
                "rest_port": rest_port,
                "grpc_port": grpc_port,
                "ready_file": None,
            }
        )
        for index in range(self.count):
            self._spawn(index)
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not all(w.ready for w in self._workers.values()):
            if self._signals:
                return
            if time.monotonic() > deadline:
                raise WorkerStartFailed(
                    f"workers not ready after {START_TIMEOUT_SECONDS:.0f} s; stopping"
                )
            self._wait_for_events(wake, timeout=1.0, starting=True)
        self._write_table()
        ports = bound_ports(
            self.settings, rest_port, grpc_port if grpc_port >= 0 else None, self.count
        )
        self._ports = ports
        announce(self.settings, ports)
        log.info("%d workers serving: pids %s", self.count, self._pids())

    def _supervise(self, wake: socket.socket) -> None:
        while not self._signals:
            now = time.monotonic()
            for index, due in list(self._due.items()):
                if due <= now:
                    del self._due[index]
                    self._spawn(index)
            timeout = min((d - now for d in self._due.values()), default=1.0)
            self._wait_for_events(wake, timeout=max(0.0, min(timeout, 1.0)), starting=False)

    def _drain(self, wake: socket.socket) -> int:
        """Every worker drains (SIGTERM); a second signal here stops them at once."""
        if self._workers:
            log.info("draining %d workers", len(self._workers))
        self._due.clear()
        self._terminate_all()
        signals_seen = len(self._signals)
        deadline = time.monotonic() + DRAIN_SECONDS
        codes: list[int | None] = []
        while self._workers and time.monotonic() < deadline:
            if len(self._signals) > signals_seen:  # asked again: stop without waiting
                signals_seen = len(self._signals)
                self._terminate_all()
            for worker in self._exited(wake, timeout=0.5):
                codes.append(worker.process.exitcode)
                self._forget(worker)
        for worker in list(self._workers.values()):  # still there past the deadline
            log.warning(
                "worker %d (pid %d) did not drain in time; killing it", worker.index, worker.pid
            )
            worker.process.kill()
            worker.process.join(5)
            codes.append(worker.process.exitcode)
            self._forget(worker)
        return 0 if all(code == 0 for code in codes) else 1

    # -- workers ----------------------------------------------------------------------------

    def _spawn(self, index: int) -> None:
        assert self._share_parts is not None
        canary, buckets = self._share_parts
        share = GatewayShare(index, self._folder, canary, buckets)
        ours, theirs = self._context.Pipe()
        process = self._context.Process(
            target=worker_main,
            args=(self._worker_settings, share, theirs, self._build),
            name=f"mnist-serve-worker-{index}",
            daemon=False,
        )
        # prometheus-client chooses its multiprocess mode when it is imported: the worker
        # must find the folder in its environment from its first line on.
        with _environment(PROMETHEUS_MULTIPROC_DIR=str(self._folder)):
            process.start()
        theirs.close()
        self._workers[index] = _Worker(index, process, ours)

    def _wait_for_events(self, wake: socket.socket, timeout: float, *, starting: bool) -> None:
        """Messages from workers, workers that exited, signals; until one comes or timeout."""
        objects: list[Any] = [wake]
        objects += [w.pipe for w in self._workers.values()]
        objects += [w.process.sentinel for w in self._workers.values()]
        for ready in wait(objects, timeout):
            if ready is wake:
                with contextlib.suppress(BlockingIOError):
                    wake.recv(64)
                continue
            worker = self._by_object(ready)
            if worker is None:
                continue
            if ready is worker.pipe:
                self._message(worker, starting)
            elif worker.process.exitcode is not None:
                self._died(worker, starting)

    def _message(self, worker: _Worker, starting: bool) -> None:
        try:
            kind, detail = worker.pipe.recv()
        except (EOFError, OSError):
            return  # its end closed: the process is exiting; its sentinel will say how
        if kind == "ready":
            worker.ready = True
            if not starting:
                log.info("worker %d (pid %d) is serving again", worker.index, worker.pid)
                self._write_table()
        elif kind == "failed":
            if starting:
                raise WorkerStartFailed(detail)
            log.error("worker %d (pid %d) could not start: %s", worker.index, worker.pid, detail)

    def _died(self, worker: _Worker, starting: bool) -> None:
        worker.process.join()
        how = describe_exit(worker.process.exitcode)
        if starting:
            # It may have said why just before: prefer its own words.
            if worker.pipe.poll():
                self._message(worker, starting)
            raise WorkerStartFailed(
                f"worker {worker.index} stopped while starting ({how}); see its messages above"
            )
        healthy = time.monotonic() - worker.started >= HEALTHY_SECONDS
        failures = 1 if healthy else self._failures.get(worker.index, 0) + 1
        self._failures[worker.index] = failures
        delay = backoff(failures)
        self._restarts += 1
        log.error(
            "worker %d (pid %d) %s; restarting it in %.1f s (restart %d)",
            worker.index,
            worker.pid,
            how,
            delay,
            self._restarts,
        )
        self._forget(worker)
        self._due[worker.index] = time.monotonic() + delay

    def _exited(self, wake: socket.socket, timeout: float) -> list[_Worker]:
        objects: list[Any] = [wake] + [w.process.sentinel for w in self._workers.values()]
        ready = wait(objects, timeout)
        if wake in ready:
            with contextlib.suppress(BlockingIOError):
                wake.recv(64)
        exited = [w for w in list(self._workers.values()) if w.process.sentinel in ready]
        for worker in exited:
            worker.process.join()  # sets its exit code
        return exited

    def _forget(self, worker: _Worker) -> None:
        """Remove a dead worker and what of it would otherwise stay: its live gauges, its
        files (recent traffic, drift window), its row in the worker table (its counters stay)."""
        from prometheus_client.multiprocess import mark_process_dead

        worker.process.join(1)
        with contextlib.suppress(OSError):
            mark_process_dead(worker.pid, str(self._folder))  # type: ignore[no-untyped-call]
            for path in worker_files(self._folder, worker.pid):
                path.unlink(missing_ok=True)
        worker.pipe.close()
        self._workers.pop(worker.index, None)
        self._write_table()

    def _terminate_all(self) -> None:
        for worker in self._workers.values():
            if worker.process.exitcode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(worker.pid, signal.SIGTERM)

    def _by_object(self, ready: object) -> _Worker | None:
        for worker in self._workers.values():
            if ready is worker.pipe or ready == worker.process.sentinel:
                return worker
        return None

    # -- ports, table, clean-up ---------------------------------------------------------------

    def _reserve_ports(self) -> tuple[int, int]:
        """Hold the REST and gRPC ports (a free one for 0) for as long as the gateway runs:
        bound with SO_REUSEPORT but not listening, so no connection waits on them."""
        s = self.settings
        rest = self._reserve(s.host, s.rest_port)
        grpc_port = s.grpc_port if s.grpc_port < 0 else self._reserve(s.host, s.grpc_port)
        return rest, grpc_port

    def _reserve(self, host: str, port: int) -> int:
        try:
            sock = reserve_port(host, port)
        except StartupError as exc:
            raise WorkerStartFailed(str(exc)) from None
        self._reserved.append(sock)
        return int(sock.getsockname()[1])

    def _pids(self) -> list[int]:
        return [w.pid for w in sorted(self._workers.values(), key=lambda w: w.index)]

    def _write_table(self) -> None:
        """The worker table that ``multiprocess.WorkerProcesses`` reads for the metrics."""
        table = {
            "supervisor": os.getpid(),
            "restarts": self._restarts,
            "workers": [
                {"index": w.index, "pid": w.pid}
                for w in sorted(self._workers.values(), key=lambda w: w.index)
                if w.ready and w.process.exitcode is None
            ],
        }
        with contextlib.suppress(OSError):
            write_atomically(self._folder / WORKER_TABLE, json.dumps(table))

    def _clean_up(self) -> None:
        for sock in self._reserved:
            sock.close()
        if self.settings.ready_file is not None and self._ports is not None:
            self.settings.ready_file.unlink(missing_ok=True)
        if self._folder != Path():
            shutil.rmtree(self._folder, ignore_errors=True)


_STOP = (signal.SIGTERM, signal.SIGINT)


def remove_stale_folders(parent: Path) -> list[Path]:
    """Remove the metrics folders of gateways whose supervisor is gone (killed, so it could
    not clean up); the ones removed. A folder whose table names a live process is kept."""
    removed = []
    for folder in parent.glob(f"{FOLDER_PREFIX}*"):
        try:
            supervisor = int(json.loads((folder / WORKER_TABLE).read_text())["supervisor"])
        except (OSError, ValueError, KeyError, TypeError):
            continue  # no table yet (a gateway starting) or not ours
        if not Path(f"/proc/{supervisor}").exists():
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


@contextlib.contextmanager
def _environment(**variables: str) -> Iterator[None]:
    before = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
