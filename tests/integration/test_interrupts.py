"""Interrupting a build during its install step: it says so, changes nothing, leaves nothing."""
import os
import signal
import subprocess
from pathlib import Path

import pexpect
import pytest

from tests.helpers import make_owned_dir, popen, spawn, tool
from tests.integration.conftest import build_pip, owned_file, wait_for

pytestmark = pytest.mark.apptainer

# A pre-install step that runs until it is stopped, and says which process it is waiting in.
HANG = "sleep 600 & echo $! > {pid}.tmp; mv {pid}.tmp {pid}; wait\n"


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def interrupt(who, pyz, home: Path, name: str, how: str, *command: str) -> "tuple[int, str]":  # type: ignore[no-untyped-def]
    """Run command with a pre-install step that hangs; interrupt it there: (exit code, output).

    how: "terminal" types Ctrl-C on the terminal it runs on, "sigterm" sends it SIGTERM."""
    build_tmpdir = make_owned_dir(home / f"{name}-build", who)
    pid_file = home / f"{name}.pid"
    hang = owned_file(home / f"{name}-hang.sh", HANG.format(pid=pid_file), who)
    argv = tool(pyz, *command, "--pre-install", str(hang))
    env = {"CW_BUILD_TMPDIR": str(build_tmpdir)}
    if how == "terminal":
        child = spawn(who, argv, env=env, cwd=str(home))
        try:
            assert wait_for(pid_file.exists)
            child.sendintr()
            child.expect(pexpect.EOF, timeout=120)
            output = child.before.decode(errors="replace")
        finally:
            child.close(force=True)
        code = child.exitstatus
    else:
        process = popen(who, argv, env=env, cwd=home, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            assert wait_for(pid_file.exists)
            process.send_signal(signal.SIGTERM)
            output = process.communicate(timeout=120)[0].decode(errors="replace")
        finally:
            if process.poll() is None:
                process.kill()
        code = process.returncode
    assert wait_for(lambda: not alive(int(pid_file.read_text())))  # the step's processes are ended
    assert os.listdir(build_tmpdir) == []
    assert "Traceback" not in output and "exit code" not in output
    return code, output


@pytest.mark.parametrize("how, code, name", [("terminal", 130, "SIGINT"), ("sigterm", 143, "SIGTERM")])
def test_an_interrupted_new_says_so_and_leaves_nothing(who, pyz, user_dirs, how, code, name):
    home = user_dirs[who.name]
    prefix = home / f"interrupted-new-{how}"
    requirements = owned_file(home / "interrupt-reqs.txt", "six==1.16.0\n", who)
    result = interrupt(who, pyz, home, f"interrupt-new-{how}", how, "pip-containerize", "new", "--prefix",
                       str(prefix), str(requirements))
    assert result[0] == code
    assert f"Interrupted ({name}); nothing was changed" in result[1]
    assert not prefix.exists()
    assert [entry for entry in os.listdir(home) if entry.startswith(f".{prefix.name}")] == []


@pytest.fixture(scope="session")
def to_interrupt(who, pyz, user_dirs):  # type: ignore[no-untyped-def]
    home = user_dirs[who.name]
    build_pip(who, pyz, home, "to-interrupt", "six==1.16.0\n")
    return home / "to-interrupt"


def test_an_interrupted_update_leaves_the_installation_as_it_was(to_interrupt, who, pyz, user_dirs):
    home = user_dirs[who.name]
    before = {path.name: path.stat().st_mtime_ns for path in to_interrupt.iterdir()}
    manifest = (to_interrupt / "_tykky" / "manifest.json").read_bytes()
    code, output = interrupt(who, pyz, home, "interrupt-update", "terminal", "pip-containerize", "update",
                             str(to_interrupt))
    assert code == 130 and "Interrupted (SIGINT); nothing was changed" in output
    assert {path.name: path.stat().st_mtime_ns for path in to_interrupt.iterdir()} == before
    assert (to_interrupt / "_tykky" / "manifest.json").read_bytes() == manifest
    assert sorted(p.name for p in (to_interrupt / "share" / "tykky" / "history").iterdir()) == ["0001-new"]
    check = "import six, sys; print(six.__file__.startswith(sys.prefix))"
    completed = who.run([to_interrupt / "bin" / "python", "-c", check])
    assert completed.stdout == b"True\n"
    assert [entry for entry in os.listdir(home) if entry.startswith(".to-interrupt")] == []
