"""Benchmarks of the gateway, its peers and the training job (run as ``python -m benchmarks.X``).

``benchmarks.support`` holds what they share with the tests: starting a gateway on free ports
(reading its ``--ready-file``), stopping it, and reading a process's memory and CPU time.
"""
