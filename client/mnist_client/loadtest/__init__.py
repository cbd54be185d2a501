"""Load testing with Locust: user classes (``users``) and the ``mnist-loadtest`` runner (``runner``).

Needs the ``[load]`` extra (locust, matplotlib). The users read their settings from the
environment; :data:`ENVIRONMENT` lists every variable they read, with what it does.
"""

ENVIRONMENT = {
    "MNIST_LOADTEST_TARGET": "gateway (default) | tfserving: which API the users speak",
    "MNIST_LOADTEST_DATA": "an mnist.npz with x_test (default: 512 test digits in the package)",
    "MNIST_LOADTEST_GRPC": "host:port for the gRPC users (default: the --host's host, port 8081)",
    "MNIST_LOADTEST_BATCH": "images per batch request (default 32)",
    "MNIST_LOADTEST_STEPS": 'e.g. "8,16,32,64": a step-load shape, users rising in steps',
    "MNIST_LOADTEST_STEP_SECONDS": "seconds per step (default 20)",
    "MNIST_TFSERVING_REST": "also load plain TF Serving's REST API directly, side by side",
    "MNIST_TFSERVING_GRPC": "also load plain TF Serving's gRPC API directly, side by side",
    "MNIST_LOADTEST_V2_REST": "http://host:port of another V2 server for V2RestUser (default: --host)",
    "MNIST_LOADTEST_V2_GRPC": "host:port of another V2 server for V2GrpcUser (default: as the gRPC users)",
}
