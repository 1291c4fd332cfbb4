"""Interruptions (Ctrl-C, SIGTERM, SIGHUP): what they stop, and what they report.

A signal raises `Interrupted` in the main thread; the build directory and any staging files
go as it unwinds, so an interrupted build changes nothing. The few steps that put a finished
build in place run with these signals held back (`publishing`): an interruption there waits
for them, and then says that the installation is complete instead.
"""
import signal
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, List

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# Installations this process has put in place: what an interruption after that reports.
_published: List[str] = []


class Interrupted(KeyboardInterrupt):
    """A signal stopped the command: exit with 128 + its number."""

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(signum)
        self.signum = signum
        self.published = tuple(_published)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    def message(self) -> str:
        name = signal.Signals(self.signum).name
        if self.published:
            return (f"Interrupted ({name}) after {', '.join(self.published)} had been put in place: "
                    "it is complete and usable.")
        return (f"Interrupted ({name}); nothing was changed: an existing installation is as it was, "
                "and the build's files are removed.")


def _raise_interrupted(signum: int, _frame: Any) -> None:
    raise Interrupted(signum)


def install_handlers() -> None:
    """SIGINT keeps being ignored where the shell that started us ignores it (background jobs)."""
    for number in SIGNALS:
        if signal.getsignal(number) is not signal.SIG_IGN:
            signal.signal(number, _raise_interrupted)


def as_interrupted(error: BaseException) -> Interrupted:
    """The interruption behind error (click wraps it in Abort); a plain KeyboardInterrupt is SIGINT."""
    for cause in (error, error.__cause__, error.__context__):
        if isinstance(cause, Interrupted):
            return cause
    return Interrupted(signal.SIGINT)


@contextmanager
def held_back() -> Iterator[List[int]]:
    """Run the block with SIGNALS blocked; yields the list the signals that came meanwhile go into."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    pending: List[int] = []
    try:
        yield pending
    finally:
        waiting = signal.sigpending() & set(SIGNALS)
        while waiting:
            pending.append(signal.sigwait(waiting))  # taken here, so they are not delivered later
            waiting = signal.sigpending() & set(SIGNALS)
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


@contextmanager
def publishing(prefix: Path) -> Iterator[None]:
    """Put a finished build in place: an interruption waits for the block, then is raised as one
    that happened after the installation was complete."""
    with held_back() as pending:
        yield
        _published.append(str(prefix))
    if pending:
        raise Interrupted(pending[0])
