"""Print the Open Inference Protocol file descriptor one client ships (``tritonclient`` or
``kserve``) as base64 FileDescriptorProto, for the field-number comparison in the main suite.

One client per process: both register ``inference.*`` in protobuf's default pool, so the two
cannot even be imported together (the gateway's own messages live in a private pool).
"""

import base64
import sys

if sys.argv[1] == "kserve":
    from kserve.protocol.grpc import grpc_predict_v2_pb2 as module
else:
    from tritonclient.grpc import service_pb2 as module

print(base64.b64encode(module.DESCRIPTOR.serialized_pb).decode())
