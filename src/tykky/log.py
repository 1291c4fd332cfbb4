"""Progress and diagnostic messages, filtered by CW_LOG_LEVEL.

Levels follow Tykky: 0 errors only, 1 warnings, 2 info (the default), above 2 debug.
"""
import logging
import os
import sys

LOGGER = logging.getLogger("tykky")
_LEVELS = {0: logging.ERROR, 1: logging.WARNING, 2: logging.INFO}


def level_from_environment() -> int:
    raw = os.environ.get("CW_LOG_LEVEL", "2")
    try:
        return int(raw)
    except ValueError:
        return 2


def configure(level: int) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter())
    LOGGER.handlers[:] = [handler]
    LOGGER.setLevel(_LEVELS.get(level, logging.DEBUG))
    LOGGER.propagate = False


def debug_enabled() -> bool:
    return LOGGER.isEnabledFor(logging.DEBUG)


class _Formatter(logging.Formatter):
    _TAGS = {logging.ERROR: "ERROR", logging.WARNING: "WARNING", logging.INFO: "INFO"}

    def format(self, record: logging.LogRecord) -> str:
        tag = self._TAGS.get(record.levelno, "DEBUG")
        return f"[ {tag} ] {record.getMessage()}"


def info(message: str) -> None:
    LOGGER.info(message)


def warning(message: str) -> None:
    LOGGER.warning(message)


def debug(message: str) -> None:
    LOGGER.debug(message)


def error(message: str) -> None:
    LOGGER.error(message)
