"""The gRPC adapter: one service table, endpoints per protocol, protobuf codecs."""
