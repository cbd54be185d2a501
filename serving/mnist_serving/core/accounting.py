"""Request accounting: every request the adapters serve is let in, counted and logged here, once.

An adapter wraps each API request in :meth:`RequestAccounting.request`: the caller's key and
rate are checked, an inference request takes its admission slot, and when the request ends it
is counted (total and latency by outcome code, in flight while inside, images), its access
line is written and, with tracing on, its server span closed::

    async with accounting.request("rest", "predict", credential, rid=rid) as tracker:
        result = await core.predict("serving_default", inputs, VersionSpec(), tracker)

Operational routes (probes, metrics) only pass :meth:`RequestAccounting.authorize` and, when
asked, :meth:`RequestAccounting.log_probe`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mnist_serving.core.access_control import AccessControl
from mnist_serving.core.admission import Admission
from mnist_serving.errors import (
    Overloaded,
    QueueDelayed,
    RateLimited,
    ServingError,
    TooManyInFlight,
    Unauthenticated,
)
from mnist_serving.observability.access_log import AccessLog, AccessRecord, request_id, utc_now
from mnist_serving.observability.metrics import Metrics
from mnist_serving.observability.recent_traffic import RecentTraffic
from mnist_serving.observability.tracing import Tracing
from mnist_serving.runtimes.batching import Timing
from mnist_serving.settings import Settings

log = logging.getLogger(__name__)
INFERENCE_ROUTES = frozenset({"predict", "classify", "infer"})
SHED_REPORT_S = 10.0  # refusals by queue delay are summed into one log line this often
REFUSAL_REASONS: dict[type[ServingError], str] = {
    Overloaded: "queue_full",
    QueueDelayed: "queue_delay",
    TooManyInFlight: "in_flight_limit",
    RateLimited: "rate_limited",
    Unauthenticated: "unauthenticated",
}
# What the REST adapter answers for an error (the access line's HTTP status); gRPC has none.
StatusOf = Callable[[BaseException], int]


@dataclass
class RequestTracker:
    """One request as it goes: filled in by the core and the adapter, read by
    :meth:`RequestAccounting.request` when it ends."""

    request_id: str = ""
    code: str = "OK"
    images: int = 0
    version: int | None = None
    http_status: int | None = None  # set by the REST adapter; None for gRPC
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

    def authorize(self, route: str, credential: str | None) -> None:
        """With API keys on, an operational route not listed as open needs a key too."""
        if route not in self._open_routes and self.access.enabled:
            self.access.authenticate(credential)

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

    def request(
        self,
        protocol: str,
        route: str,
        credential: str | None = None,
        *,
        rid: str | None = None,
        peer: str | None = None,
        carrier: Mapping[str, str] | None = None,
        door: tuple[float, float] | None = None,
        status_of: StatusOf | None = None,
    ) -> RequestScope:
        """Check the caller's key and rate, take an inference slot (:mod:`.admission`), then
        count the request: in flight while inside, then total and latency by outcome code,
        and its access-log line. ``rid`` is the request id the adapter decided (and answers
        with); without one a new one is made. ``door``: the adapter took the slot itself,
        before reading the request (``perf_counter`` times it arrived and was admitted).
        ``status_of``: the HTTP status an error is answered with, for the access line. With
        tracing on, the request is a span continuing the trace context in ``carrier``."""
        tracker = RequestTracker(rid if rid is not None else request_id(None))
        return RequestScope(
            self, protocol, route, credential, tracker, peer, carrier, door, status_of
        )

    async def _admit(
        self,
        route: str,
        credential: str | None,
        tracker: RequestTracker,
        door: tuple[float, float] | None,
    ) -> None:
        key = self.access.authenticate(credential)
        tracker.key = key if self.access.enabled else None
        self.access.admit(key)
        if route in INFERENCE_ROUTES and door is None:
            await self.admission.enter()
            tracker.timing.arrived = time.perf_counter()

    def _failed(
        self,
        protocol: str,
        tracker: RequestTracker,
        exc: BaseException,
        status_of: StatusOf | None,
    ) -> None:
        if isinstance(exc, ServingError):
            tracker.code = exc.code
            reason = REFUSAL_REASONS.get(type(exc))
            if reason:
                self._note_refusal(protocol, reason)
        elif isinstance(exc, asyncio.CancelledError):
            tracker.code = "CANCELLED"  # the caller went away
        else:
            tracker.code = "INTERNAL"
        if status_of is not None:
            tracker.http_status = status_of(exc)

    def _finished(
        self, protocol: str, route: str, tracker: RequestTracker, elapsed: float, peer: str | None
    ) -> None:
        self.metrics.series("requests", protocol, route, tracker.code).inc()
        exemplar = self.tracing.exemplar(tracker.timing.span)
        self.metrics.observe_latency((protocol, route, tracker.code), elapsed, exemplar)
        if route in INFERENCE_ROUTES:
            self._recent.record(elapsed)
        if tracker.images:
            self.metrics.series("images", protocol).inc(tracker.images)
        if tracker.version is not None:
            self.metrics.series("version_requests", str(tracker.version)).inc()
        if self.access_log.enabled:
            self._write_access(
                protocol,
                route,
                tracker.request_id,
                tracker.code,
                tracker.http_status,
                elapsed,
                peer,
                tracker,
            )
        span = tracker.timing.span
        if span is not None:
            span.set_attributes(
                {
                    "mnist.code": tracker.code,
                    "mnist.images": tracker.images,
                    "mnist.model_version": tracker.version or 0,
                }
            )

    def log_probe(
        self,
        protocol: str,
        route: str,
        code: str,
        http_status: int | None,
        elapsed: float,
        request: str,
        peer: str | None,
    ) -> None:
        """An operational route's access-log line, when the settings ask for probes too."""
        if self.access_log.enabled and self._log_probes:
            self._write_access(protocol, route, request, code, http_status, elapsed, peer)

    def _write_access(
        self,
        protocol: str,
        route: str,
        request: str,
        code: str,
        http_status: int | None,
        elapsed: float,
        peer: str | None,
        tracker: RequestTracker | None = None,
    ) -> None:
        """One access-log line; an inference request's ``tracker`` adds what it did."""
        timing = tracker.timing if tracker is not None else None
        ran = timing is not None and timing.model_s > 0
        self.access_log.write(
            AccessRecord(
                time=utc_now(),
                request_id=request,
                protocol=protocol,
                route=route,
                model_version=tracker.version if tracker is not None else None,
                code=code,
                http_status=http_status,
                images=tracker.images if tracker is not None else 0,
                latency_ms=round(elapsed * 1000, 3),
                queue_ms=round(timing.queue_s * 1000, 3) if ran and timing else None,
                model_ms=round(timing.model_s * 1000, 3) if ran and timing else None,
                peer=peer,
                key=tracker.key if tracker is not None else None,
                trace_id=tracker.trace[0] if tracker is not None and tracker.trace else None,
                span_id=tracker.trace[1] if tracker is not None and tracker.trace else None,
            )
        )

    def count_refusal(self, protocol: str, route: str, refusal: Overloaded, started: float) -> None:
        """A refusal an adapter answered at its door, without entering :meth:`request`:
        counted as a request (total, latency) and as a refusal by reason, as the others are."""
        code = refusal.code
        self._note_refusal(protocol, REFUSAL_REASONS[type(refusal)])
        self.metrics.series("requests", protocol, route, code).inc()
        self.metrics.observe_latency((protocol, route, code), time.perf_counter() - started, None)

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
    """One request inside :meth:`RequestAccounting.request`: its span (tracing on), its key,
    rate and slot on the way in; its counts, access line and slot back on the way out. A class
    with ``__aenter__``/``__aexit__`` rather than a generator: it runs on every request."""

    __slots__ = (
        "_accounting",
        "_carrier",
        "_credential",
        "_door",
        "_entered",
        "_in_flight",
        "_peer",
        "_protocol",
        "_route",
        "_span_scope",
        "_started",
        "_status_of",
        "tracker",
    )

    def __init__(
        self,
        accounting: RequestAccounting,
        protocol: str,
        route: str,
        credential: str | None,
        tracker: RequestTracker,
        peer: str | None,
        carrier: Mapping[str, str] | None,
        door: tuple[float, float] | None,
        status_of: StatusOf | None,
    ) -> None:
        self._accounting = accounting
        self._protocol, self._route, self._credential = protocol, route, credential
        self.tracker, self._peer, self._carrier = tracker, peer, carrier
        self._door, self._status_of = door, status_of
        self._entered = False
        self._span_scope: Any = None
        self._in_flight: Any = None
        self._started = 0.0

    async def __aenter__(self) -> RequestTracker:
        accounting, tracker = self._accounting, self.tracker
        if accounting.tracing.enabled:
            self._open_span()
        self._in_flight = accounting.metrics.series("in_flight", self._protocol, self._route)
        self._in_flight.inc()
        accounting.in_progress(1)
        self._started = tracker.timing.arrived = time.perf_counter()
        if self._door is not None:
            self._started, tracker.timing.arrived = self._door
        try:
            await accounting._admit(self._route, self._credential, tracker, self._door)
        except BaseException as exc:
            await self.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        self._entered = self._route in INFERENCE_ROUTES and self._door is None
        return tracker

    def _open_span(self) -> None:
        accounting, tracker = self._accounting, self.tracker
        self._span_scope = accounting.tracing.server_span(
            self._protocol, self._route, tracker.request_id, self._carrier
        )
        span = self._span_scope.__enter__()
        tracker.trace = accounting.tracing.ids(span)  # sampled or not: the logs join it
        # Only a sampled request gets child spans, links and an exemplar: an unsampled one
        # costs its non-recording server span and nothing more.
        tracker.timing.span = span if span.is_recording() else None

    async def __aexit__(self, kind: Any, exc: BaseException | None, traceback: Any) -> None:
        accounting = self._accounting
        if exc is not None:
            accounting._failed(self._protocol, self.tracker, exc, self._status_of)
        if self._entered:
            self._entered = False
            accounting.admission.leave()
        self._in_flight.dec()
        accounting.in_progress(-1)
        elapsed = time.perf_counter() - self._started
        accounting._finished(self._protocol, self._route, self.tracker, elapsed, self._peer)
        if self._span_scope is not None:
            scope, self._span_scope = self._span_scope, None
            scope.__exit__(kind, exc, traceback)
