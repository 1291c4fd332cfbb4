"""conda-containerize new end to end: real conda packages from a local channel, real Apptainer,
pip packages from the package index, as root and as the test user."""
import ast
import os
import subprocess

import pytest

from tests.integration.conda_fixtures import PYPI_SECTION, REQUIREMENT, manifest

pytestmark = pytest.mark.apptainer
ENV = "/TYKKY/env1"


def run(who, prefix, program, *args, env=None):  # type: ignore[no-untyped-def]
    return who.run([prefix / "bin" / program, *args], env=env).stdout.decode()


def test_layout_wrappers_and_history(conda_installation):
    prefix = conda_installation
    for name in ("python", "pip", "tykky-hello", "tykky-where", "list-packages", "_debug_exec", "_debug_shell"):
        assert os.readlink(prefix / "bin" / name) == "../_tykky/launcher", name
    assert os.readlink(prefix / "_bin" / "tykky-hello") == f"{ENV}/bin/tykky-hello"
    history = prefix / "share" / "tykky" / "history" / "0001-new"
    assert sorted(p.name for p in history.iterdir()) == sorted([
        "command.json", "conda-environment.yml", "requirements.txt", "pre-install.sh", "post-install.sh"])
    assert "tykky-pylib" in (history / "conda-environment.yml").read_text()
    assert manifest(prefix)["mode"] == "conda"


def test_program_linked_against_a_library_through_its_rpath(conda_installation, who):
    assert run(who, conda_installation, "tykky-hello", "a", "b c") == "hello from libtykkyhello (2 arguments)\n"


def test_prefix_placeholders_are_patched_for_the_container_path(conda_installation, who):
    assert run(who, conda_installation, "tykky-where") == f"installed at {ENV}\ndata of {ENV}\n"
    program = "import sysconfig; print(sysconfig.get_config_var('prefix')); print(sysconfig.get_paths()['stdlib'])"
    assert run(who, conda_installation, "python", "-c", program).split() == [ENV, f"{ENV}/lib/python3.11"]


def test_activation_is_visible_without_conda_at_launch(conda_installation, who):
    program = ("import os, shutil\nfor name in ('CONDA_PREFIX', 'CONDA_DEFAULT_ENV', 'CONDA_SHLVL', "
               "'CONDA_PROMPT_MODIFIER', 'TYKKY_ACTIVATED', 'TYKKY_ENV_VARIABLE'):\n"
               "    print(name, os.environ.get(name))\nprint('activated-tool', shutil.which('tykky-activated'))")
    lines = run(who, conda_installation, "python", "-c", program).splitlines()
    assert lines == [f"CONDA_PREFIX {ENV}", "CONDA_DEFAULT_ENV env1", "CONDA_SHLVL 1", "CONDA_PROMPT_MODIFIER (env1) ",
                     f"TYKKY_ACTIVATED activated in {ENV}", "TYKKY_ENV_VARIABLE from the env file",
                     f"activated-tool {ENV}/libexec/tykky-activate/tykky-activated"]
    # No conda and no shell in between: the runtime starts the program itself.
    dry = who.run([conda_installation / "bin" / "tykky-hello", "x"], env={"TYKKY_LAUNCHER_DRY_RUN": "1"})
    argv = ast.literal_eval(dry.stdout.decode())["argv"]
    container = str(conda_installation / manifest(conda_installation)["container"])
    assert argv[-3:] == [container, str(conda_installation / "bin" / "tykky-hello"), "x"]


def test_python_packages_from_conda_pip_section_and_requirements(conda_installation, who):
    program = ("import sys, six, iniconfig, tykky_pylib; print(sys.executable); print(sys.prefix); "
               "print(tykky_pylib.GREETING); print(six.__version__, iniconfig.__name__)")
    lines = run(who, conda_installation, "python", "-c", program).splitlines()
    assert lines == [str(conda_installation / "bin" / "python"), str(conda_installation), "tykky_pylib from conda",
                     "1.16.0 iniconfig"]
    assert run(who, conda_installation, "pip", "--version").startswith("pip 22.3.1 from ")


def test_list_packages_names_conda_and_pip_packages(conda_installation, who):
    rows = {line.split()[0]: line.split()[1:] for line in run(who, conda_installation, "list-packages").splitlines()
            if line and not line.startswith("#")}
    for name in ("python", "pip", "tykky-hello", "libtykkyhello", "tykky-where", "tykky-data", "tykky-pylib"):
        assert name in rows, name
    assert rows["python"][0] == "3.11.2"
    assert rows["six"] == ["1.16.0", "pypi_0", "pypi"]
    assert rows[REQUIREMENT.split("==")[0]][-1] == "pypi"


def test_install_scripts_ran_inside_the_container(conda_installation, who):
    program = "import sys; [print(open(p).read().strip()) for p in sys.argv[1:]]"
    output = run(who, conda_installation, "python", "-c", program, "/TYKKY/extra/pre.txt",
                 f"{ENV}/share/tykky-postlink.txt", f"{ENV}/post-install.txt")
    assert output.splitlines() == [
        f"pre-install ran, env_root={ENV}/",
        f"post-link of tykky-postlink ran in {ENV}",
        f"post-install: CONDA_PREFIX={ENV} TYKKY_ACTIVATED=activated in {ENV} python={ENV}/bin/python"]


def test_venv_on_top_uses_the_venv_not_the_conda_activation(conda_installation, who, user_dirs):
    venv = user_dirs[who.name] / "conda-venv-on-top"
    who.run([conda_installation / "bin" / "python", "-m", "venv", venv])
    assert os.readlink(venv / "bin" / "python") == str(conda_installation / "bin" / "python")
    who.run([venv / "bin" / "pip", "install", "--no-deps", "--disable-pip-version-check", "tomli==2.0.1"],
            cwd=user_dirs[who.name])
    program = ("import os, sys, tomli; print(sys.executable); print(tomli.__file__.startswith(sys.prefix)); "
               "print(os.environ.get('CONDA_PREFIX'), os.environ.get('VIRTUAL_ENV'))")
    lines = run(who, venv, "python", "-c", program).splitlines()
    assert lines == [str(venv / "bin" / "python"), "True", f"None {venv}"]
    forced = run(who, venv, "python", "-c", "import os; print(os.environ.get('CONDA_PREFIX'))",
                 env={"CW_FORCE_CONDA_ACTIVATE": "1"})
    assert forced.strip() == ENV
    off = run(who, conda_installation, "python", "-c", "import os; print(os.environ.get('CONDA_PREFIX'))",
              env={"CW_NO_CONDA_ACTIVATE": "1"})
    assert off.strip() == "None"


def test_image_is_not_writable_by_group_or_others(conda_installation):
    listing = subprocess.run(["unsquashfs", "-lls", str(conda_installation / "img.sqfs")], check=True,
                             stdout=subprocess.PIPE).stdout.decode().splitlines()
    modes = [line.split()[0] for line in listing if line[:1] in "-d"]
    assert len(modes) > 500
    assert all(mode[7] == "r" and mode[5] == "-" and mode[8] == "-" for mode in modes)


def test_pip_section_is_recorded_with_the_env_file(conda_installation):
    text = (conda_installation / "share" / "tykky" / "history" / "0001-new" / "conda-environment.yml").read_text()
    assert PYPI_SECTION in text


def test_uv_is_on_path_for_post_install_with_uv(who, pyz, user_dirs, conda_channel):
    from tests.integration.conda_fixtures import build, environment_yml, write_owned

    home = user_dirs[who.name]
    post = write_owned(home / "conda-uv-post.sh", 'uv pip install --python "$CONDA_PREFIX/bin/python" '
                       'iniconfig==2.0.0\n', who)
    build(who, pyz, home, "conda-uv", environment_yml(conda_channel, ["python"]), "--uv", "--post-install", str(post))
    completed = who.run([home / "conda-uv" / "bin" / "python", "-c", "import iniconfig, sys; print(sys.prefix)"])
    assert completed.stdout.decode().strip() == str(home / "conda-uv")
