"""Concurrent writers of one installation: they take turns, and each one's work lands."""
import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.helpers import make_owned_dir, popen, tool
from tests.integration.conftest import build_pip, owned_file, wait_for

pytestmark = pytest.mark.apptainer

# A post-install step that puts a module only this installation has into the venv.
ADD_MODULE = ("python -c \"import sysconfig, pathlib; "
              "pathlib.Path(sysconfig.get_paths()['purelib'], 'tykky_mod_{name}.py').write_text('WHO = 1')\"\n")
CHECK = ("import sys, importlib\n"
         "for name in sys.argv[1:]:\n"
         "    try:\n"
         "        module = importlib.import_module('tykky_mod_' + name)\n"
         "    except ImportError:\n"
         "        continue\n"
         "    assert module.__file__.startswith(sys.prefix), (module.__file__, sys.prefix)\n"
         "    print(name)\n")


def modules(who, prefix: Path) -> list:  # type: ignore[no-untyped-def]
    """Which of the test modules a..d the installation has (checked with its own Python)."""
    completed = who.run([prefix / "bin" / "python", "-c", CHECK, "a", "b", "c", "d"])
    return completed.stdout.decode().split()


def script(who, home: Path, name: str, text: str) -> Path:  # type: ignore[no-untyped-def]
    return owned_file(make_owned_dir(home / "lock-inputs", who) / name, text, who)


def holds_lock(prefix: Path, process: subprocess.Popen) -> bool:
    """The writer lock of prefix is held by process (its record names it)."""
    try:
        return json.loads((prefix.parent / f".{prefix.name}.tykky-lock").read_text())["pid"] == process.pid
    except (OSError, ValueError, KeyError):
        return False


def start(who, pyz, home: Path, *command: str, env=None) -> subprocess.Popen:  # type: ignore[no-untyped-def]
    return popen(who, tool(pyz, *command), env=env, cwd=home, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(process: subprocess.Popen) -> "tuple[int, str]":
    try:
        _, stderr = process.communicate(timeout=900)
    finally:
        if process.poll() is None:
            process.kill()
    return process.returncode, stderr.decode(errors="replace")


@pytest.fixture(scope="session")
def shared(who, pyz, user_dirs):  # type: ignore[no-untyped-def]
    home = user_dirs[who.name]
    build_pip(who, pyz, home, "shared", "six==1.16.0\n")
    return home / "shared"


def test_two_updates_at_once_both_land(shared, who, pyz, user_dirs):
    home = user_dirs[who.name]
    first = start(who, pyz, home, "pip-containerize", "update", str(shared), "--post-install",
                  str(script(who, home, "a.sh", ADD_MODULE.format(name="a"))))
    second = start(who, pyz, home, "pip-containerize", "update", str(shared), "--post-install",
                   str(script(who, home, "b.sh", ADD_MODULE.format(name="b"))))
    (first_code, first_err), (second_code, second_err) = finish(first), finish(second)
    assert (first_code, second_code) == (0, 0), first_err + second_err
    assert modules(who, shared) == ["a", "b"]
    # One of them waited, and said for whom.
    waited = [err for err, other in ((first_err, second), (second_err, first)) if "is being written by" in err]
    assert len(waited) == 1
    assert [f"pid {p.pid} on" in waited[0] for p in (first, second)].count(True) == 1
    history = sorted(p.name for p in (shared / "share" / "tykky" / "history").iterdir())
    assert history == ["0001-new", "0002-update", "0003-update"]
    assert not (shared.parent / ".shared.tykky-lock").exists()


def test_a_held_lock_with_a_timeout_fails_naming_the_holder(shared, who, pyz, user_dirs):
    home = user_dirs[who.name]
    go = home / "lock-go"
    hold = script(who, home, "hold.sh", f"while [ ! -e {go} ]; do sleep 0.2; done\n" + ADD_MODULE.format(name="c"))
    holder = start(who, pyz, home, "pip-containerize", "update", str(shared), "--pre-install", str(hold))
    try:
        assert wait_for(lambda: holds_lock(shared, holder))
        workdir = make_owned_dir(home / "lock-timeout-cwd", who)
        waiter = who.run(tool(pyz, "pip-containerize", "update", str(shared), "--post-install",
                              str(script(who, home, "d.sh", ADD_MODULE.format(name="d")))),
                         cwd=home, check=False, env={"TYKKY_LOCK_TIMEOUT": "1", "CW_BUILD_TMPDIR": str(workdir)})
        stderr = waiter.stderr.decode()
        assert waiter.returncode != 0 and "Traceback" not in stderr
        assert f"is being written by pid {holder.pid} on " in stderr and "pip-containerize update" in stderr
        assert "gave up waiting after 1 s" in stderr
        assert os.listdir(workdir) == []
        assert modules(who, shared) == ["a", "b"]  # still working, unchanged
    finally:
        go.touch()
        code, stderr = finish(holder)
    assert code == 0, stderr
    assert modules(who, shared) == ["a", "b", "c"]


def test_two_news_of_one_prefix_give_one_installation(who, pyz, user_dirs):
    home = user_dirs[who.name]
    prefix = make_owned_dir(home / "lock-new", who) / "inst"
    requirements = script(who, home, "six.txt", "six==1.16.0\n")
    first = start(who, pyz, home, "pip-containerize", "new", "--prefix", str(prefix), "--post-install",
                  str(script(who, home, "a.sh", ADD_MODULE.format(name="a"))), str(requirements))
    assert wait_for(lambda: holds_lock(prefix, first))
    second = start(who, pyz, home, "pip-containerize", "new", "--prefix", str(prefix), "--post-install",
                   str(script(who, home, "b.sh", ADD_MODULE.format(name="b"))), str(requirements))
    (first_code, first_err), (second_code, second_err) = finish(first), finish(second)
    assert first_code == 0, first_err
    assert f"is being written by pid {first.pid} on " in second_err
    assert "Traceback" not in second_err
    # The second either refuses the existing installation or replaces it whole: never a mix.
    assert modules(who, prefix) == (["b"] if second_code == 0 else ["a"])
    if second_code != 0:
        assert "already exists" in second_err
    assert sorted(p.name for p in (prefix / "share" / "tykky" / "history").iterdir()) == ["0001-new"]
    assert os.listdir(prefix.parent) == ["inst"]  # no staging directory, no lock file
