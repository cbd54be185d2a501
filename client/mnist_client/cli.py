"""``mnist-predict``: classify image files from the command line.

    mnist-predict digit.png more/*.png --url http://127.0.0.1:8080
    mnist-predict scans/*.jpg --transport grpc --url 127.0.0.1:8081 --top-k 3 --json
    cat digit.png | mnist-predict -

Exit status: 0 when every file was classified, 1 when any failed (each with its reason),
2 for a usage error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from typing import Any, TextIO

from mnist_client._client import MnistClient
from mnist_client._codec import Item, Prediction, to_items
from mnist_client._errors import InvalidInput, MnistError
from mnist_contract.model import top_k_problem


@dataclass
class Row:
    name: str
    item: Item | None = None
    prediction: Prediction | None = None
    error: str | None = None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mnist-predict",
        description="Classify handwritten-digit images (PNG, JPEG, WebP, GIF, BMP or TIFF).",
    )
    parser.add_argument("files", nargs="+", help="image files; '-' reads one image from stdin")
    parser.add_argument(
        "--url",
        default=os.environ.get("MNIST_URL", "http://127.0.0.1:8080"),
        help="server URL: http(s)://host:port (REST) or grpc(s)://host:port (default: %(default)s)",
    )
    parser.add_argument("--transport", choices=("rest", "grpc"), default=None)
    parser.add_argument(
        "--api",
        choices=("digits", "tfserving", "v2"),
        default="digits",
        help="the protocol: 'digits' (the gateway's digits API), 'tfserving' (TF Serving's "
        "API), 'v2' (the Open Inference Protocol: the gateway, Triton, KServe, MLServer)",
    )
    parser.add_argument("--top-k", type=int, default=0, help="also list the K likeliest digits")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("--chunk-size", type=int, default=64, help="images per request")
    parser.add_argument("--api-key", default=os.environ.get("MNIST_API_KEY"))
    parser.add_argument(
        "--ca-file",
        default=os.environ.get("MNIST_CA_FILE"),
        help="PEM certificate(s) to trust for https:// or grpcs:// (e.g. a self-signed gateway)",
    )
    parser.add_argument(
        "--cert-file",
        default=os.environ.get("MNIST_CERT_FILE"),
        help="PEM client certificate, for a gateway that asks for one (mutual TLS)",
    )
    parser.add_argument(
        "--key-file", default=os.environ.get("MNIST_KEY_FILE"), help="the client certificate's key"
    )
    return parser


def _read(name: str, stdin: Any) -> Row:
    shown = "<stdin>" if name == "-" else name
    try:
        (item,) = to_items(stdin.read() if name == "-" else name)
    except InvalidInput as exc:
        return Row(shown, error=exc.message.removeprefix(f"{name}: "))
    return Row(shown, item)


def _classify(client: MnistClient, rows: list[Row], top_k: int, progress: _Progress) -> None:
    """Send in chunks; when a chunk is refused, send its files one by one to name the culprit."""
    pending = [r for r in rows if r.item is not None]
    size = client.config.chunk_size
    for start in range(0, len(pending), size):
        chunk = pending[start : start + size]
        try:
            answers = client.classify([r.item.encoded for r in chunk], top_k=top_k)  # type: ignore[union-attr, misc]
            for row, answer in zip(chunk, answers, strict=True):
                row.prediction = answer
        except InvalidInput:
            for row in chunk:
                try:
                    (row.prediction,) = client.classify(row.item.encoded, top_k=top_k)  # type: ignore[union-attr, arg-type]
                except MnistError as exc:
                    row.error = exc.message
        except MnistError as exc:
            for row in chunk:
                row.error = exc.message
        progress.advance(len(chunk))


class _Progress:
    """A one-line bar on stderr, only for a terminal and only when there is much to do."""

    def __init__(self, total: int, stream: TextIO) -> None:
        self.total, self.done, self.stream = total, 0, stream
        self.enabled = total > 20 and stream.isatty()

    def advance(self, n: int) -> None:
        self.done += n
        if self.enabled:
            filled = int(30 * self.done / self.total)
            self.stream.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {self.done}/{self.total}")
            if self.done >= self.total:
                self.stream.write("\n")
            self.stream.flush()


def _print_table(rows: list[Row], top_k: int, out: TextIO) -> None:
    width = max(len("file"), *(len(r.name) for r in rows))
    header = f"{'file':<{width}}  digit  confidence"
    if top_k:
        header += "  top-k"
    print(header, file=out)
    for r in rows:
        if r.prediction is None:
            print(f"{r.name:<{width}}  error: {r.error}", file=out)
            continue
        p = r.prediction
        line = f"{r.name:<{width}}  {p.digit:>5}  {p.confidence:>10.4f}"
        if top_k:
            line += "  " + " ".join(f"{c.digit}:{c.probability:.3f}" for c in p.top_k)
        print(line, file=out)


def _as_json(rows: list[Row]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for r in rows:
        if r.prediction is None:
            out.append({"file": r.name, "error": r.error})
            continue
        p = r.prediction
        out.append(
            {
                "file": r.name,
                "digit": p.digit,
                "confidence": p.confidence,
                "probabilities": list(p.probabilities),
                "top_k": [{"digit": c.digit, "probability": c.probability} for c in p.top_k],
                "model_version": p.model_version,
            }
        )
    return out


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    problem = top_k_problem(args.top_k)
    if problem:
        print(f"mnist-predict: --{problem.replace('_', '-')}", file=sys.stderr)
        return 2
    if args.files.count("-") > 1:
        print("mnist-predict: '-' (stdin) can be given once", file=sys.stderr)
        return 2
    rows = [_read(name, sys.stdin.buffer) for name in args.files]
    try:
        client = MnistClient(
            args.url,
            transport=args.transport,
            api=args.api,
            timeout=args.timeout,
            chunk_size=args.chunk_size,
            api_key=args.api_key,
            ca_file=args.ca_file,
            cert_file=args.cert_file,
            key_file=args.key_file,
        )
    except MnistError as exc:
        print(f"mnist-predict: {exc.message}", file=sys.stderr)
        return 2
    with client:
        _classify(client, rows, args.top_k, _Progress(len(rows), sys.stderr))
    if args.json:
        print(json.dumps(_as_json(rows), indent=2))
    else:
        _print_table(rows, args.top_k, sys.stdout)
    failed = [r for r in rows if r.prediction is None]
    if failed:
        print(f"mnist-predict: {len(failed)} of {len(rows)} file(s) failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
