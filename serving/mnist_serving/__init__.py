"""The gateway: one I/O-agnostic core behind REST and gRPC adapters (``mnist-serve``)."""
