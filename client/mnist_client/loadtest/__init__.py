"""Load testing with Locust: user classes (``users``) and the ``mnist-loadtest`` runner (``runner``).

Needs the ``[load]`` extra (locust, matplotlib).
"""
