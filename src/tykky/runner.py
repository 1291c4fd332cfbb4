"""The one way the tool runs other programs.

Logs the full argv, streams output to the user (at info level) while capturing it, and turns
a failure into a TykkyError carrying the tool's own error lines.
"""
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import IO, List, Mapping, Optional, Sequence

from tykky import interrupts, log
from tykky.errors import TykkyError

# Lines that carry a tool's own explanation of a failure.
_ERROR_MARKERS = ("ERROR", "FATAL", "Error", "error:", "E:", "No matching distribution",
                  "Could not", "Traceback", "failed", "cannot", "No such file", "unsatisfiable")
_TAIL_LINES = 15
# How long a program stopped by an interruption may take to finish before it is killed.
_STOP_SECONDS = 10


@dataclass(frozen=True)
class Completed:
    argv: Sequence[str]
    returncode: int
    output: str


def error_lines(output: str) -> str:
    """The lines of a tool's output that explain its failure, else its last lines."""
    lines = [line for line in output.splitlines() if line.strip()]
    marked = [line for line in lines if any(marker in line for marker in _ERROR_MARKERS)]
    chosen = marked[-_TAIL_LINES:] if marked else lines[-_TAIL_LINES:]
    return "\n".join("    " + line for line in chosen)


def _pump(stream: IO[bytes], chunks: List[str], echo: bool) -> None:
    for raw in iter(stream.readline, b""):
        line = raw.decode("utf-8", errors="replace")
        chunks.append(line)
        if echo:
            sys.stderr.write(line)
            sys.stderr.flush()


def _signal_group(process: "subprocess.Popen[bytes]", number: int) -> None:
    try:
        os.killpg(process.pid, number)
    except ProcessLookupError:
        pass


def _stop(process: "subprocess.Popen[bytes]") -> None:
    """End the program and everything it started, so that nothing keeps writing once the build
    directory is gone. It runs in its own session: the terminal's Ctrl-C reaches only this
    process, which decides; another Ctrl-C meanwhile does not cut this short."""
    with interrupts.held_back():
        _signal_group(process, signal.SIGTERM)
        _wait_unreaped(process, _STOP_SECONDS)
        # The program is not reaped yet, so its process group id cannot have been given to
        # another program's group (pids wrap around within seconds on a busy node).
        _signal_group(process, signal.SIGKILL)  # what ignored SIGTERM, or outlived the program
        process.wait()


def _wait_unreaped(process: "subprocess.Popen[bytes]", seconds: float) -> None:
    """Wait until the program has exited or seconds have passed, leaving it unreaped."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                return
        except ChildProcessError:
            return
        time.sleep(0.05)


def _failure(what: str, returncode: int) -> str:
    if returncode < 0:
        return f"{what} failed: it was killed by {signal.Signals(-returncode).name}:"
    return f"{what} failed (exit code {returncode}):"


def run(argv: Sequence[str], *, what: str, env: Optional[Mapping[str, str]] = None,
        cwd: Optional[str] = None, echo: Optional[bool] = None, check: bool = True,
        stdin_text: Optional[str] = None) -> Completed:
    """Run argv to completion; `what` names the step in an error ("installing packages")."""
    argv = [os.fspath(a) for a in argv]
    log.debug("running: " + " ".join(shlex.quote(a) for a in argv))
    if echo is None:
        echo = log.debug_enabled()
    try:
        process = subprocess.Popen(argv, env=dict(env) if env is not None else None, cwd=cwd,
                                   stdin=subprocess.PIPE if stdin_text is not None else subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    except OSError as exc:
        raise TykkyError(f"{what} failed: cannot run {argv[0]}: {exc.strerror}") from exc
    chunks: List[str] = []
    pump = threading.Thread(target=_pump, args=(process.stdout, chunks, echo), daemon=True)
    pump.start()
    try:
        if stdin_text is not None:
            process.stdin.write(stdin_text.encode())
            process.stdin.close()
        returncode = process.wait()
    except BaseException:
        _stop(process)
        raise
    pump.join()
    output = "".join(chunks)
    if check and returncode != 0:
        raise TykkyError(_failure(what, returncode), details=error_lines(output))
    return Completed(argv, returncode, output)
