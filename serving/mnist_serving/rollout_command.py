"""``mnist-serve rollout``: an operator's view of the automatic rollout, and the commands.

    mnist-serve rollout status                     # GET /v1/models/mnist/rollout
    mnist-serve rollout pause --api-key $OPS_KEY   # or resume, promote, abort (admin scope)
    mnist-serve rollout abort --url https://gw:8080 --ca-file ca.pem

Standard library only: it talks to a running gateway over its REST port.
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import sys
import urllib.error
import urllib.request

from mnist_contract.model import MODEL_NAME

ACTIONS = ("status", "pause", "resume", "promote", "abort")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mnist-serve rollout",
        description="Show or steer the automatic rollout of a running gateway (--rollout auto).",
    )
    parser.add_argument("action", choices=ACTIONS)
    parser.add_argument(
        "--url", default=os.environ.get("MNIST_URL", "http://127.0.0.1:8080"), help="the gateway"
    )
    parser.add_argument(
        "--api-key",
        default=os.environ.get("MNIST_API_KEY"),
        help="a key with the admin scope (commands), or any key (status, when keys are on)",
    )
    parser.add_argument("--ca-file", default=os.environ.get("MNIST_CA_FILE"))
    parser.add_argument("--timeout", type=float, default=10.0)
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if not args.url.startswith(("http://", "https://")):
        print(
            f"mnist-serve rollout: --url must be http:// or https://, got {args.url!r}",
            file=sys.stderr,
        )
        return 2
    path = f"/v1/models/{MODEL_NAME}/rollout"
    if args.action != "status":
        path += f":{args.action}"
    method = "GET" if args.action == "status" else "POST"
    request = urllib.request.Request(args.url.rstrip("/") + path, method=method)  # noqa: S310 - http(s) checked
    if args.api_key:
        request.add_header("Authorization", f"Bearer {args.api_key}")
    context = ssl.create_default_context(cafile=args.ca_file) if args.ca_file else None
    try:
        with urllib.request.urlopen(request, timeout=args.timeout, context=context) as answer:  # noqa: S310
            print(json.dumps(json.loads(answer.read()), indent=2))
            return 0
    except urllib.error.HTTPError as exc:
        print(f"mnist-serve rollout: {exc.code}: {_message(exc.read())}", file=sys.stderr)
        return 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"mnist-serve rollout: cannot reach {args.url}: {exc}", file=sys.stderr)
        return 1


def _message(body: bytes) -> str:
    try:
        return str(json.loads(body)["error"])
    except (ValueError, KeyError, TypeError):
        return body.decode("utf-8", "replace")[:200]
