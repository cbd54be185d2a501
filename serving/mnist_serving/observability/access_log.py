"""Request ids, one access-log line per request, and the gateway's log format.

Every request has an id: a sane ``X-Request-ID`` (REST header, gRPC metadata ``x-request-id``)
is kept, anything else replaced by a fresh one; it goes back in the answer and into the
request's log line. The access log (``--access-log text|json|off``) writes that line on the
``mnist_serving.access`` logger when the core has counted the request; ``json`` is one JSON
object per line. It names the API key by its *name*, never the key, and holds no pixel data.
:func:`configure_logging` gives every other log line of the gateway (uvicorn's included) the
same format.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import sys
import time
from dataclasses import dataclass
from typing import Any, Literal, TextIO

import orjson

Style = Literal["text", "json", "off"]
REQUEST_ID_HEADER = "x-request-id"
# What an incoming id may be to be kept: short, printable, no spaces or quotes (it is echoed in
# a header and written in logs).
_SANE_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")
ACCESS_LOGGER = "mnist_serving.access"


def request_id(incoming: str | None) -> str:
    """The caller's id when it is sane, else a new one (32 hex digits)."""
    if incoming and _SANE_ID.fullmatch(incoming):
        return incoming
    # 128 random bits like a uuid4, from the process's own generator (seeded from the OS at
    # start): an id correlates lines, it guards nothing, and a getrandom() system call per
    # request measured 10+ µs under load here.
    return f"{random.getrandbits(128):032x}"


@dataclass
class AccessRecord:
    """One request as the access log tells it. Times in milliseconds."""

    time: str
    request_id: str
    protocol: str
    route: str
    model_version: int | None
    code: str
    http_status: int | None  # None for gRPC (the code is its status)
    images: int
    latency_ms: float
    queue_ms: float | None
    model_ms: float | None
    peer: str | None
    key: str | None  # the API key's name
    client_cert: str | None = None  # a verified client certificate's name (mutual TLS)
    # The request's server span, as OpenTelemetry's log data model names them (tracing on).
    trace_id: str | None = None
    span_id: str | None = None


_second: tuple[int, str] = (-1, "")  # the last whole second formatted, and its text


def utc_now() -> str:
    """ISO 8601, UTC, milliseconds: ``2026-12-02T02:20:00.123Z`` (the date and time of day
    formatted once per second: strftime is most of the cost)."""
    global _second
    now = time.time()
    whole = int(now)
    if whole != _second[0]:
        _second = (whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)))
    return f"{_second[1]}.{int(now % 1 * 1000):03d}Z"


class LineSink:
    """Access-log lines written straight to a stream, every line of one event-loop turn in one
    write: ``logging``'s record, handler lock and a write per line cost more than the rest of
    a line together. Lines written outside an event loop are written at once; :meth:`flush`
    writes what is pending (the gateway calls it when it stops)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._pending: list[str] = []

    def __call__(self, line: str) -> None:
        self._pending.append(line)
        if len(self._pending) > 1:
            return  # a flush is already due this turn
        try:
            asyncio.get_running_loop().call_soon(self.flush)
        except RuntimeError:  # no loop here: now
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        text = "".join(self._pending)
        self._pending.clear()
        self._stream.write(text)
        self._stream.flush()


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}ms"


class AccessLog:
    """Writes :class:`AccessRecord` s in the chosen style (nothing at all for ``off``): to a
    :class:`LineSink` when the gateway owns the process's logging (the lines look exactly as
    :func:`configure_logging`'s format would write them), else on the ``mnist_serving.access``
    logger, for an application that embeds the gateway and routes its own logs."""

    def __init__(
        self, style: Style, logger: logging.Logger | None = None, sink: LineSink | None = None
    ) -> None:
        self.style = style
        self.enabled = style != "off"
        self._logger = logger or logging.getLogger(ACCESS_LOGGER)
        self._sink = sink

    def write(self, record: AccessRecord) -> None:
        if not self.enabled:
            return
        if self._sink is not None:
            self._sink(self._line(record))
            return
        if not self._logger.isEnabledFor(logging.INFO):
            return
        if self.style == "json":
            self._logger.info("request", extra={"fields": _fields(record)})
            return
        self._logger.info(_message(record))

    def flush(self) -> None:
        if self._sink is not None:
            self._sink.flush()

    def _line(self, record: AccessRecord) -> str:
        if self.style == "json":
            doc = {"time": record.time, "level": "info", "logger": ACCESS_LOGGER, **_fields(record)}
            return orjson.dumps(doc).decode() + "\n"
        return f"{record.time} INFO {ACCESS_LOGGER}: {_message(record)}\n"


def _fields(record: AccessRecord) -> dict[str, Any]:
    """The record's fields (a shallow copy: they are plain values), the trace's only when the
    request had a span: with tracing off the line is what it always was."""
    fields = dict(vars(record))
    if record.trace_id is None:
        del fields["trace_id"], fields["span_id"]
    if record.client_cert is None:
        del fields["client_cert"]
    return fields


def _message(r: AccessRecord) -> str:
    version = "-" if r.model_version is None else f"v{r.model_version}"
    status = "-" if r.http_status is None else str(r.http_status)
    line = (
        f"{r.protocol} {r.route} {version} {r.code} {status} images={r.images} "
        f"{_ms(r.latency_ms)} queue={_ms(r.queue_ms)} model={_ms(r.model_ms)} "
        f"peer={r.peer or '-'} key={r.key or '-'} id={r.request_id}"
    )
    if r.client_cert is not None:
        line += f" client_cert={r.client_cert}"
    if r.trace_id is not None:
        line += f" trace_id={r.trace_id} span_id={r.span_id}"
    return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and a record's ``fields``."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": _record_time(record),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            doc.update(fields)
        else:
            doc["message"] = record.getMessage()
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(doc).decode()


def _record_time(record: logging.LogRecord) -> str:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    return f"{stamp}.{int(record.msecs):03d}Z"


class _TextFormatter(logging.Formatter):
    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 - logging's name
        return _record_time(record)


def configure_logging(level: str, style: Style) -> LineSink:
    """The root handler on stderr in ``style`` (text for ``off``, which only stops the access
    lines), with uvicorn's loggers passing through it instead of their own handlers; the sink
    the access log should write to, the same stderr."""
    # No line format here names the thread, process or source line, so logging need not look
    # them up for every record (the stack walk for the caller is the dearest part of a line).
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    logging._srcfile = None
    handler = logging.StreamHandler(sys.stderr)
    if style == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(_TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # The access log is its own switch (--access-log), not silenced by --log-level warning.
    logging.getLogger(ACCESS_LOGGER).setLevel(logging.INFO)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    return LineSink(sys.stderr)
