"""structlog configuration: one JSON object per line on stderr.

Workers share the sidecar's stderr, so each line must reach it in one write: structlog's
PrintLogger writes the message and its newline separately when stderr is unbuffered
(PYTHONUNBUFFERED, as some CI runners set), and two workers' lines then run together.
"""

from __future__ import annotations

import logging
import sys

import structlog


def configure(level: str = "info") -> None:
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.WriteLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
