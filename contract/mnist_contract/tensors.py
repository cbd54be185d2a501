"""``tensorflow.TensorProto`` ⇄ numpy, without TensorFlow.

Both encodings TF Serving uses are read: raw little-endian bytes in ``tensor_content`` and the
typed ``*_val`` lists (TF Serving's default for answers). Arrays are written as
``tensor_content`` (one memory copy, no per-element protobuf work) unless asked otherwise::

    >>> t = array_to_tensor(np.zeros((2, 784), np.float32))
    >>> tensor_to_array(t).shape
    (2, 784)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mnist_contract.protos import tensorflow_pb2 as tf_pb

# DataType → (numpy dtype, name of the *_val field holding it)
_DTYPES: dict[tf_pb.DataType, tuple[np.dtype[Any], str]] = {
    tf_pb.DT_FLOAT: (np.dtype("<f4"), "float_val"),
    tf_pb.DT_DOUBLE: (np.dtype("<f8"), "double_val"),
    tf_pb.DT_INT32: (np.dtype("<i4"), "int_val"),
    tf_pb.DT_UINT8: (np.dtype("u1"), "int_val"),
    tf_pb.DT_INT16: (np.dtype("<i2"), "int_val"),
    tf_pb.DT_INT8: (np.dtype("i1"), "int_val"),
    tf_pb.DT_INT64: (np.dtype("<i8"), "int64_val"),
    tf_pb.DT_BOOL: (np.dtype("?"), "bool_val"),
    tf_pb.DT_HALF: (np.dtype("<f2"), "half_val"),
    tf_pb.DT_UINT32: (np.dtype("<u4"), "uint32_val"),
    tf_pb.DT_UINT64: (np.dtype("<u8"), "uint64_val"),
}
_BY_NUMPY = {
    dt.newbyteorder("<") if dt.itemsize > 1 else dt: code for code, (dt, _) in _DTYPES.items()
}
# Past this many elements a tensor is refused before any memory is allocated for it.
MAX_ELEMENTS = 64 * 1024 * 1024


class TensorError(ValueError):
    """A TensorProto that cannot be read as an array; the message names the problem."""


def dtype_name(code: int) -> str:
    try:
        return str(tf_pb.DataType.Name(code))
    except ValueError:
        return f"DataType({code})"


def tensor_to_array(tensor: tf_pb.TensorProto) -> np.ndarray:
    if tensor.dtype not in _DTYPES:
        raise TensorError(f"unsupported dtype {dtype_name(tensor.dtype)}")
    if tensor.tensor_shape.unknown_rank:
        raise TensorError("tensor_shape has unknown rank")
    shape = tuple(int(d.size) for d in tensor.tensor_shape.dim)
    if any(d < 0 for d in shape):
        raise TensorError(f"tensor_shape {list(shape)} has a negative dimension")
    count = math.prod(shape)  # exact: Python ints do not overflow
    if count > MAX_ELEMENTS:
        raise TensorError(
            f"tensor of shape {list(shape)} has {count:,} elements (limit {MAX_ELEMENTS:,})"
        )
    dtype, field = _DTYPES[tensor.dtype]
    if tensor.tensor_content:
        if len(tensor.tensor_content) != count * dtype.itemsize:
            raise TensorError(
                f"tensor_content holds {len(tensor.tensor_content)} bytes; shape {list(shape)} of "
                f"{dtype_name(tensor.dtype)} needs {count * dtype.itemsize}"
            )
        return np.frombuffer(tensor.tensor_content, dtype=dtype).reshape(shape)
    values = getattr(tensor, field)
    if tensor.dtype == tf_pb.DT_HALF:
        array = np.asarray(values, dtype=np.uint16).view(np.float16)
    else:
        array = np.asarray(values, dtype=dtype)
    if array.size == count:
        return array.reshape(shape)
    if array.size == 1 and count > 1:
        # TensorFlow's rule: a single value fills the whole shape.
        return np.full(shape, array[0], dtype=array.dtype)
    raise TensorError(f"{field} holds {array.size} values; shape {list(shape)} needs {count}")


def array_to_tensor(array: np.ndarray, *, as_content: bool = True) -> tf_pb.TensorProto:
    """An array as a TensorProto: raw ``tensor_content``, or the typed ``*_val`` list."""
    arr = np.asarray(array)
    key = arr.dtype.newbyteorder("<") if arr.dtype.itemsize > 1 else arr.dtype
    if key not in _BY_NUMPY:
        raise TensorError(f"cannot send numpy dtype {arr.dtype} as a tensor")
    code = _BY_NUMPY[key]
    tensor = tf_pb.TensorProto(dtype=code)
    tensor.tensor_shape.dim.extend(tf_pb.TensorShapeProto.Dim(size=d) for d in arr.shape)
    if as_content:
        tensor.tensor_content = np.ascontiguousarray(arr, dtype=key).tobytes()
    else:
        field = _DTYPES[code][1]
        flat = arr.reshape(-1)
        if code == tf_pb.DT_HALF:
            flat = flat.astype(np.float16).view(np.uint16)
        getattr(tensor, field).extend(flat.tolist())
    return tensor
