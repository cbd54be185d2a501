"""The training job: builds the seed's MNIST convnet, trains it and exports it for TF Serving."""
