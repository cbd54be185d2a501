"""Client SDK for the MNIST digit service: REST or gRPC, the gateway or plain TF Serving.

No TensorFlow needed. ::

    from mnist_client import MnistClient

    with MnistClient("http://127.0.0.1:8080") as client:
        for p in client.classify(["a.png", "b.png"], top_k=3):
            print(p.digit, f"{p.confidence:.1%}", [c.digit for c in p.top_k])

Errors are :class:`MnistError` subclasses (see ``mnist_client._errors`` for the tree).
"""

from mnist_client._client import AsyncMnistClient, BaseClient, MnistClient
from mnist_client._codec import Candidate, ImageInput, Prediction
from mnist_client._errors import (
    ConnectionFailed,
    InvalidInput,
    MnistError,
    NotFound,
    Overloaded,
    RequestTimeout,
    ServerError,
    Unauthenticated,
)

__all__ = [
    "AsyncMnistClient",
    "BaseClient",
    "Candidate",
    "ConnectionFailed",
    "ImageInput",
    "InvalidInput",
    "MnistClient",
    "MnistError",
    "NotFound",
    "Overloaded",
    "Prediction",
    "RequestTimeout",
    "ServerError",
    "Unauthenticated",
]
