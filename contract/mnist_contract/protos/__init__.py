"""Generated protobuf and gRPC modules (see scripts/generate_protos.py) and their .proto files."""
