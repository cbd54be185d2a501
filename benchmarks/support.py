"""What the benchmarks share: their options and digits, helper servers of this package, and
a gateway's own time spans. Gateways on free ports and process readings come from
:mod:`tests.helpers.processes`, which the tests use too."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.request import urlopen

from prometheus_client.parser import text_string_to_metric_families

if TYPE_CHECKING:
    import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SOURCE_FOLDERS = ("contract", "serving", "client", "training")


def benchmark_parser(doc: str, seconds: float, rounds: int) -> argparse.ArgumentParser:
    """The options every side-by-side benchmark takes: model, digits, seconds and rounds."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=ROOT / "models")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "mnist.npz")
    parser.add_argument("--seconds", type=float, default=seconds)
    parser.add_argument("--rounds", type=int, default=rounds)
    return parser


def benchmark_digits(data: Path, count: int = 256) -> np.ndarray:
    """``count`` test digits from ``data`` (an mnist.npz), or from the committed fixture when
    ``data`` is not there."""
    import numpy as np

    source = data if data.exists() else ROOT / "tests" / "fixtures" / "mnist-small.npz"
    with np.load(source) as d:
        return np.asarray(d["x_test"][:count])


def source_path(code: Path) -> dict[str, str]:
    """An environment whose ``PYTHONPATH`` runs the packages of source tree ``code`` (another
    revision, for a side-by-side comparison) instead of the installed ones."""
    folders = os.pathsep.join(str(code / name) for name in SOURCE_FOLDERS)
    return {"PYTHONPATH": folders}


def start_helper(script: str, *args: str) -> tuple[subprocess.Popen[bytes], str]:
    """Start a helper module of this package (``hop_floor``, ``bare_grpc_proxy``) that prints
    "ready on gRPC HOST:PORT": (process, target)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", f"benchmarks.{script}", *args], stdout=subprocess.PIPE, cwd=ROOT
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()
    match = re.search(r"ready on gRPC (\S+)", line)
    if match is None:
        proc.kill()
        raise SystemExit(f"{script} {' '.join(args)} did not start: {line!r}")
    return proc, match.group(1)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


def gateway_spans(url: str) -> tuple[float, float, float, float]:
    """From a gateway's /metrics: (seconds, count) of its inference requests as the core
    timed them, and (seconds, count) of its model or backend calls."""
    families = {"mnist_request_duration_seconds": 0, "mnist_inference_duration_seconds": 2}
    totals = [0.0, 0.0, 0.0, 0.0]
    for family in text_string_to_metric_families(urlopen(url + "/metrics").read().decode()):
        at = families.get(family.name)
        if at is None:
            continue
        for sample in family.samples:
            if at == 0 and sample.labels.get("route") not in ("predict", "classify"):
                continue
            if sample.name.endswith("_sum"):
                totals[at] += sample.value
            elif sample.name.endswith("_count"):
                totals[at + 1] += sample.value
    return totals[0], totals[1], totals[2], totals[3]
