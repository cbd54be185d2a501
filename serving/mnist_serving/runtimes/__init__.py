"""What runs the model: LiteRT, the SavedModel, or a TF Serving client, behind one protocol
(``protocol``); loading and warming a version (``loading``, ``warmup_records``); adaptive
batching in front of them (``batching``)."""
