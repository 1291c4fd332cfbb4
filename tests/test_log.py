"""Messages filtered by CW_LOG_LEVEL, tagged like Tykky's."""
import logging

import pytest

from tykky import log


@pytest.mark.parametrize(("raw", "level"), [("0", 0), ("3", 3), ("many", 2), ("", 2)])
def test_the_level_comes_from_cw_log_level(monkeypatch, raw, level):
    monkeypatch.setenv("CW_LOG_LEVEL", raw)
    assert log.level_from_environment() == level


def test_without_cw_log_level_it_is_info(monkeypatch):
    monkeypatch.delenv("CW_LOG_LEVEL", raising=False)
    assert log.level_from_environment() == 2


@pytest.mark.parametrize(("level", "shown"), [
    (0, ["[ ERROR ] e"]), (1, ["[ WARNING ] w", "[ ERROR ] e"]), (2, ["[ INFO ] i", "[ WARNING ] w", "[ ERROR ] e"]),
    (3, ["[ DEBUG ] d", "[ INFO ] i", "[ WARNING ] w", "[ ERROR ] e"]),
])
def test_each_level_shows_its_messages_and_the_more_serious_ones(capsys, level, shown):
    saved = (list(log.LOGGER.handlers), log.LOGGER.level, log.LOGGER.propagate)
    try:
        log.configure(level)
        log.debug("d"), log.info("i"), log.warning("w"), log.error("e")
        assert log.debug_enabled() is (level > 2)
    finally:
        log.LOGGER.handlers[:], log.LOGGER.level, log.LOGGER.propagate = saved
    assert capsys.readouterr().err.splitlines() == shown
    assert logging.getLogger("tykky") is log.LOGGER


def test_messages_are_shown_once_even_when_the_root_logger_has_a_handler(capsys):
    class Collect(logging.Handler):
        def __init__(self) -> None:
            super().__init__()
            self.records: list = []

        def emit(self, record: logging.LogRecord) -> None:
            self.records.append(record)

    root_handler = Collect()
    saved = (list(log.LOGGER.handlers), log.LOGGER.level, log.LOGGER.propagate)
    logging.getLogger().addHandler(root_handler)
    try:
        log.configure(2)
        log.info("once")
    finally:
        logging.getLogger().removeHandler(root_handler)
        log.LOGGER.handlers[:], log.LOGGER.level, log.LOGGER.propagate = saved
    assert capsys.readouterr().err == "[ INFO ] once\n" and root_handler.records == []
