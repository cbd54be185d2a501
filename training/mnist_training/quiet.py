"""Keep TensorFlow's native start-up lines off the terminal unless asked for.

TensorFlow's C++ side writes straight to file descriptor 2 as it loads (no CUDA drivers,
oneDNN notices, absl's "before InitializeLog" warning); ``TF_CPP_MIN_LOG_LEVEL`` no longer
reaches all of them. They alarm new users and bury the job's own lines, so the job loads
TensorFlow once with that descriptor pointed at /dev/null; ``mnist-train --verbose`` skips this.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Point fd 2 at /dev/null inside the block; Python's own errors still surface after it."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def load_tensorflow_quietly() -> None:
    """Import TensorFlow and Keras and create the CPU device, without their native chatter."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with native_stderr_silenced():
        import keras  # noqa: F401
        import tensorflow as tf

        tf.config.list_logical_devices()
