"""tykky.pyz on Python 3.6 (the system python3 of RHEL 8 and SLES 15), as root and as the test user:
it builds pip, wrap-container and wrap-install installations whose programs run, updates and
compacts, lists and stops warm instances, sets a site up, shows info, activates an installation,
and builds a conda environment with a solver Python >= 3.10 it finds by itself."""
import re
import shlex
import subprocess

import pytest

from tests.helpers import BASE_IMAGE, make_owned_dir
from tests.integration.conda_fixtures import environment_yml
from tests.integration.conftest import owned_file, wait_for

pytestmark = pytest.mark.apptainer

PROGRAM = "import sys, iniconfig; print(sys.prefix); print(iniconfig.__file__)"
PROBE = """#!/usr/bin/env python3
import os, sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "lib"))
import tykky36probe
print(tykky36probe.__file__)
"""


@pytest.fixture(scope="session")
def env36(python36):  # type: ignore[no-untyped-def]
    """What makes tykky.pyz run on Python 3.6 (its preamble would pick the newest python3.X)."""
    return {"TYKKY_PYTHON": python36}


def run36(who, pyz, env36, home, *command, check: bool = True, env=None):  # type: ignore[no-untyped-def]
    return who.run([pyz, *command], env={**env36, **(env or {})}, cwd=home, check=check)


@pytest.fixture(scope="session")
def pip36(who, pyz, user_dirs, env36):  # type: ignore[no-untyped-def]
    """A pip installation built by the tool on Python 3.6, once per user."""
    home = user_dirs[who.name]
    prefix = home / "py36-pip"
    if not prefix.exists():
        inputs = make_owned_dir(home / "py36-inputs", who)
        requirements = owned_file(inputs / "requirements.txt", "iniconfig==2.0.0\n", who)
        run36(who, pyz, env36, home, "pip-containerize", "new", "--prefix", str(prefix), str(requirements))
    return prefix


def test_info_runs_on_python_3_6(who, pyz, env36, python36, user_dirs):
    out = run36(who, pyz, env36, user_dirs[who.name], "info").stdout.decode()
    assert re.search(rf"^python: +{re.escape(python36)} \(3\.6\.\d+\)$", out, re.MULTILINE), out
    assert "python chosen by: TYKKY_PYTHON" in out


def test_pip_installation_built_on_python_3_6_runs(pip36, who):
    lines = who.run([pip36 / "bin" / "python", "-c", PROGRAM]).stdout.decode().split()
    assert lines[0] == str(pip36)
    assert "/site-packages/iniconfig/" in lines[1]


def test_update_and_compact_on_python_3_6(pip36, who, pyz, env36, user_dirs):
    home = user_dirs[who.name]
    more = owned_file(home / "py36-inputs" / "more.txt", "tomli==2.0.1\n", who)
    run36(who, pyz, env36, home, "pip-containerize", "update", str(pip36), "-r", str(more))
    check = "import sys, iniconfig, tomli; print(sys.prefix)"
    assert who.run([pip36 / "bin" / "python", "-c", check]).stdout.decode().strip() == str(pip36)
    run36(who, pyz, env36, home, "compact", str(pip36))
    assert who.run([pip36 / "bin" / "python", "-c", check]).stdout.decode().strip() == str(pip36)


def test_warm_status_and_stop_on_python_3_6(pip36, who, pyz, env36, user_dirs):
    home = user_dirs[who.name]

    def instances() -> int:
        return run36(who, pyz, env36, home, "warm", "status", str(pip36)).stdout.decode().count(str(pip36))

    who.run([pip36 / "bin" / "python", "-c", "pass"])  # cold; starts the instance in the background
    assert wait_for(lambda: instances() == 1)
    run36(who, pyz, env36, home, "warm", "stop", "--force", str(pip36))
    assert instances() == 0


def test_wrap_container_on_python_3_6(who, pyz, env36, user_dirs):
    home = user_dirs[who.name]
    prefix = home / "py36-wc"
    run36(who, pyz, env36, home, "wrap-container", "-w", "/usr/bin/python3", "--prefix", str(prefix), BASE_IMAGE)
    program = "import os, sys; print(sys.prefix, os.path.isdir('/.singularity.d'))"
    assert who.run([prefix / "bin" / "python3", "-c", program]).stdout.decode().split() == [str(prefix), "True"]


def test_wrap_install_on_python_3_6(who, pyz, env36, user_dirs):
    """The pre-install commands write into the tree that the copy then merges into."""
    home = user_dirs[who.name]
    tree, prefix = home / "py36-tree", home / "py36-wi"
    (tree / "lib" / "tykky36probe").mkdir(parents=True, exist_ok=True)
    (tree / "lib" / "tykky36probe" / "__init__.py").write_text("")
    (tree / "bin").mkdir(exist_ok=True)
    (tree / "bin" / "probe").write_text(PROBE)
    (tree / "bin" / "show-pre").write_text('#!/bin/sh\ncat "$(dirname "$0")/../lib/pre.txt"\n')
    for script in ("probe", "show-pre"):
        (tree / "bin" / script).chmod(0o755)
    subprocess.run(["chown", "-R", f"{who.uid}:{who.gid}", tree], check=True)
    pre = owned_file(home / "py36-inputs-pre.sh", 'mkdir -p "$TYKKY_INSTALLATION_PATH/lib"\n'
                     'echo "written before the copy" > "$TYKKY_INSTALLATION_PATH/lib/pre.txt"\n', who)
    run36(who, pyz, env36, home, "wrap-install", "-w", "bin", "--pre-install", str(pre), "--prefix", str(prefix),
          str(tree))
    assert who.run([prefix / "bin" / "probe"]).stdout.decode().strip() == "/TYKKY/bin/../lib/tykky36probe/__init__.py"
    assert who.run([prefix / "bin" / "show-pre"]).stdout.decode() == "written before the copy\n"


def test_setup_and_activate_on_python_3_6(who, pyz, env36, python36, pip36, user_dirs):
    home = user_dirs[who.name]
    directory = home / "py36 site"
    env = {**env36, "CW_GLOBAL_YAML": "", "TYKKY_CACHE_DIR": str(home / "py36-cache")}
    run36(who, pyz, env36, home, "setup", "--config", "debian-test", "--dir", str(directory), env=env)
    profile = shlex.quote(str(directory / "etc" / "profile.d" / "tykky.sh"))
    script = (f". {profile}; tykky info | grep '^python:'; tykky activate {shlex.quote(str(pip36))} || exit 9; "
              f'python -c "{PROGRAM}" | head -n 1; tykky deactivate; command -v python3')
    lines = who.run(["bash", "--noprofile", "--norc", "-c", script], env=env, cwd=home).stdout.decode().splitlines()
    assert lines[0].startswith(f"python:           {python36} (3.6.")
    assert lines[1] == str(pip36)
    assert not lines[2].startswith(str(pip36))


def test_conda_on_python_3_6_runs_its_solver_with_a_newer_python(who, pyz, env36, user_dirs, conda_channel):
    home = user_dirs[who.name]
    inputs = make_owned_dir(home / "py36-conda-inputs", who)
    env_file = owned_file(inputs / "environment.yml", environment_yml(conda_channel, ["tykky-hello"]), who)
    prefix = home / "py36-conda"
    completed = run36(who, pyz, env36, home, "conda-containerize", "new", "--prefix", str(prefix), str(env_file))
    found = re.search(r"The conda solver runs with (\S+) \(it needs Python >= 3.10, tykky runs on 3\.6\.\d+\)",
                      completed.stderr.decode())
    assert found, completed.stderr.decode()
    version = who.run([found.group(1), "-c", "import sys; print(sys.version_info >= (3, 10))"]).stdout
    assert version.decode().strip() == "True"
    assert who.run([prefix / "bin" / "tykky-hello"]).stdout.decode() == "hello from libtykkyhello (0 arguments)\n"


def test_conda_with_a_too_old_solver_python_says_what_to_set(who, pyz, env36, python36, user_dirs, conda_channel):
    home = user_dirs[who.name]
    inputs = make_owned_dir(home / "py36-conda-inputs", who)
    env_file = owned_file(inputs / "environment.yml", environment_yml(conda_channel, ["tykky-hello"]), who)
    advanced = owned_file(inputs / "advanced.yaml", f"installation_prefix: {home / 'py36-conda-old'}\n"
                          f"env_file: {env_file}\nrattler_python: {python36}\n", who)
    completed = run36(who, pyz, env36, home, "conda-containerize", "advanced", str(advanced), check=False)
    stderr = completed.stderr.decode()
    assert completed.returncode != 0 and "Traceback" not in stderr
    assert f"rattler_python is {python36}, which is not a Python >= 3.10" in stderr
    assert not (home / "py36-conda-old").exists()
