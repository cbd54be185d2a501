"""Client SDK for the MNIST digit service (no TensorFlow needed)."""
