"""Classify a batch of 28×28 frames over gRPC with the asyncio client.

python client/examples/classify_grpc.py --url grpc://127.0.0.1:8081
"""

import argparse
import asyncio

import numpy as np

from mnist_client import AsyncMnistClient


def a_seven() -> np.ndarray:
    """A crude 7 drawn into a 28×28 light-on-dark frame, as MNIST stores digits."""
    frame = np.zeros((28, 28), np.uint8)
    frame[6:9, 6:22] = 255
    for row in range(9, 23):
        col = 21 - (row - 9) // 2
        frame[row, col - 1 : col + 2] = 255
    return frame


async def main(url: str) -> None:
    async with AsyncMnistClient(url) as client:
        if not await client.ready():
            raise SystemExit(f"{url} is not ready")
        frames = np.stack([a_seven(), np.fliplr(a_seven())])
        for p in await client.classify(frames):
            print(
                f"digit {p.digit} with confidence {p.confidence:.3f} (model version {p.model_version})"
            )


parser = argparse.ArgumentParser()
parser.add_argument("--url", default="grpc://127.0.0.1:8081")
asyncio.run(main(parser.parse_args().url))
