"""OpenTelemetry traces, when the ``otel`` extra is installed and ``OTEL_TRACES_EXPORTER`` asks.

Configured by the standard variables: ``OTEL_TRACES_EXPORTER`` (``otlp`` or ``console``; unset
or ``none``: off), ``OTEL_SERVICE_NAME``, ``OTEL_EXPORTER_OTLP_ENDPOINT``,
``OTEL_TRACES_SAMPLER`` / ``_ARG`` (read by the SDK itself). Off, every method here returns at
once (the cost is an attribute test per request).

Each request is a SERVER span continuing the caller's W3C ``traceparent`` / ``tracestate``
(REST headers, gRPC metadata), with child spans for preprocessing, the time queued and the
model call. The batcher's work is one span per batch, *linked* to every request span it served:
a batch serves many traces, so it belongs to none of them as a child.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator, Mapping
from typing import Any

log = logging.getLogger(__name__)


class Tracing:
    """The gateway's tracer, or nothing. ``tracer`` is an OpenTelemetry tracer (tests pass one
    on an in-memory exporter); None turns tracing off."""

    def __init__(self, tracer: Any = None) -> None:
        self.tracer = tracer
        self.enabled = tracer is not None
        if self.enabled:
            from opentelemetry import propagate, trace

            self._extract = propagate.extract
            self._trace = trace

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> Tracing:
        exporter = environ.get("OTEL_TRACES_EXPORTER", "none").strip().lower()
        if exporter in ("", "none"):
            return cls()
        try:
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import (
                BatchSpanProcessor,
                ConsoleSpanExporter,
                SpanExporter,
            )
        except ImportError:
            log.warning(
                "OTEL_TRACES_EXPORTER=%s, but the otel extra is not installed "
                "(pip install 'mnist-serving[otel]'): tracing stays off",
                exporter,
            )
            return cls()
        chosen: SpanExporter
        if exporter == "console":
            chosen = ConsoleSpanExporter()
        elif exporter == "otlp":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

            chosen = OTLPSpanExporter()
        else:
            log.warning(
                "OTEL_TRACES_EXPORTER=%s is not otlp, console or none: tracing off", exporter
            )
            return cls()
        provider = TracerProvider(resource=Resource.create())  # OTEL_SERVICE_NAME, sampler
        provider.add_span_processor(BatchSpanProcessor(chosen))
        return cls(provider.get_tracer("mnist_serving"))

    @contextlib.contextmanager
    def server_span(
        self, protocol: str, route: str, request_id: str, carrier: Mapping[str, str] | None
    ) -> Iterator[Any]:
        """A SERVER span for one request, continuing the caller's trace context; None when off
        (and then nothing is built for it: this runs on every request)."""
        if not self.enabled:
            yield None
            return
        parent = self._extract(dict(carrier or {}))
        kind = self._trace.SpanKind.SERVER
        attributes = {"rpc.system": protocol, "mnist.route": route, "mnist.request_id": request_id}
        with self.tracer.start_as_current_span(
            f"{protocol} {route}",
            context=parent,
            kind=kind,
            attributes=attributes,
            end_on_exit=True,
        ) as span:
            yield span

    @staticmethod
    def ids(span: Any) -> tuple[str, str] | None:
        """The span's trace id and span id as lowercase hex (32 and 16 digits), sampled or
        not, for the request's access line; None without a span."""
        if span is None:
            return None
        context = span.get_span_context()
        if not context.is_valid:
            return None
        return format(context.trace_id, "032x"), format(context.span_id, "016x")

    @staticmethod
    def exemplar(span: Any) -> dict[str, str] | None:
        """A sampled request's trace id, for the latency histogram's exemplar (a Grafana
        panel jumps from a slow bucket to its trace); None when not traced."""
        if span is None or not span.is_recording():
            return None
        return {"trace_id": format(span.get_span_context().trace_id, "032x")}

    def child(self, name: str, parent: Any, started_ns: int, ended_ns: int) -> None:
        """A child span of ``parent`` over a stretch already measured (epoch ns)."""
        if parent is None:
            return
        context = self._trace.set_span_in_context(parent)
        span = self.tracer.start_span(name, context=context, start_time=started_ns)
        span.end(end_time=ended_ns)

    def start_batch(self, parents: list[Any], images: int) -> Any:
        """One span for a model call, linked to the request span of every request it served.
        A batch serves many traces; it is the child of its first request's span, so a lone
        request (and a chain of gateways forwarding it) stays one trace. None when off or
        when no request in the batch is traced."""
        if not self.enabled:
            return None
        traced = [p for p in parents if p is not None]
        if not traced:
            return None
        return self.tracer.start_span(
            "model batch",
            context=self._trace.set_span_in_context(traced[0]),
            links=[self._trace.Link(p.get_span_context()) for p in traced],
            attributes={"mnist.batch.images": images, "mnist.batch.requests": len(traced)},
        )

    @contextlib.contextmanager
    def current(self, span: Any) -> Iterator[None]:
        """``span`` as the current span meanwhile (for the backend call's client span)."""
        if span is None:
            yield
            return
        with self._trace.use_span(span, end_on_exit=False):
            yield

    @contextlib.contextmanager
    def client_span(self, name: str, peer: str) -> Iterator[list[tuple[str, str]]]:
        """A CLIENT span for an outgoing gRPC call, yielding the metadata that carries its
        context (``traceparent``); empty metadata when off."""
        if not self.enabled:
            yield []
            return
        from opentelemetry import propagate

        kind = self._trace.SpanKind.CLIENT
        with self.tracer.start_as_current_span(
            name, kind=kind, attributes={"rpc.system": "grpc", "server.address": peer}
        ):
            carrier: dict[str, str] = {}
            propagate.inject(carrier)
            yield list(carrier.items())


def epoch_ns(perf_seconds: float) -> int:
    """A ``time.perf_counter()`` reading as epoch nanoseconds, as spans are timed."""
    return time.time_ns() - int((time.perf_counter() - perf_seconds) * 1e9)
