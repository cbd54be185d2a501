"""What observability costs: the same gateway with access logs off, text and json, and with
OpenTelemetry tracing sampled at 100% and 1% (exported over OTLP to a sink in this process),
side by side in alternating rounds, driven by wrk (REST) and h2load (gRPC).

    python -m benchmarks.observability_cost --model-dir models --seconds 5 --rounds 3 \
        > benchmarks/results/observability-cost.md

The figure to read is the gateway's CPU per request against the variant with everything off;
single-image requests, where logging and tracing are the largest share of a request's work.
The gateways' logs go to files, as a deployment's go to a collector; the OTLP sink counts the
spans it receives (its CPU is not the gateway's).
"""

from __future__ import annotations

import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from concurrent import futures

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from benchmarks.cload import h2load_grpc, wrk_post
from benchmarks.protocols_benchmark import INFER, _v2_grpc
from benchmarks.support import benchmark_digits, benchmark_parser
from mnist_serving.observability.access_log import (
    AccessLog,
    AccessRecord,
    Style,
    configure_logging,
    utc_now,
)
from mnist_serving.observability.tracing import Tracing
from tests.helpers.processes import cpu_seconds, free_port, start_gateway, stop_gateway

FACES = ("digits REST octet-stream", "V2 gRPC raw")


class Sink(trace_service_pb2_grpc.TraceServiceServicer):
    """An OTLP trace receiver that only counts."""

    def __init__(self) -> None:
        self.spans = 0

    def Export(self, request, context):  # noqa: N802 - the OTLP service's method name
        self.spans += sum(len(s.spans) for r in request.resource_spans for s in r.scope_spans)
        return trace_service_pb2.ExportTraceServiceResponse()


def variants(sink_port: int) -> dict[str, tuple[list[str], dict[str, str]]]:
    """name → (flags, environment) of each gateway."""
    otlp = {
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_INSECURE": "true",
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink_port}",
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
    }
    quiet = ["--access-log", "off"]
    return {
        "all off": (quiet, {}),
        "access log text": (["--access-log", "text"], {}),
        "access log json": (["--access-log", "json"], {}),
        "tracing 100%": (quiet, {**otlp, "OTEL_TRACES_SAMPLER_ARG": "1.0"}),
        "tracing 1%": (quiet, {**otlp, "OTEL_TRACES_SAMPLER_ARG": "0.01"}),
    }


def per_line_us(style: Style, lines: int = 20_000) -> float:
    """One access line's cost in this process, µs: the record, its formatting and the write to
    a file, through the same logging set-up the gateway uses."""
    saved = sys.stderr
    with tempfile.TemporaryFile("w") as sink:
        sys.stderr = sink
        try:
            configure_logging("info", style)
            log = AccessLog(style)
            started = time.perf_counter()
            for _ in range(lines):
                log.write(
                    AccessRecord(
                        utc_now(),
                        "0123456789abcdef",
                        "rest",
                        "classify",
                        1,
                        "OK",
                        200,
                        1,
                        1.25,
                        0.11,
                        0.05,
                        "127.0.0.1:50000",
                        None,
                    )
                )
            return (time.perf_counter() - started) * 1e6 / lines
        finally:
            sys.stderr = saved
            logging.getLogger().handlers.clear()


def tracing_off_us(calls: int = 200_000) -> float:
    """What tracing costs a request when it is off, µs: the server-span context it enters."""
    off = Tracing()
    started = time.perf_counter()
    for _ in range(calls):
        with off.server_span("rest", "classify", "id", None):
            pass
    return (time.perf_counter() - started) * 1e6 / calls


def main() -> None:
    parser = benchmark_parser(__doc__, seconds=5, rounds=3)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    one = benchmark_digits(args.data, 1)
    octet = {"Content-Type": "application/octet-stream"}
    message, _ = _v2_grpc(one)
    sink, sink_port = Sink(), free_port()
    receiver = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(sink, receiver)
    receiver.add_insecure_port(f"127.0.0.1:{sink_port}")
    receiver.start()
    gateways = {
        name: start_gateway(args.model_dir, *flags, "--log-level", "info", env=env)
        for name, (flags, env) in variants(sink_port).items()
    }
    rows = []
    try:
        for round_ in range(args.rounds):
            for face in FACES:
                for name, gateway in gateways.items():
                    cpu = cpu_seconds(gateway.process.pid)
                    if face == FACES[0]:
                        r = wrk_post(
                            gateway.url + "/v1/digits:classify",
                            one.tobytes(),
                            octet,
                            args.connections,
                            args.seconds,
                        )
                    else:
                        r = h2load_grpc(
                            gateway.grpc, INFER, message, args.connections, args.seconds
                        )
                    used = cpu_seconds(gateway.process.pid) - cpu
                    r["cpu_us_per_request"] = used * 1e6 / max(r["requests"], 1)
                    rows.append({"face": face, "variant": name, "round": round_, **r})
    finally:
        for gateway in gateways.values():
            stop_gateway(gateway)
        receiver.stop(1)
    print(
        f"machine: {os.cpu_count()} cores, {platform.machine()}, Python "
        f"{platform.python_version()}; 1 image per request, {args.connections} connections; "
        f"median of {args.rounds} rounds of {args.seconds:g} s; the OTLP sink received "
        f"{sink.spans:,} spans\n"
    )
    lines = {style: per_line_us(style) for style in ("text", "json")}
    print(
        f"In-process, no load: one access line costs text {lines['text']:.1f} µs, json "
        f"{lines['json']:.1f} µs; tracing off costs {tracing_off_us():.2f} µs a request\n"
    )
    print(
        "| request | variant | req/s | p50 ms | p99 ms | gateway CPU µs/request | vs all off | errors |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for face in FACES:
        base = None
        for name in gateways:
            points = [r for r in rows if r["face"] == face and r["variant"] == name]
            med = {
                k: statistics.median(r[k] for r in points)
                for k in ("rps", "p50_ms", "p99_ms", "cpu_us_per_request")
            }
            base = med["cpu_us_per_request"] if base is None else base
            extra = med["cpu_us_per_request"] - base
            print(
                f"| {face} | {name} | {med['rps']:,.0f} | {med['p50_ms']:.2f} | "
                f"{med['p99_ms']:.2f} | {med['cpu_us_per_request']:,.0f} | "
                f"{'' if name == 'all off' else f'{extra:+,.0f} µs'} | "
                f"{sum(r['errors'] for r in points)} |"
            )
    print("\n```json\n" + json.dumps(rows, indent=1) + "\n```")


if __name__ == "__main__":
    main()
