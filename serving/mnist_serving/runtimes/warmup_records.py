"""Read the warm-up records TF Serving replays (``assets.extra/tf_serving_warmup_requests``).

The file is a TFRecord of serialized ``PredictionLog`` messages. TFRecord framing is simple
enough to read without TensorFlow: per record, a little-endian uint64 length, a masked CRC-32C
of it, the data, and a masked CRC-32C of the data (checked here in pure Python; the file is tiny).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from mnist_contract.layout import WARMUP_FILE
from mnist_contract.model import SERVING_DEFAULT
from mnist_contract.protos import tensorflow_serving_pb2 as tfs
from mnist_contract.tensors import tensor_to_array

MAX_RECORDS = 1000  # TF Serving's own cap


class WarmupError(ValueError):
    pass


def read_records(path: Path) -> Iterator[bytes]:
    data = path.read_bytes()
    offset = 0
    while offset < len(data):
        if offset + 12 > len(data):
            raise WarmupError(f"{path}: truncated record header at byte {offset}")
        (length,) = struct.unpack_from("<Q", data, offset)
        (length_crc,) = struct.unpack_from("<I", data, offset + 8)
        if _masked_crc(data[offset : offset + 8]) != length_crc:
            raise WarmupError(f"{path}: bad length checksum at byte {offset}")
        start, end = offset + 12, offset + 12 + length
        if end + 4 > len(data):
            raise WarmupError(f"{path}: truncated record at byte {offset}")
        (data_crc,) = struct.unpack_from("<I", data, end)
        if _masked_crc(data[start:end]) != data_crc:
            raise WarmupError(f"{path}: bad data checksum in record at byte {offset}")
        yield data[start:end]
        offset = end + 4


def warmup_batches(version_dir: Path) -> list[tuple[str, np.ndarray]]:
    """(signature name, images) per recorded Predict request, at most TF Serving's 1,000."""
    path = version_dir / WARMUP_FILE
    batches = []
    for i, record in enumerate(read_records(path)):
        if i >= MAX_RECORDS:
            break
        log = tfs.PredictionLog.FromString(record)
        if not log.HasField("predict_log"):
            continue
        request = log.predict_log.request
        signature = request.model_spec.signature_name or SERVING_DEFAULT.name
        for tensor in request.inputs.values():
            batches.append((signature, tensor_to_array(tensor)))
    return batches


def _crc32c_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc32c_table()


def _crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _masked_crc(data: bytes) -> int:
    crc = _crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF
