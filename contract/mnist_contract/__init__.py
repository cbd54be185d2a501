"""The contract every part of the project shares: the model's interface, its files, the wire.

Client, gateway, training job and tools import these modules and declare none of their facts
again. Nothing here needs TensorFlow or a server stack (numpy, Pillow and protobuf only).

    model       the model name, the two signatures with their shapes, the top-k rule
    layout      the version-folder rule and the file names inside a version folder
    pixels      the pixel-range rule (uint8 0-255 or float 0-1) and the model's input scaling
    preprocess  any picture of a digit → the 28×28 MNIST frame
    tensors     ``tensorflow.TensorProto`` ⇄ numpy
    protos      TF Serving's and the digits service's protobuf messages and gRPC stubs
"""
