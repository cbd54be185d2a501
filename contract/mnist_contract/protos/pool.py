"""The private descriptor pool our generated protobuf modules register in.

Our ``tensorflow.serving.*`` messages have the same full names as those of the official
``tensorflow-serving-api`` package. Registering both in protobuf's default pool fails on the
second import ("duplicate symbol"), so ours live apart; on the wire they are identical.
"""

from google.protobuf import any_pb2, descriptor_pool, wrappers_pb2

POOL = descriptor_pool.DescriptorPool()
# Our files import these well-known types; a fresh pool has to be given them first.
for _module in (any_pb2, wrappers_pb2):
    POOL.AddSerializedFile(_module.DESCRIPTOR.serialized_pb)
