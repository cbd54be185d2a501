"""Request accounting: every request the adapters serve is let in, counted and logged here, once.

Both adapters wrap each request in :meth:`RequestAccounting.request`, the same way, with a
:class:`RequestRecord` that the adapter, the core and the accounting fill as it goes::

    record = RequestRecord("rest", "predict", request_id, peer)
    async with accounting.request(record, credential, "inference") as record:
        result = await core.predict("serving_default", inputs, VersionSpec(), record)

What a request goes through depends on its kind (:data:`Kind`): an ``inference`` request first
takes its admission slot (:mod:`.admission`), waiting at the door while the gateway sheds;
every kind is keyed (an operational one only when its route is not open);
``inference`` and ``api`` requests are counted (in flight while inside, then total and latency
by outcome code, images, version), traced and logged; an ``operational`` one (a probe, the
metrics) is logged only when the settings ask for probes. A refusal on the way in ends the
request there and is recorded like any other outcome.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from mnist_serving.core.access_control import AccessControl
from mnist_serving.core.admission import Admission
from mnist_serving.errors import ServingError
from mnist_serving.observability.access_log import AccessLog, AccessRecord, utc_now
from mnist_serving.observability.metrics import Metrics
from mnist_serving.observability.recent_traffic import RecentTraffic
from mnist_serving.observability.tracing import Tracing
from mnist_serving.runtimes.batching import Timing
from mnist_serving.settings import Settings

log = logging.getLogger(__name__)
SHED_REPORT_S = 10.0  # refusals by queue delay are summed into one log line this often
# inference: runs the model (takes a slot); api: any other counted call; operational: health,
# readiness, metrics and the like (not counted); admin: steers the gateway (a key with the admin
# scope, always).
Kind = Literal["inference", "api", "operational", "admin"]
# What the REST adapter answers for an error (the access line's HTTP status); gRPC has none.
StatusOf = Callable[[BaseException], int]


@dataclass
class RequestRecord:
    """One request as it goes: who asked for what (set by the adapter), what it did (by the
    core), how it ended (by the accounting); read once, when it ends."""

    protocol: str  # the metrics' protocol label: rest, grpc, v2_rest, v2_grpc
    route: str  # the metrics' route label
    request_id: str
    peer: str | None = None
    client_cert: str | None = None  # a verified client certificate's name (mutual TLS)
    code: str = "OK"
    http_status: int | None = None  # set by the REST adapter; None for gRPC
    images: int = 0
    version: int | None = None
    key: str | None = None  # the API key's name, when keys are on
    timing: Timing = field(default_factory=Timing)
    trace: tuple[str, str] | None = None  # its server span's trace and span ids (tracing on)


class RequestAccounting:
    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        access: AccessControl,
        admission: Admission,
        tracing: Tracing | None = None,
        recent: RecentTraffic | None = None,
        access_log: AccessLog | None = None,
    ) -> None:
        self.metrics = metrics
        self.access = access
        self.admission = admission
        self.tracing = tracing or Tracing()
        self.access_log = access_log or AccessLog(settings.access_log)
        self._recent = recent or RecentTraffic()
        self._open_routes = frozenset(settings.open_routes)
        self._log_probes = settings.access_log_probes
        self._queue_target_ms = settings.queue_target_ms
        self._shed_since_report = 0
        self._shed_report_at = 0.0
        self._in_progress = 0  # requests of any route inside request()
        self._idle = asyncio.Event()
        self._idle.set()

    def request(
        self,
        record: RequestRecord,
        credential: str | None,
        kind: Kind,
        *,
        carrier: Mapping[str, str] | None = None,
        status_of: StatusOf | None = None,
    ) -> RequestScope:
        """The request's scope: let in on entry (or refused), recorded on exit. ``status_of``
        gives the HTTP status an error is answered with, for the access line. With tracing on,
        a counted request is a span continuing the trace context in ``carrier``."""
        return RequestScope(self, record, credential, kind, carrier, status_of)

    def stats(self) -> dict[str, float | int | None]:
        """Requests/s and p50/p99 latency of inference requests over the last minute (of
        every worker, with several)."""
        return self._recent.summary()

    def in_progress(self, change: int) -> None:
        """A request entered (+1) or left (-1); :meth:`wait_idle` waits for none."""
        self._in_progress += change
        if self._in_progress:
            self._idle.clear()
        else:
            self._idle.set()

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until no request is in progress (at most ``timeout`` s); whether it is so."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def _let_in(self, record: RequestRecord, credential: str | None, kind: Kind) -> None:
        """An inference request's slot first (a request refused there spends none of its
        caller's rate), then the caller's key and rate; an operational route's key only when
        the route is not open."""
        if kind == "operational":
            if record.route not in self._open_routes and self.access.enabled:
                self.access.authenticate(credential)
            return
        if kind == "inference":
            await self.admission.enter()
            record.timing.arrived = time.perf_counter()
        try:
            key = self.access.authenticate(credential)
            record.key = key if self.access.enabled else None
            self.access.require(key, "admin" if kind == "admin" else "inference")
            self.access.admit(key)
        except BaseException:
            if kind == "inference":
                self.admission.leave()
            raise

    def _ended(
        self, record: RequestRecord, exc: BaseException | None, kind: Kind, status: StatusOf | None
    ) -> None:
        """How it ended: the outcome code (and HTTP status) of an error; a counted request's
        refusal counted by its reason."""
        if exc is None:
            return
        if isinstance(exc, ServingError):
            record.code = exc.code
            if exc.refusal is not None and kind != "operational":
                self._note_refusal(record.protocol, exc.refusal)
        elif isinstance(exc, asyncio.CancelledError):
            record.code = "CANCELLED"  # the caller went away
        else:
            record.code = "INTERNAL"
        if status is not None:
            record.http_status = status(exc)

    def _count(self, record: RequestRecord, kind: Kind, elapsed: float) -> None:
        labels = (record.protocol, record.route, record.code)
        self.metrics.series("requests", *labels).inc()
        exemplar = self.tracing.exemplar(record.timing.span)
        self.metrics.observe_latency(labels, elapsed, exemplar)
        if kind == "inference":
            self._recent.record(elapsed)
        if record.images:
            self.metrics.series("images", record.protocol).inc(record.images)
        if record.version is not None:  # an inference request that reached a version
            version = str(record.version)
            self.metrics.series("version_requests", version, record.code).inc()
            self.metrics.series("version_latency", version).observe(elapsed)

    def _log(self, record: RequestRecord, kind: Kind, elapsed: float) -> None:
        """Its access-log line (an operational route's only when probes are asked for)."""
        if not self.access_log.enabled or (kind == "operational" and not self._log_probes):
            return
        timing = record.timing
        ran = timing.model_s > 0
        trace_id, span_id = record.trace or (None, None)
        self.access_log.write(
            AccessRecord(
                time=utc_now(),
                request_id=record.request_id,
                protocol=record.protocol,
                route=record.route,
                model_version=record.version,
                code=record.code,
                http_status=record.http_status,
                images=record.images,
                latency_ms=round(elapsed * 1000, 3),
                queue_ms=round(timing.queue_s * 1000, 3) if ran else None,
                model_ms=round(timing.model_s * 1000, 3) if ran else None,
                peer=record.peer,
                key=record.key,
                client_cert=record.client_cert,
                trace_id=trace_id,
                span_id=span_id,
            )
        )

    def _note_refusal(self, protocol: str, reason: str) -> None:
        self.metrics.series("refused", protocol, reason).inc()
        if reason == "queue_delay":
            self._report_shedding()

    def _report_shedding(self) -> None:
        """One warning per :data:`SHED_REPORT_S` while shedding, not one line per refusal: a
        flood of log lines is the last thing an overloaded gateway needs."""
        self._shed_since_report += 1
        now = time.monotonic()
        if now >= self._shed_report_at:
            log.warning(
                "shedding load: %d inference requests refused with 503 in the last %g s; "
                "admitted requests waited over the %g ms queue target, so at most %s are "
                "admitted at once for now",
                self._shed_since_report,
                SHED_REPORT_S,
                self._queue_target_ms,
                self.admission.state().limit,
            )
            self._shed_since_report = 0
            self._shed_report_at = now + SHED_REPORT_S


class RequestScope:
    """One request inside :meth:`RequestAccounting.request`: on the way in its span (tracing
    on), in-flight count, key, rate and slot; on the way out its slot back, counts, access
    line and span. A refusal on the way in is recorded there and raised. A class with
    ``__aenter__``/``__aexit__`` rather than a generator: it runs on every request."""

    __slots__ = (
        "_accounting",
        "_carrier",
        "_credential",
        "_in_flight",
        "_kind",
        "_span_scope",
        "_started",
        "_status_of",
        "record",
    )

    def __init__(
        self,
        accounting: RequestAccounting,
        record: RequestRecord,
        credential: str | None,
        kind: Kind,
        carrier: Mapping[str, str] | None,
        status_of: StatusOf | None,
    ) -> None:
        self._accounting, self.record, self._credential = accounting, record, credential
        self._kind, self._carrier, self._status_of = kind, carrier, status_of
        self._span_scope: Any = None
        self._in_flight: Any = None
        self._started = 0.0

    async def __aenter__(self) -> RequestRecord:
        accounting, record = self._accounting, self.record
        counted = self._kind != "operational"
        if counted and accounting.tracing.enabled:
            self._open_span()
        if counted:
            self._in_flight = accounting.metrics.series("in_flight", record.protocol, record.route)
            self._in_flight.inc()
        accounting.in_progress(1)
        self._started = record.timing.arrived = time.perf_counter()
        try:
            await accounting._let_in(record, self._credential, self._kind)
        except BaseException as exc:
            self._end(exc)  # refused: no slot was taken
            raise
        return record

    async def __aexit__(self, kind: Any, exc: BaseException | None, traceback: Any) -> None:
        if self._kind == "inference":
            self._accounting.admission.leave()
        self._end(exc)

    def _open_span(self) -> None:
        accounting, record = self._accounting, self.record
        self._span_scope = accounting.tracing.server_span(
            record.protocol, record.route, record.request_id, self._carrier
        )
        span = self._span_scope.__enter__()
        record.trace = accounting.tracing.ids(span)  # sampled or not: the logs join it
        # Only a sampled request gets child spans, links and an exemplar: an unsampled one
        # costs its non-recording server span and nothing more.
        record.timing.span = span if span.is_recording() else None

    def _end(self, exc: BaseException | None) -> None:
        accounting, record = self._accounting, self.record
        elapsed = time.perf_counter() - self._started
        accounting._ended(record, exc, self._kind, self._status_of)
        accounting.in_progress(-1)
        if self._in_flight is not None:
            self._in_flight.dec()
            accounting._count(record, self._kind, elapsed)
        accounting._log(record, self._kind, elapsed)
        if record.timing.span is not None:
            record.timing.span.set_attributes(
                {
                    "mnist.code": record.code,
                    "mnist.images": record.images,
                    "mnist.model_version": record.version or 0,
                }
            )
        if self._span_scope is not None:
            scope, self._span_scope = self._span_scope, None
            scope.__exit__(type(exc) if exc else None, exc, exc.__traceback__ if exc else None)
