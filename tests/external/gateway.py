"""Where the gateway under test listens, as the outer test passes it (host:port each)."""

import os

REST = os.environ["MNIST_V2_REST"]
GRPC = os.environ["MNIST_V2_GRPC"]
