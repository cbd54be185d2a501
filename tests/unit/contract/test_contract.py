"""The contract package's rules, each written once."""

from __future__ import annotations

import numpy as np
import pytest

from mnist_contract.layout import is_version_name, model_base, version_dirs
from mnist_contract.model import top_k, top_k_problem
from mnist_contract.open_inference import (
    FramingError,
    bytes_elements,
    classification_strings,
    frame,
    model_tensors,
    split,
)
from mnist_contract.pixels import PixelError, model_input, to_uint8


def test_the_pixel_rule() -> None:
    assert to_uint8(np.array([[0.0, 1.0]])).tolist() == [[0, 255]]
    assert to_uint8(np.array([[0, 255]], np.int64)).dtype == np.uint8
    with pytest.raises(
        PixelError, match="integer pixels must be 0-255, found values from 0 to 300"
    ):
        to_uint8(np.array([[0, 300]]))
    with pytest.raises(PixelError, match=r"float pixels must be 0\.0-1\.0"):
        to_uint8(np.array([[0.5, 2.0]]))
    with pytest.raises(PixelError, match="NaN"):
        to_uint8(np.array([[np.nan]]))
    with pytest.raises(PixelError, match="must be numbers"):
        to_uint8(np.array([["a"]]))
    scaled = model_input(np.full((2, 28, 28), 255, np.uint8))
    assert scaled.shape == (2, 28, 28, 1) and scaled.dtype == np.float32 and scaled.max() == 1.0


def test_the_top_k_rule() -> None:
    assert top_k([0.1, 0.5, 0.5, 0.2], 3) == [(1, 0.5), (2, 0.5), (3, 0.2)]
    assert top_k_problem(10) is None and top_k_problem(0) is None
    for bad in (11, -1, True, "3", 2.0):
        assert top_k_problem(bad) is not None


def test_the_version_folder_rule(tmp_path) -> None:
    base = model_base(tmp_path)
    for name in ("1", "12", "0", "-3", "²", ".staging-4", "007x"):
        (base / name).mkdir(parents=True)
    (base / "5").write_text("a file, not a folder")
    assert sorted(version_dirs(base)) == [1, 12]
    assert is_version_name(str(2**63 - 1)) and not is_version_name(str(2**63))
    assert version_dirs(tmp_path / "missing") == {}


def test_the_open_inference_protocols_binary_framing() -> None:
    body = frame(b'{"inputs": []}', [b"\x01\x02", b"\x03"])
    assert split(body, "14") == (b'{"inputs": []}', b"\x01\x02\x03")
    assert split(body, None) == (body, b"")
    for bad, words in (("15x", "whole number"), ("-1", "whole number"), ("99", "only 17 bytes")):
        with pytest.raises(FramingError, match=words):
            split(body, bad)
    # BYTES elements: each a 4-byte little-endian length, then the bytes.
    assert bytes_elements([b"", b"0.5:3"]) == b"\x00\x00\x00\x00\x05\x00\x00\x000.5:3"


def test_classification_strings_use_the_one_top_k_order() -> None:
    rows = np.array([[0.1, 0.4, 0.4, 0.1] + [0.0] * 6, [0.0] * 9 + [1.0]], np.float32)
    assert classification_strings(rows, 2) == [["0.4:1", "0.4:2"], ["1:9", "0:0"]]
    assert model_tensors("predict_images")["outputs"][0]["name"] == "scores"
    assert model_tensors()["inputs"][0]["shape"] == [-1, 28, 28, 1]


def test_the_batch_polarity_check_agrees_with_the_one_image_rule() -> None:
    from mnist_contract.preprocess import frames_already_mnist, is_mnist_frame

    rng = np.random.default_rng(7)
    stack = rng.integers(0, 256, size=(300, 28, 28), dtype=np.uint8)
    # Borders right at the threshold: the middle two border pixels straddle 128 (a median of
    # 127.5 is dark, 128 is not), where a rule other than the median's would disagree.
    for i, (low, high) in enumerate([(127, 128), (128, 128), (127, 129), (126, 130), (0, 255)]):
        frame = stack[i]
        border = np.full(108, low, np.uint8)
        border[54:] = high
        rng.shuffle(border)
        frame[0, :], frame[-1, :] = border[:28], border[28:56]
        frame[1:-1, 0], frame[1:-1, -1] = border[56:82], border[82:]
    stack[5:100, 0, :] = stack[5:100, -1, :] = 10  # mostly dark borders
    expected = [is_mnist_frame(frame) for frame in stack]
    assert frames_already_mnist(stack).tolist() == expected
    assert expected[:5] == [True, False, False, False, True] and any(expected) and not all(expected)
