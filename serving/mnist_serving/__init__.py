"""The gateway: one I/O-agnostic core behind REST and gRPC adapters (``mnist-serve``)."""

from importlib import metadata

try:
    SERVER_VERSION = metadata.version("mnist-serving")
except metadata.PackageNotFoundError:  # run from a source tree that was never installed
    SERVER_VERSION = "0+unknown"
