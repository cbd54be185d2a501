"""Classify images over REST with the SDK.

python client/examples/classify_rest.py digit.png other.png --url http://127.0.0.1:8080
"""

import argparse

from mnist_client import MnistClient, MnistError

parser = argparse.ArgumentParser()
parser.add_argument("images", nargs="+")
parser.add_argument("--url", default="http://127.0.0.1:8080")
args = parser.parse_args()

try:
    with MnistClient(args.url, timeout=5, retries=3) as client:
        for path, p in zip(args.images, client.classify(args.images, top_k=3), strict=True):
            runners_up = ", ".join(f"{c.digit} ({c.probability:.1%})" for c in p.top_k[1:])
            print(f"{path}: {p.digit} ({p.confidence:.1%}); then {runners_up}")
except MnistError as exc:
    raise SystemExit(f"failed: {exc}") from None
