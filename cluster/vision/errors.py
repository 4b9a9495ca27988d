"""Errors raised for input the face models cannot use.

Each message says what was wrong and what to do, so a CLI user or an API client can act on it
without reading the code.
"""


class InvalidImageError(ValueError):
    """An image or frame that cannot be read or processed (empty, wrong shape, corrupt, too big)."""


class ModelWeightsError(RuntimeError):
    """Model weights could not be found or parsed from the installed package."""
