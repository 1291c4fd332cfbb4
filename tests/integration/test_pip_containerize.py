"""pip-containerize new/update end to end with real Apptainer and PyPI, as root and as the test user."""
import os
import subprocess

import pytest

from tests.helpers import make_owned_dir, popen, tool
from tests.integration.conftest import build_pip, owned_file

pytestmark = pytest.mark.apptainer


def test_layout_of_a_new_installation(pip_installation):
    prefix = pip_installation
    assert os.readlink(prefix / "bin" / "python") == "../_tykky/launcher"
    assert os.readlink(prefix / "_bin" / "python") == "/TYKKY/venv/bin/python"
    for name in ("_debug_exec", "_debug_shell", "pip"):
        assert (prefix / "bin" / name).is_symlink()
    assert (prefix / "img.sqfs").stat().st_size > 0
    assert (prefix / "container.sif").stat().st_size > 0
    assert "include-system-site-packages = false" in (prefix / "pyvenv.cfg").read_text()
    assert "home" not in (prefix / "pyvenv.cfg").read_text().replace("#", "\n#").split("\n#")[0]
    assert (prefix / "share" / "tykky" / "history" / "0001-new" / "requirements.txt").read_text().startswith("six")
    assert (prefix / "share" / "tykky" / "version").read_text().strip()
    assert "installation_path: /TYKKY" in (prefix / "share" / "tykky" / "config.yaml").read_text()
    first_line = (prefix / "_tykky" / "launcher").read_text().split("\n", 1)[0]
    assert first_line.startswith("#!/") and first_line.endswith(" -IS")


def test_image_content_is_readable_not_writable_by_others(pip_installation):
    listing = subprocess.run(["unsquashfs", "-lls", str(pip_installation / "img.sqfs")], check=True,
                             stdout=subprocess.PIPE).stdout.decode().splitlines()
    entries = [line.split()[0] for line in listing if line[:1] in "-d"]
    assert len(entries) > 100
    for mode in entries:
        assert mode[7] == "r", mode  # others can read
        assert mode[5] == "-" and mode[8] == "-", mode  # group and others cannot write


def test_installation_survives_being_moved(pip_installation, who, user_dirs):
    moved = user_dirs[who.name] / "moved-inst"
    who.run(["cp", "-a", pip_installation, moved])
    completed = who.run([moved / "bin" / "python", "-c", "import six, sys; print(sys.prefix)"])
    assert completed.stdout.decode().strip() == str(moved)
    who.run(["rm", "-rf", moved])


def test_venv_on_top_installs_and_uses_its_own_packages(pip_installation, who, user_dirs):
    """A venv made by the installation's Python installs into itself and runs with its own prefix.

    tomli is in neither the installation nor the Pythons the venv could fall back on (checked
    first: found there, it would not show that the venv's own packages are used). With
    --system-site-packages the venv sees its base interpreter's packages, not the installation's:
    a venv of a venv does not chain.
    """
    venv = user_dirs[who.name] / "venv-on-top"
    who.run([pip_installation / "bin" / "python", "-m", "venv", "--system-site-packages", venv])
    assert os.readlink(venv / "bin" / "python") == str(pip_installation / "bin" / "python")
    find_tomli = "import importlib.util; print(importlib.util.find_spec('tomli'))"
    for python in (pip_installation / "bin" / "python", venv / "bin" / "python"):
        assert who.run([python, "-c", find_tomli]).stdout.decode().split() == ["None"]
    who.run([venv / "bin" / "pip", "install", "--no-deps", "tomli==2.0.1"], cwd=user_dirs[who.name])
    program = ("import sys, shutil, tomli; print(sys.prefix); print(sys.executable); print(shutil.which('python')); "
               "print(tomli.__file__)")
    completed = who.run([venv / "bin" / "python", "-c", program])
    prefix, executable, found_on_path, tomli_file = completed.stdout.decode().split()
    assert prefix == str(venv)
    assert executable == found_on_path == str(venv / "bin" / "python")
    assert tomli_file.startswith(str(venv / "lib"))


def test_typo_in_requirements_fails_cleanly(pyz, who, user_dirs):
    home = user_dirs[who.name]
    build_base = make_owned_dir(home / "typo-builds", who)
    completed = build_pip(who, pyz, home, "typo", "sixx-this-does-not-exist-tykky==1.0\n", check=False,
                      env={"CW_BUILD_TMPDIR": str(build_base)})
    stderr = completed.stderr.decode()
    assert completed.returncode != 0
    assert "sixx-this-does-not-exist-tykky" in stderr and "No matching distribution" in stderr
    assert "Traceback" not in stderr
    assert not (home / "typo").exists()
    assert list(build_base.iterdir()) == []


def test_missing_requirements_file_is_a_clear_error(pyz, who, user_dirs):
    home = user_dirs[who.name]
    completed = who.run(tool(pyz, "pip-containerize", "new", "--prefix", str(home / "nothing"),
                             str(home / "missing.txt")), check=False, cwd=home)
    assert completed.returncode != 0
    assert b"missing.txt does not exist" in completed.stderr
    assert b"Traceback" not in completed.stderr
    assert not (home / "nothing").exists()


def test_unwritable_prefix_is_a_clear_error(pyz, who, user_dirs):
    if who.is_root:
        pytest.skip("root can write everywhere")
    completed = who.run(tool(pyz, "pip-containerize", "new", "--prefix", "/opt/forbidden-tykky",
                             str(user_dirs[who.name] / "inputs" / "requirements.txt")), check=False)
    assert completed.returncode != 0
    assert b"not writable" in completed.stderr


def test_unknown_option_is_a_usage_error(pyz, who):
    completed = who.run(tool(pyz, "pip-containerize", "new", "--no-such-option", "x"), check=False)
    assert completed.returncode == 2
    assert b"error: unrecognized arguments: --no-such-option" in completed.stderr


def test_prefix_with_spaces(pyz, who, user_dirs):
    home = user_dirs[who.name]
    build_pip(who, pyz, home, "with space", "six==1.16.0\n")
    completed = who.run([home / "with space" / "bin" / "python", "-c", "import six; print(six.__file__)"])
    assert completed.stdout.decode().startswith(str(home / "with space"))


@pytest.fixture(scope="session")
def updatable(who, pyz, user_dirs):  # type: ignore[no-untyped-def]
    home = user_dirs[who.name]
    build_pip(who, pyz, home, "to-update", "six==1.16.0\n")
    return home / "to-update"


def test_update_adds_a_package_while_a_program_keeps_running(updatable, who, pyz, user_dirs):
    home = user_dirs[who.name]
    waiting = ("import sys, time; sys.stdout.write('ready\\n'); sys.stdout.flush(); sys.stdin.readline(); "
               "import json, six; print('old image still readable', six.__version__)")
    running = popen(who, [updatable / "bin" / "python", "-c", waiting], stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert running.stdout.readline() == b"ready\n"
    more = owned_file(make_owned_dir(home / "inputs-more", who) / "more.txt", "tomli==2.0.1\n", who)
    who.run(tool(pyz, "pip-containerize", "update", str(updatable), "-r", str(more)), cwd=home)
    output, _ = running.communicate(b"\n", timeout=60)
    assert running.returncode == 0 and b"old image still readable 1.16.0" in output
    completed = who.run([updatable / "bin" / "python", "-c", "import tomli, six; print('both')"])
    assert completed.stdout == b"both\n"
    history = sorted(p.name for p in (updatable / "share" / "tykky" / "history").iterdir())
    assert history == ["0001-new", "0002-update"]
    recorded = updatable / "share" / "tykky" / "history" / "0002-update" / "requirements.txt"
    assert recorded.read_text() == "tomli==2.0.1\n"


def test_failed_update_leaves_installation_working(updatable, who, pyz, user_dirs):
    home = user_dirs[who.name]
    before = (updatable / "img.sqfs").stat().st_mtime_ns
    bad = owned_file(home / "bad-update.txt", "no-such-package-tykky-update==9\n", who)
    completed = who.run(tool(pyz, "pip-containerize", "update", str(updatable), "-r", str(bad)),
                        check=False, cwd=home)
    assert completed.returncode != 0 and b"no-such-package-tykky-update" in completed.stderr
    assert (updatable / "img.sqfs").stat().st_mtime_ns == before
    who.run([updatable / "bin" / "python", "-c", "import six"])


def test_post_install_and_environ(pyz, who, user_dirs):
    home = user_dirs[who.name]
    inputs = make_owned_dir(home / "inputs-hooks", who)
    post = owned_file(inputs / "post.sh", "echo made-by-post > $VIRTUAL_ENV/post-marker.txt\n", who)
    environ = owned_file(inputs / "environ.sh", "export TYKKY_TEST_VALUE='from environ'\n", who)
    build_pip(who, pyz, home, "hooks", "six==1.16.0\n", "--post-install", str(post), "--environ", str(environ))
    program = "import os; print(open('/TYKKY/venv/post-marker.txt').read().strip(), os.environ['TYKKY_TEST_VALUE'])"
    completed = who.run([home / "hooks" / "bin" / "python", "-c", program])
    assert completed.stdout.decode().strip() == "made-by-post from environ"


def test_every_python_source_in_the_image_has_bytecode(pip_installation):
    listing = subprocess.run(["unsquashfs", "-l", str(pip_installation / "img.sqfs")], check=True,
                             stdout=subprocess.PIPE).stdout.decode().splitlines()
    files = set(listing)
    sources = [path for path in files if path.endswith(".py")]
    assert len(sources) > 100
    missing = [path for path in sources
               if f"{os.path.dirname(path)}/__pycache__/{os.path.basename(path)[:-3]}.cpython-311.pyc" not in files]
    assert missing == []
