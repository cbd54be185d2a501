"""Errors the training job reports to its user as one clear line (no traceback)."""


class TrainingError(Exception):
    """Root of the training job's errors; the CLI prints the message and exits 2."""


class DataError(TrainingError):
    """The data given cannot be trained on; the message names the file and the problem."""


class ExportError(TrainingError):
    """The model could not be exported (parity check failed, version taken, ...)."""
