"""``MnistClient`` and ``AsyncMnistClient``: one base class holds all the logic that is not I/O
(configuration, encoding, chunking, decoding, the retry policy); the two subclasses only send.

    with MnistClient("http://127.0.0.1:8080") as client:
        [p] = client.classify("seven.png")
        print(p.digit, p.confidence)

    async with AsyncMnistClient("grpc://127.0.0.1:8081") as client:
        predictions = await client.classify(images_array)   # N×28×28 uint8
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from types import TracebackType
from typing import Any, ClassVar

from mnist_client import _grpc, _rest
from mnist_client._codec import ImageInput, Item, Prediction, to_items
from mnist_client._config import Api, ClientConfig, Transport
from mnist_client._errors import ConnectionFailed, InvalidInput, MnistError, Overloaded
from mnist_contract.model import MODEL_NAME, top_k_problem


class BaseClient:
    """Settings and every step that does not touch the network."""

    def __init__(
        self,
        url: str = "http://127.0.0.1:8080",
        *,
        transport: Transport | None = None,
        api: Api = "digits",
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.1,
        max_backoff: float = 10.0,
        chunk_size: int = 256,
        api_key: str | None = None,
        model: str = MODEL_NAME,
        ca_file: str | None = None,
        cert_file: str | None = None,
        key_file: str | None = None,
        rng: random.Random | None = None,
        http_transport: Any = None,
        grpc_channel: Any = None,
    ) -> None:
        """
        Args:
            url: ``http://host:port`` for REST, ``grpc://host:port`` (or ``transport="grpc"``);
                ``https://`` and ``grpcs://`` use TLS.
            api: the protocol: ``"digits"`` for the gateway's digits API, ``"tfserving"`` for
                TF Serving's API (plain TF Serving, or the gateway), ``"v2"`` for the Open
                Inference Protocol (the gateway, Triton, KServe, MLServer).
            timeout: seconds per request.
            retries: extra attempts on overload, unavailability and connection errors.
            backoff: first retry delay in seconds; doubles each time, with jitter, up to
                ``max_backoff``; a server's ``Retry-After`` is honoured when longer.
            chunk_size: most images per request; larger inputs are split and joined back.
            api_key: sent as ``Authorization: Bearer`` (REST) or gRPC metadata.
            ca_file: PEM certificate(s) to trust for TLS, e.g. a self-signed gateway's.
            cert_file, key_file: a PEM client certificate and its key, for a gateway that
                asks for one (mutual TLS).
            http_transport, grpc_channel: replace the network layer (an httpx transport, a
                gRPC channel): tests, proxies, TLS channels.
        """
        self.config = ClientConfig.create(
            url,
            transport=transport,
            api=api,
            timeout=timeout,
            retries=retries,
            backoff=backoff,
            max_backoff=max_backoff,
            chunk_size=chunk_size,
            api_key=api_key,
            model=model,
            ca_file=ca_file,
            cert_file=cert_file,
            key_file=key_file,
        )
        self._protocol: Any = _grpc if self.config.transport == "grpc" else _rest
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not security
        override = grpc_channel if self.config.transport == "grpc" else http_transport
        self._transport: Any = self._transports[self.config.transport](self.config, override)

    # Transport classes per protocol; the subclasses name their sync or async ones.
    _transports: ClassVar[dict[str, Any]] = {}

    def _calls(self, inputs: ImageInput | Sequence[ImageInput], top_k: int) -> list[Any]:
        """Validated, encoded requests, one per chunk of ``chunk_size`` images."""
        problem = top_k_problem(top_k)
        if problem:
            raise InvalidInput(problem)
        items = to_items(inputs)
        size = self.config.chunk_size
        chunks: list[list[Item]] = [items[i : i + size] for i in range(0, len(items), size)]
        return [self._protocol.build(chunk, top_k, self.config) for chunk in chunks]

    def _parse(self, answer: Any, top_k: int) -> list[Prediction]:
        predictions: list[Prediction] = self._protocol.parse(answer, top_k, self.config)
        return predictions

    def retry_delay(self, attempt: int, error: MnistError) -> float | None:
        """Seconds to wait before retry number ``attempt`` (0-based), or None: give up.

        Only overload, unavailability and connection failures are retried. The delay is
        exponential with jitter (half to full of ``backoff × 2^attempt``, capped), and never
        shorter than the server's ``Retry-After``.
        """
        if attempt >= self.config.retries or not isinstance(error, (Overloaded, ConnectionFailed)):
            return None
        ceiling = min(self.config.max_backoff, self.config.backoff * 2**attempt)
        delay = self._rng.uniform(ceiling / 2, ceiling)
        if error.retry_after is not None:
            delay = max(delay, min(error.retry_after, self.config.max_backoff))
        return delay


class MnistClient(BaseClient):
    """Blocking client. Reuses one connection pool (REST) or channel (gRPC)."""

    _transports: ClassVar[dict[str, Any]] = {
        "rest": _rest.RestTransport,
        "grpc": _grpc.GrpcTransport,
    }

    def classify(
        self, inputs: ImageInput | Sequence[ImageInput], *, top_k: int = 0
    ) -> list[Prediction]:
        """One :class:`Prediction` per image, in order.

        ``inputs``: a numpy array (28×28, N×28×28, N×784, N×28×28×1; uint8 0-255 or float
        0-1), a PIL image, image file bytes (PNG, JPEG, WebP, GIF, BMP, TIFF), a file path, or a list of any of these.
        """
        return [p for call in self._calls(inputs, top_k) for p in self._with_retries(call, top_k)]

    def _with_retries(self, call: Any, top_k: int) -> list[Prediction]:
        attempt = 0
        while True:
            try:
                return self._parse(self._transport.send(call), top_k)
            except MnistError as error:
                delay = self.retry_delay(attempt, error)
                if delay is None:
                    raise
                time.sleep(delay)
                attempt += 1

    def ready(self) -> bool:
        """True when the server says it is ready to classify."""
        return bool(self._transport.ready())

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> MnistClient:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class AsyncMnistClient(BaseClient):
    """asyncio client with the same methods as :class:`MnistClient`, awaited."""

    _transports: ClassVar[dict[str, Any]] = {
        "rest": _rest.AsyncRestTransport,
        "grpc": _grpc.AsyncGrpcTransport,
    }

    async def classify(
        self, inputs: ImageInput | Sequence[ImageInput], *, top_k: int = 0
    ) -> list[Prediction]:
        """One :class:`Prediction` per image, in order (see :meth:`MnistClient.classify`)."""
        results: list[Prediction] = []
        for call in self._calls(inputs, top_k):
            results.extend(await self._with_retries(call, top_k))
        return results

    async def _with_retries(self, call: Any, top_k: int) -> list[Prediction]:
        attempt = 0
        while True:
            try:
                return self._parse(await self._transport.send(call), top_k)
            except MnistError as error:
                delay = self.retry_delay(attempt, error)
                if delay is None:
                    raise
                await asyncio.sleep(delay)
                attempt += 1

    async def ready(self) -> bool:
        return bool(await self._transport.ready())

    async def close(self) -> None:
        await self._transport.close()

    async def __aenter__(self) -> AsyncMnistClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
