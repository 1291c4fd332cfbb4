"""The launcher on the oldest Python it supports (3.6), cold and warm, when one is installed."""
import glob
import shutil

import pytest

from tests.helpers import ROOT

pytestmark = pytest.mark.apptainer
PYTHON36 = sorted(glob.glob("/root/.pyenv/versions/3.6*/bin/python3.6") + glob.glob("/usr/bin/python3.6"))


@pytest.mark.skipif(not PYTHON36, reason="no Python 3.6 on this machine")
@pytest.mark.parametrize("warm", ["0", "1"])
def test_launcher_runs_on_python_3_6(pip_installation, user_dirs, warm):
    if pip_installation.parent != user_dirs["root"]:
        pytest.skip("the pyenv interpreter is root's")
    from tykky import layout

    copy = user_dirs["root"] / f"py36-inst-{warm}"
    if not copy.exists():
        shutil.copytree(pip_installation, copy, symlinks=True)
        layout.install_launcher(copy, PYTHON36[0])
    assert (copy / "_tykky" / "launcher").read_text().startswith(f"#!{PYTHON36[0]} -IS")
    completed = ROOT.run([copy / "bin" / "python", "-c", "import sys, six; print(sys.executable)"],
                         env={"TYKKY_WARM_MOUNTS": warm})
    assert completed.stdout.decode().strip() == str(copy / "bin" / "python")
