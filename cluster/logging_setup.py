"""structlog set-up for the `lfr` command: structured events to stderr, one line each.

Only entry points call this; library code just asks structlog for a logger.
"""

import logging
import sys

import structlog


def configure_logging(level: str = "warning", json: bool = False) -> None:
    """Route structlog events at `level` and above to stderr, as JSON or as key=value text."""
    numeric_level = logging.getLevelName(level.upper())
    if not isinstance(numeric_level, int):
        raise ValueError(f"unknown log level {level!r}; use debug, info, warning or error")
    renderer = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
