"""The process: checks before start, the gateway's serving lifecycle, worker processes, CPUs."""
