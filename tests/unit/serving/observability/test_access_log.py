"""The access log's direct sink writes exactly what the logging path writes, a turn at a time."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sys

import pytest

from mnist_serving.observability.access_log import (
    ACCESS_LOGGER,
    AccessLog,
    AccessRecord,
    LineSink,
    configure_logging,
    request_id,
    utc_now,
)
from mnist_serving.settings import Settings
from tests.helpers.fakes import digit_image, loader, version_folders
from tests.helpers.gateways import in_process

RECORD = AccessRecord(
    time=utc_now(),
    request_id="r-1",
    protocol="rest",
    route="classify",
    model_version=3,
    code="OK",
    http_status=200,
    images=2,
    latency_ms=1.25,
    queue_ms=0.1,
    model_ms=None,
    peer="127.0.0.1:5000",
    key="ci",
)


class CountingStream(io.StringIO):
    writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


@pytest.mark.parametrize("style", ["text", "json"])
def test_the_sink_writes_the_line_the_logging_path_writes(style, monkeypatch) -> None:
    logged = io.StringIO()
    monkeypatch.setattr(sys, "stderr", logged)
    root = logging.getLogger()
    kept = root.handlers[:], root.level
    try:
        configure_logging("info", style)
        AccessLog(style).write(RECORD)  # through logging, as an embedding application gets it
    finally:
        root.handlers[:], root.level = kept
    direct = io.StringIO()
    sink = LineSink(direct)
    AccessLog(style, sink=sink).write(RECORD)  # no loop running: written at once
    via_logging, via_sink = logged.getvalue(), direct.getvalue()
    assert via_sink.endswith("\n") and via_sink.count("\n") == 1
    if style == "json":
        a, b = json.loads(via_logging), json.loads(via_sink)
        assert list(a) == list(b) and a == b  # the record's own time in both
        assert b["logger"] == ACCESS_LOGGER and b["key"] == "ci"
    else:
        # The logging path stamps the line when it is logged; the sink with the record's time.
        assert via_logging.split(" ", 1)[1] == via_sink.split(" ", 1)[1]
        assert via_sink.startswith(RECORD.time + " INFO mnist_serving.access: rest classify v3")


async def test_lines_of_one_loop_turn_go_out_in_one_write() -> None:
    stream = CountingStream()
    log = AccessLog("text", sink=LineSink(stream))
    for _ in range(3):
        log.write(RECORD)
    assert stream.getvalue() == ""  # not yet: at the end of this turn
    await asyncio.sleep(0)
    assert stream.writes == 1 and stream.getvalue().count("\n") == 3
    log.write(RECORD)
    log.flush()  # as the gateway does when it stops
    assert stream.getvalue().count("\n") == 4


def test_the_time_is_iso_utc_with_milliseconds_and_current() -> None:
    import datetime
    import re
    import time

    for _ in range(3):  # the second's text is cached: it must move with the clock
        before = time.time()
        stamp = utc_now()
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", stamp)
        parsed = datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ")
        seconds = parsed.replace(tzinfo=datetime.UTC).timestamp()
        assert before - 0.002 <= seconds <= time.time() + 0.002
        time.sleep(0.6)


def test_a_sane_incoming_id_is_kept_and_anything_else_replaced() -> None:
    assert request_id("abc-123_x.y:z") == "abc-123_x.y:z"
    for bad in (None, "", "has space", 'quote"', "x" * 129, "naïve", "a\nb"):
        made = request_id(bad)
        assert made != bad and len(made) == 32 and int(made, 16) >= 0


async def test_the_text_log_and_probes_when_asked(tmp_path, caplog) -> None:
    settings = Settings(model_dir=version_folders(tmp_path, 1), access_log_probes=True)
    caplog.set_level(logging.INFO, logger="mnist_serving.access")
    async with in_process(settings, load=loader()) as api:
        frames = digit_image(3).tobytes()
        octet = {"Content-Type": "application/octet-stream", "X-Request-ID": "t-1"}
        assert (
            await api.post("/v1/digits:classify", content=frames, headers=octet)
        ).status_code == 200
        assert (await api.get("/readyz", headers={"X-Request-ID": "probe-1"})).status_code == 200
    lines = [r.getMessage() for r in caplog.records if r.name == "mnist_serving.access"]
    (classify,) = [line for line in lines if "id=t-1" in line]
    assert classify.startswith("rest classify v1 OK 200 images=1 ") and "model=" in classify
    assert any("readyz" in line and "id=probe-1" in line for line in lines)


async def test_access_log_off_writes_nothing(tmp_path, caplog) -> None:
    settings = Settings(model_dir=version_folders(tmp_path, 1), access_log="off")
    caplog.set_level(logging.INFO, logger="mnist_serving.access")
    async with in_process(settings, load=loader()) as api:
        octet = {"Content-Type": "application/octet-stream"}
        await api.post("/v1/digits:classify", content=digit_image(3).tobytes(), headers=octet)
    assert not [r for r in caplog.records if r.name == "mnist_serving.access"]
