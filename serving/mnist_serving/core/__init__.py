"""The core: what happens to a request whatever protocol carried it.

``inference`` validates, batches, runs and answers; ``digits`` turns images into model frames;
``accounting`` counts and logs each request once; ``admission``, ``access_control`` and
``readiness`` decide whether a request is let in at all.
"""
