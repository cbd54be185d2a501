"""KServe's own V2 clients (InferenceRESTClient with protocol v2, InferenceGRPCClient)."""

from __future__ import annotations

import asyncio

import grpc
import httpx
import numpy as np
import pytest
from gateway import GRPC, REST
from kserve import InferenceGRPCClient, InferenceRESTClient, InferInput, InferRequest, RESTConfig

BASE = f"http://{REST}"


def _request(images: np.ndarray, binary: bool, request_id: str) -> InferRequest:
    tensor = InferInput("images", list(images.shape), "FP32")
    tensor.set_data_from_numpy(images, binary_data=binary)
    return InferRequest(model_name="mnist", infer_inputs=[tensor], request_id=request_id)


def _floats(digits) -> np.ndarray:
    return (digits[0].astype(np.float32) / 255).reshape(-1, 28, 28, 1)


def test_rest_client_json_and_binary(digits, expected) -> None:
    async def run() -> None:
        client = InferenceRESTClient(RESTConfig(protocol="v2", timeout=30))
        try:
            assert await client.is_server_live(BASE) and await client.is_server_ready(BASE)
            assert await client.is_model_ready(BASE, "mnist")
            for binary in (False, True):
                answer = await client.infer(
                    BASE, _request(_floats(digits), binary, f"k-{binary}"), model_name="mnist"
                )
                assert answer.id == f"k-{binary}"
                np.testing.assert_allclose(answer.outputs[0].as_numpy(), expected, atol=1e-5)
            with pytest.raises(httpx.HTTPStatusError, match="Servable not found"):
                await client.infer(
                    BASE, _request(_floats(digits)[:1], False, "x"), model_name="nope"
                )
        finally:
            await client.close()

    asyncio.run(run())


def test_grpc_client_raw_and_typed(digits, expected) -> None:
    async def run() -> None:
        client = InferenceGRPCClient(GRPC, timeout=30)
        try:
            assert await client.is_server_live() and await client.is_server_ready()
            assert await client.is_model_ready("mnist")
            # kserve sends raw_input_contents for binary_data=True, typed contents otherwise.
            for binary in (True, False):
                answer = await client.infer(_request(_floats(digits), binary, f"g-{binary}"))
                assert answer.id == f"g-{binary}"
                np.testing.assert_allclose(answer.outputs[0].as_numpy(), expected, atol=1e-5)
            bad = InferInput("images", [1, 5], "FP32")
            bad.set_data_from_numpy(np.zeros((1, 5), np.float32))
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await client.infer(InferRequest(model_name="mnist", infer_inputs=[bad]))
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        finally:
            await client.close()

    asyncio.run(run())
