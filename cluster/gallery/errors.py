"""Errors of the face gallery; each message says what was wrong and what to do instead."""


class GalleryError(RuntimeError):
    """A gallery operation failed; the message names the operation and the cause."""


class InvalidEmbeddingError(ValueError):
    """Embeddings of the wrong shape, not finite, or not L2-normalised."""


class InvalidRecordError(ValueError):
    """A watchlist entry or social-media face whose fields cannot be stored."""


class UnknownWatchlistError(LookupError):
    """No watchlist (or version) of that id is in the catalogue."""


class WatchlistExistsError(ValueError):
    """A watchlist of that id was already created."""


class WatchlistExpiredError(GalleryError):
    """The watchlist's authorisation has expired: it may no longer be searched or enrolled into."""


class GalleryUnavailableError(GalleryError):
    """Milvus could not be reached within the retry policy; the message names the URI and what to do."""


class EmbeddedServerError(GalleryError):
    """The embedded milvus-lite server could not be started, reached or stopped."""


class FrozenVersionChangedError(GalleryError):
    """The rows of a frozen watchlist version differ from what was frozen: it may not be deployed or searched."""
