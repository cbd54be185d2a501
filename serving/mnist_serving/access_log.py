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

import logging
import os
import re
import sys
import time
from dataclasses import dataclass
from typing import Any, Literal

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
    return os.urandom(16).hex()  # a uuid4's randomness, at a fifth of uuid.uuid4()'s cost


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


def utc_now() -> str:
    """ISO 8601, UTC, milliseconds: ``2026-12-02T02:20:00.123Z``."""
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}ms"


class AccessLog:
    """Writes :class:`AccessRecord` s in the chosen style (nothing at all for ``off``)."""

    def __init__(self, style: Style, logger: logging.Logger | None = None) -> None:
        self.style = style
        self.enabled = style != "off"
        self._logger = logger or logging.getLogger(ACCESS_LOGGER)

    def write(self, record: AccessRecord) -> None:
        if not self.enabled or not self._logger.isEnabledFor(logging.INFO):
            return
        if self.style == "json":
            # Its fields are plain values: a shallow copy, not asdict's deep one.
            self._logger.info("request", extra={"fields": dict(vars(record))})
            return
        r = record
        version = "-" if r.model_version is None else f"v{r.model_version}"
        status = "-" if r.http_status is None else str(r.http_status)
        self._logger.info(
            f"{r.protocol} {r.route} {version} {r.code} {status} images={r.images} "
            f"{_ms(r.latency_ms)} queue={_ms(r.queue_ms)} model={_ms(r.model_ms)} "
            f"peer={r.peer or '-'} key={r.key or '-'} id={r.request_id}"
        )


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


def configure_logging(level: str, style: Style) -> None:
    """The root handler on stderr in ``style`` (text for ``off``, which only stops the access
    lines), with uvicorn's loggers passing through it instead of their own handlers."""
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
