"""Every kind of bad data stops the job before training, naming the file and the problem."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from mnist_training.data import load_mnist, read_idx
from mnist_training.errors import DataError


def _idx(array: np.ndarray) -> bytes:
    magic = 0x0800 | array.ndim
    return struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def _idx_folder(tmp_path: Path, digits: dict[str, np.ndarray], compress: bool) -> Path:
    names = {
        "x_train": "train-images-idx3-ubyte",
        "y_train": "train-labels-idx1-ubyte",
        "x_test": "t10k-images-idx3-ubyte",
        "y_test": "t10k-labels-idx1-ubyte",
    }
    for key, name in names.items():
        data = _idx(digits[key][:100].astype(np.uint8))
        if compress:
            (tmp_path / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (tmp_path / name).write_bytes(data)
    return tmp_path


@pytest.mark.parametrize("compress", [False, True])
def test_idx_folder_loads_like_the_npz(tmp_path, digits, compress) -> None:
    data = load_mnist(_idx_folder(tmp_path, digits, compress))
    np.testing.assert_array_equal(data.x_train, digits["x_train"][:100])
    np.testing.assert_array_equal(data.y_test, digits["y_test"][:100])
    assert len(data.sha256) == 64


def test_missing_path(tmp_path) -> None:
    with pytest.raises(DataError, match=r"nope\.npz: no such file"):
        load_mnist(tmp_path / "nope.npz")


def test_truncated_idx_names_file_and_sizes(tmp_path, digits) -> None:
    folder = _idx_folder(tmp_path, digits, compress=False)
    path = folder / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte: truncated: header says shape"):
        load_mnist(folder)


def test_bad_magic(tmp_path) -> None:
    path = tmp_path / "x"
    path.write_bytes(struct.pack(">I", 0x1234) + b"\0" * 20)
    with pytest.raises(DataError, match="bad IDX magic number 0x00001234"):
        read_idx(path)


def test_corrupt_gzip(tmp_path) -> None:
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\.gz: cannot read"):
        read_idx(path)


def test_missing_idx_file_is_named(tmp_path, digits) -> None:
    folder = _idx_folder(tmp_path, digits, compress=False)
    (folder / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match="no t10k-labels-idx1-ubyte file"):
        load_mnist(folder)


def _npz(tmp_path: Path, **arrays: np.ndarray) -> Path:
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    return path


def _good(digits):
    return {k: v[:50] for k, v in digits.items()}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"x_train": np.zeros((50, 28, 27), np.uint8)}, r"x_train has shape \(50, 28, 27\)"),
        ({"x_test": np.zeros((50, 28, 28), np.float32)}, "x_test has dtype float32"),
        (
            {"y_train": np.full(50, 10)},
            r"1?\d+ label\(s\) outside 0-9 in y_train \(first at index 0: 10\)",
        ),
        ({"y_test": np.full(50, -1)}, "outside 0-9 in y_test"),
        ({"y_train": np.zeros(49, np.uint8)}, "49 labels for 50 images"),
        ({"y_test": np.zeros((50, 1), np.uint8)}, r"y_test has shape \(50, 1\)"),
        ({"y_train": np.zeros(50, np.float32)}, "y_train has dtype float32"),
    ],
)
def test_bad_arrays_are_refused(tmp_path, digits, change, message) -> None:
    path = _npz(tmp_path, **{**_good(digits), **change})
    with pytest.raises(DataError, match=message) as info:
        load_mnist(path)
    assert "bad.npz" in str(info.value)


def test_npz_without_a_key(tmp_path, digits) -> None:
    arrays = _good(digits)
    del arrays["y_test"]
    with pytest.raises(DataError, match="missing array"):
        load_mnist(_npz(tmp_path, **arrays))


def test_not_an_npz(tmp_path) -> None:
    path = tmp_path / "mnist.npz"
    path.write_bytes(b"PK\x03\x04 but broken")
    with pytest.raises(DataError, match=r"mnist\.npz: not a readable \.npz file"):
        load_mnist(path)


def test_cli_reports_bad_data_without_traceback(tmp_path, capsys) -> None:
    from mnist_training.cli import main

    assert main(["--data", str(tmp_path / "missing.npz"), "--model-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "mnist-train: error:" in err and "missing.npz" in err and "Traceback" not in err
    assert not (tmp_path / "mnist").exists()
