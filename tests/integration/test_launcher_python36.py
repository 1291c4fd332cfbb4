"""The launcher on the oldest Python it supports (3.6), cold and warm, as root and as the test user."""
import subprocess

import pytest

pytestmark = pytest.mark.apptainer


@pytest.mark.parametrize("warm", ["0", "1"])
def test_launcher_runs_on_python_3_6(pip_installation, user_dirs, who, python36, warm):
    from tykky import layout

    copy = user_dirs[who.name] / f"py36-inst-{warm}"
    if not copy.exists():
        who.run(["cp", "-a", pip_installation, copy])
        layout.install_launcher(copy, python36)
        subprocess.run(["chown", "-R", f"{who.uid}:{who.gid}", copy], check=True)
    assert (copy / "_tykky" / "launcher").read_text().startswith(f"#!{python36} -IS")
    completed = who.run([copy / "bin" / "python", "-c", "import sys, six; print(sys.executable)"],
                        env={"TYKKY_WARM_MOUNTS": warm})
    assert completed.stdout.decode().strip() == str(copy / "bin" / "python")
