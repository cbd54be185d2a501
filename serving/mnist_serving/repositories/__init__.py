"""Where the model lives: version folders on disk (``local``) or TF Serving replicas
(``tfserving_replicas``), behind one protocol (``protocol``); the version policy, labels and
canary share (``model_config``)."""
