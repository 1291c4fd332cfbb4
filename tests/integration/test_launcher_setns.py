"""Warm launches by a launcher on Python >= 3.12, which enters the instance with os.setns itself.

Launchers on older Pythons exec nsenter instead (every other warm test covers that path). Run
as root, when root has such a Python (other users cannot read root's pyenv).
"""
import glob
import shutil
import signal
import subprocess

import pytest

from tests.helpers import ROOT, popen
from tests.integration.conftest import signal_when_ready, warm_up

pytestmark = pytest.mark.apptainer
PYTHON312 = sorted(glob.glob("/root/.pyenv/versions/3.1[2-9]*/bin/python3.1[2-9]"))
WAIT_FOR_SIGNAL = ("import os, signal, sys, time\n"
                   "signal.signal(signal.SIGTERM, lambda n, f: (os.write(1, b'got %d\\n' % n), sys.exit(40 + n)))\n"
                   "print(os.readlink('/proc/self/ns/mnt'), flush=True)\n"
                   # Short sleeps: a handler that runs just before a long sleep starts would wait for its end.
                   "for _ in range(2400): time.sleep(0.05)")


@pytest.fixture(scope="module")
def setns_installation(pip_installation, user_dirs):  # type: ignore[no-untyped-def]
    if not PYTHON312:
        pytest.skip("no Python >= 3.12 on this machine")
    if pip_installation.parent != user_dirs["root"]:
        pytest.skip("the pyenv interpreter is root's")
    from tykky import layout

    copy = user_dirs["root"] / "setns-inst"
    if not copy.exists():
        shutil.copytree(pip_installation, copy, symlinks=True)
        layout.install_launcher(copy, PYTHON312[-1])
    return copy


def test_setns_join_runs_the_program_in_the_instance(setns_installation, pyz):
    warm_up(ROOT, pyz, setns_installation)
    python = setns_installation / "bin" / "python"
    program = "import os, sys, six; print(sys.executable, os.getcwd(), os.readlink('/proc/self/ns/mnt'))"
    first, second = (ROOT.run([python, "-c", program], cwd="/tmp").stdout.decode().split() for _ in range(2))
    assert first[:2] == [str(python), "/tmp"]
    assert first[2] == second[2]  # the same mount: both joined the instance
    cold = ROOT.run([python, "-c", program], cwd="/tmp", env={"TYKKY_WARM_MOUNTS": "0"}).stdout.decode().split()
    assert cold[2] != first[2]


def test_setns_join_passes_signals_and_exit_codes(setns_installation, pyz):
    warm_up(ROOT, pyz, setns_installation)
    python = setns_installation / "bin" / "python"
    joined = ROOT.run([python, "-c", "import os; print(os.readlink('/proc/self/ns/mnt'))"])
    process = popen(ROOT, [python, "-c", WAIT_FOR_SIGNAL], stdout=subprocess.PIPE)
    # The ready line is the program's mount namespace: the launcher's own process, in the instance.
    output = signal_when_ready(process, signal.SIGTERM, ready=joined.stdout)
    assert output == f"got {int(signal.SIGTERM)}\n".encode() and process.returncode == 40 + signal.SIGTERM
