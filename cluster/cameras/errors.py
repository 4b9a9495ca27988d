"""Errors of the camera registry; each message says what to do instead."""


class UnknownCameraError(LookupError):
    """No camera of that id runs."""


class DuplicateCameraError(ValueError):
    """A camera of that id already runs."""
