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
from typing import Any

from mnist_client import _grpc, _rest
from mnist_client._codec import ImageInput, Item, Prediction, to_items
from mnist_client._config import Api, ClientConfig, Transport
from mnist_client._errors import ConnectionFailed, InvalidInput, MnistError, Overloaded


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
        model: str = "mnist",
        rng: random.Random | None = None,
    ) -> None:
        """
        Args:
            url: ``http://host:port`` for REST, ``grpc://host:port`` (or ``transport="grpc"``).
            api: ``"digits"`` for the gateway, ``"tfserving"`` for plain TF Serving.
            timeout: seconds per request.
            retries: extra attempts on overload, unavailability and connection errors.
            backoff: first retry delay in seconds; doubles each time, with jitter, up to
                ``max_backoff``; a server's ``Retry-After`` is honoured when longer.
            chunk_size: most images per request; larger inputs are split and joined back.
            api_key: sent as ``Authorization: Bearer`` (REST) or gRPC metadata.
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
        )
        self._protocol: Any = _grpc if self.config.transport == "grpc" else _rest
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not security

    def _chunks(self, inputs: ImageInput | Sequence[ImageInput]) -> list[list[Item]]:
        items = to_items(inputs)
        size = self.config.chunk_size
        return [items[i : i + size] for i in range(0, len(items), size)]

    def _check_top_k(self, top_k: int) -> None:
        if not 0 <= top_k <= 10:
            raise InvalidInput(f"top_k must be 0-10, got {top_k}")

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

    def __init__(
        self,
        url: str = "http://127.0.0.1:8080",
        *,
        http_transport: Any = None,
        grpc_channel: Any = None,
        **options: Any,
    ) -> None:
        """Options as :class:`BaseClient`; ``http_transport`` (an httpx transport) or
        ``grpc_channel`` replace the network layer (tests, proxies, TLS channels)."""
        super().__init__(url, **options)
        self._transport: Any = (
            _grpc.GrpcTransport(self.config, grpc_channel)
            if self.config.transport == "grpc"
            else _rest.RestTransport(self.config, http_transport)
        )

    def classify(
        self, inputs: ImageInput | Sequence[ImageInput], *, top_k: int = 0
    ) -> list[Prediction]:
        """One :class:`Prediction` per image, in order.

        ``inputs``: a numpy array (28×28, N×28×28, N×784, N×28×28×1; uint8 0-255 or float
        0-1), a PIL image, PNG/JPEG bytes, a file path, or a list of any of these.
        """
        self._check_top_k(top_k)
        results: list[Prediction] = []
        for chunk in self._chunks(inputs):
            call = self._protocol.build(chunk, top_k, self.config)
            results.extend(self._with_retries(call, top_k))
        return results

    def _with_retries(self, call: Any, top_k: int) -> list[Prediction]:
        attempt = 0
        while True:
            try:
                answer = self._transport.send(call)
                predictions: list[Prediction] = self._protocol.parse(answer, top_k, self.config)
                return predictions
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

    def __init__(
        self,
        url: str = "http://127.0.0.1:8080",
        *,
        http_transport: Any = None,
        grpc_channel: Any = None,
        **options: Any,
    ) -> None:
        """Options as :class:`BaseClient`; ``http_transport`` (an httpx transport) or
        ``grpc_channel`` replace the network layer (tests, proxies, TLS channels)."""
        super().__init__(url, **options)
        self._transport: Any = (
            _grpc.AsyncGrpcTransport(self.config, grpc_channel)
            if self.config.transport == "grpc"
            else _rest.AsyncRestTransport(self.config, http_transport)
        )

    async def classify(
        self, inputs: ImageInput | Sequence[ImageInput], *, top_k: int = 0
    ) -> list[Prediction]:
        """One :class:`Prediction` per image, in order (see :meth:`MnistClient.classify`)."""
        self._check_top_k(top_k)
        results: list[Prediction] = []
        for chunk in self._chunks(inputs):
            call = self._protocol.build(chunk, top_k, self.config)
            results.extend(await self._with_retries(call, top_k))
        return results

    async def _with_retries(self, call: Any, top_k: int) -> list[Prediction]:
        attempt = 0
        while True:
            try:
                answer = await self._transport.send(call)
                predictions: list[Prediction] = self._protocol.parse(answer, top_k, self.config)
                return predictions
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
