"""Load MNIST from a Keras-layout ``.npz``, a folder of IDX files, or Keras's own downloader.

Every check runs before training starts, and every failure is a :class:`DataError` whose
message names the file and what is wrong with it::

    >>> ds = load_mnist(Path("../shared/data/mnist.npz"))
    >>> ds.x_train.shape, ds.y_train.shape
    ((60000, 28, 28), (60000,))
"""

from __future__ import annotations

import gzip
import hashlib
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnist_training.errors import DataError

IMAGE_SIDE = 28
NUM_CLASSES = 10

# IDX files: magic number 0x00000803 for a 3-D uint8 array, 0x00000801 for 1-D.
_IDX_IMAGES_MAGIC = 0x00000803
_IDX_LABELS_MAGIC = 0x00000801
# The four file stems the original distribution uses (also with a ``.gz`` suffix, or with
# ``-idx3-ubyte`` written as ``.idx3-ubyte`` as some mirrors do).
_IDX_STEMS = {
    "x_train": ("train-images-idx3-ubyte", "train-images.idx3-ubyte"),
    "y_train": ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte"),
    "x_test": ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"),
    "y_test": ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"),
}


@dataclass(frozen=True)
class MnistData:
    """The four arrays in Keras's layout, plus where they came from."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str  # where it was read, as the user named it (for the job's own output)
    sha256: str
    file_name: str = ""  # the file or folder's name alone (the model card records no paths)

    def limited(self, limit: int | None) -> MnistData:
        """The first ``limit`` training and ``limit // 5`` (at least 1) test digits."""
        if limit is None:
            return self
        test_limit = max(1, limit // 5)
        return MnistData(
            self.x_train[:limit],
            self.y_train[:limit],
            self.x_test[:test_limit],
            self.y_test[:test_limit],
            f"{self.source} (first {limit} train / {test_limit} test)",
            self.sha256,
            self.file_name,
        )


def load_mnist(path: Path | None) -> MnistData:
    """Read MNIST from ``path`` (a ``.npz`` file or an IDX folder), or from Keras when ``None``."""
    if path is None:
        return _load_from_keras()
    if not path.exists():
        raise DataError(f"{path}: no such file or folder (give a Keras mnist.npz or IDX folder)")
    if path.is_dir():
        return _load_idx_folder(path)
    return _load_npz(path)


def sha256_of(paths: list[Path]) -> str:
    """One digest over the given files' bytes, in order."""
    digest = hashlib.sha256()
    for p in paths:
        with p.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _load_from_keras() -> MnistData:
    import keras  # only here: the other loaders need no TensorFlow

    try:
        (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    except Exception as exc:
        raise DataError(
            f"Keras could not download MNIST ({exc.__class__.__name__}: {exc}); "
            "pass --data with a local mnist.npz or a folder of IDX files"
        ) from exc
    cached = Path(keras.utils.get_file("mnist.npz", origin="", cache_subdir="datasets"))
    arrays = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    return _validated(
        arrays,
        {k: cached for k in arrays},
        "keras.datasets.mnist",
        sha256_of([cached]),
        "mnist.npz (keras.datasets.mnist)",
    )


def _load_npz(path: Path) -> MnistData:
    try:
        # Open the file ourselves: np.load leaks its handle when the zip is corrupt.
        with path.open("rb") as fh, np.load(fh, allow_pickle=False) as npz:
            missing = [k for k in _IDX_STEMS if k not in npz.files]
            if missing:
                raise DataError(
                    f"{path}: missing array(s) {', '.join(missing)}; "
                    f"a Keras mnist.npz holds x_train, y_train, x_test, y_test (found {npz.files})"
                )
            arrays = {k: npz[k] for k in _IDX_STEMS}
    except DataError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{path}: not a readable .npz file ({exc})") from exc
    return _validated(arrays, {k: path for k in arrays}, str(path), sha256_of([path]), path.name)


def _load_idx_folder(folder: Path) -> MnistData:
    files: dict[str, Path] = {}
    for key, stems in _IDX_STEMS.items():
        candidates = [folder / f"{s}{ext}" for s in stems for ext in ("", ".gz")]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise DataError(
                f"{folder}: no {stems[0]} file (looked for {', '.join(c.name for c in candidates)})"
            )
        files[key] = found
    arrays = {key: read_idx(p) for key, p in files.items()}
    names = ", ".join(p.name for p in files.values())
    return _validated(arrays, files, str(folder), sha256_of(list(files.values())), names)


def read_idx(path: Path) -> np.ndarray:
    """Parse one IDX file (gzipped or not) into a uint8 array, checking its header and length."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"{path}: cannot read ({exc})") from exc
    if len(raw) < 8:
        raise DataError(f"{path}: {len(raw)} bytes is too short for an IDX header")
    (magic,) = struct.unpack(">I", raw[:4])
    if magic not in (_IDX_IMAGES_MAGIC, _IDX_LABELS_MAGIC):
        raise DataError(
            f"{path}: bad IDX magic number 0x{magic:08x} "
            f"(expected 0x{_IDX_IMAGES_MAGIC:08x} for images or 0x{_IDX_LABELS_MAGIC:08x} for labels)"
        )
    ndim = magic & 0xFF
    header_len = 4 + 4 * ndim
    if len(raw) < header_len:
        raise DataError(f"{path}: truncated IDX header ({len(raw)} of {header_len} bytes)")
    shape = struct.unpack(f">{ndim}I", raw[4:header_len])
    expected = int(np.prod(shape))
    body = len(raw) - header_len
    if body != expected:
        what = "truncated" if body < expected else "has trailing bytes"
        raise DataError(
            f"{path}: {what}: header says shape {tuple(shape)} = {expected} bytes, file holds {body}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header_len).reshape(shape)


def _validated(
    arrays: dict[str, np.ndarray],
    files: dict[str, Path],
    source: str,
    digest: str,
    file_name: str,
) -> MnistData:
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        xf, yf = files[f"x_{split}"], files[f"y_{split}"]
        if x.ndim != 3 or x.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
            raise DataError(f"{xf}: x_{split} has shape {x.shape}, expected (N, 28, 28)")
        if x.dtype != np.uint8:
            raise DataError(f"{xf}: x_{split} has dtype {x.dtype}, expected uint8 pixels 0-255")
        if y.ndim != 1:
            raise DataError(f"{yf}: y_{split} has shape {y.shape}, expected (N,)")
        if not np.issubdtype(y.dtype, np.integer):
            raise DataError(f"{yf}: y_{split} has dtype {y.dtype}, expected integer labels")
        if len(x) != len(y):
            raise DataError(f"{yf}: {len(y)} labels for {len(x)} images in the {split} split")
        if len(x) == 0:
            raise DataError(f"{xf}: the {split} split is empty")
        bad = (y < 0) | (y >= NUM_CLASSES)
        if bad.any():
            first = int(np.argmax(bad))
            raise DataError(
                f"{yf}: {int(bad.sum())} label(s) outside 0-9 in y_{split} "
                f"(first at index {first}: {int(y[first])})"
            )
    return MnistData(
        arrays["x_train"],
        arrays["y_train"].astype(np.int64),
        arrays["x_test"],
        arrays["y_test"].astype(np.int64),
        source,
        digest,
        file_name,
    )
