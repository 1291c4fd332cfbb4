"""new over an installation: swapped in whole, while a program started from the old one runs on."""
import subprocess

import pytest

from tests.integration.conftest import build_pip

pytestmark = pytest.mark.apptainer

# Reads its package's file only after being told to: by then the old installation is replaced.
READ_LATER = """
import sys, six
print(sys.prefix, flush=True)
sys.stdin.readline()
print(six.__version__, len(open(six.__file__).read()) > 1000, flush=True)
"""


def test_new_replaces_an_installation_in_use(who, pyz, user_dirs):
    home = user_dirs[who.name]
    prefix = home / "replaced-inst"
    build_pip(who, pyz, home, "replaced-inst", "six==1.16.0\n")
    running = subprocess.Popen(who.command([prefix / "bin" / "python", "-c", READ_LATER], who.environment()),
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert running.stdout.readline() == f"{prefix}\n".encode()
        completed = build_pip(who, pyz, home, "replaced-inst", "six==1.17.0\n")
        out, err = running.communicate(b"go\n", timeout=120)
    finally:
        if running.poll() is None:
            running.kill()
    assert (running.returncode, out) == (0, b"1.16.0 True\n"), err
    assert f"Replaced the installation at {prefix}" in completed.stderr.decode()
    now = who.run([prefix / "bin" / "python", "-c", "import six, sys; print(six.__version__, sys.prefix)"])
    assert now.stdout.decode().split() == ["1.17.0", str(prefix)]
    assert sorted(p.name for p in home.iterdir() if "replaced-inst" in p.name) == ["inputs-replaced-inst",
                                                                                  "replaced-inst"]


def test_new_refuses_a_directory_that_is_not_an_installation(who, pyz, user_dirs):
    home = user_dirs[who.name]
    prefix = home / "not-an-inst"
    if not prefix.exists():
        prefix.mkdir()
        (prefix / "notes.txt").write_text("mine")
        subprocess.run(["chown", "-R", f"{who.uid}:{who.gid}", str(prefix)], check=True)
    completed = build_pip(who, pyz, home, "not-an-inst", "six==1.16.0\n", check=False)
    assert completed.returncode == 1
    assert "neither an empty directory nor an installation" in completed.stderr.decode()
    assert [p.name for p in prefix.iterdir()] == ["notes.txt"]
