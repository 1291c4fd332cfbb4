"""Interruptions: the message and exit code, and the steps that finish before one is acted on."""
import os
import signal
import sys
import threading
import time

import pytest

from tykky import interrupts, runner
from tykky.interrupts import Interrupted


@pytest.fixture(autouse=True)
def handlers(monkeypatch):  # type: ignore[no-untyped-def]
    """The tool's handlers for the test, the previous ones afterwards; nothing published yet."""
    previous = {number: signal.getsignal(number) for number in interrupts.SIGNALS}
    monkeypatch.setattr(interrupts, "_published", [])
    interrupts.install_handlers()
    yield
    for number, handler in previous.items():
        signal.signal(number, handler)


def test_an_interruption_says_nothing_was_changed():
    error = Interrupted(signal.SIGINT)
    assert error.exit_code == 130 and "SIGINT" in error.message() and "nothing was changed" in error.message()
    assert Interrupted(signal.SIGTERM).exit_code == 143


def test_a_signal_raises_interrupted_with_its_number():
    with pytest.raises(Interrupted) as caught:
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(100):  # the handler runs between byte codes
            time.sleep(0.01)
    assert caught.value.signum == signal.SIGTERM


def test_publishing_finishes_before_the_interruption_is_raised(tmp_path):
    finished = []
    with pytest.raises(Interrupted) as caught:
        with interrupts.publishing(tmp_path / "inst"):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
            finished.append(True)
    assert finished == [True]
    assert caught.value.exit_code == 130 and caught.value.published == (str(tmp_path / "inst"),)
    assert "complete" in caught.value.message() and "nothing was changed" not in caught.value.message()


def test_a_failed_publish_is_not_reported_as_complete(tmp_path):
    with pytest.raises(OSError):
        with interrupts.publishing(tmp_path / "inst"):
            os.kill(os.getpid(), signal.SIGINT)
            raise OSError("disk full")
    assert Interrupted().published == ()


def test_an_interrupted_program_is_ended_with_what_it_started(tmp_path):
    """The program runs in its own session (Ctrl-C reaches only tykky): tykky ends its group."""
    pid_file = tmp_path / "pid"
    script = f"sleep 300 & echo $! > {pid_file}.tmp; mv {pid_file}.tmp {pid_file}; wait"

    def interrupt_when_started() -> None:
        while not pid_file.exists():
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGINT)
    threading.Thread(target=interrupt_when_started, daemon=True).start()
    with pytest.raises(Interrupted):
        runner.run(["/bin/sh", "-c", script], what="sleeping")
    sleeper = int(pid_file.read_text())
    for _ in range(600):  # reaped by init once killed; only bounds a hang
        if not os.path.exists(f"/proc/{sleeper}") or open(f"/proc/{sleeper}/stat").read().split()[2] == "Z":
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"the program's child {sleeper} still runs")


def test_a_program_killed_by_a_signal_says_so():
    with pytest.raises(runner.TykkyError, match="killed by SIGKILL"):
        runner.run([sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"],
                   what="installing")


def test_the_interruption_behind_clicks_abort_is_found():
    import click

    try:
        try:
            raise Interrupted(signal.SIGTERM)
        except KeyboardInterrupt as error:
            raise click.exceptions.Abort() from error
    except click.exceptions.Abort as abort:
        assert interrupts.as_interrupted(abort).exit_code == 143
    assert interrupts.as_interrupted(KeyboardInterrupt()).exit_code == 130


def test_the_last_kill_of_a_stopped_program_is_sent_before_it_is_reaped(monkeypatch):
    """Once reaped, its process group id may belong to another program's new group (pids wrap
    around within seconds on a busy node): the final SIGKILL must reach only what it started."""
    import subprocess

    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    unreaped_at_kill = []
    real_killpg = os.killpg

    def recording_killpg(pgid, number):  # type: ignore[no-untyped-def]
        if number == signal.SIGKILL:
            try:
                unreaped_at_kill.append(os.waitid(os.P_PID, pgid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None)
            except ChildProcessError:
                unreaped_at_kill.append(False)
        real_killpg(pgid, number)

    monkeypatch.setattr(os, "killpg", recording_killpg)
    runner._stop(process)
    assert unreaped_at_kill == [True] and process.returncode == -signal.SIGTERM
