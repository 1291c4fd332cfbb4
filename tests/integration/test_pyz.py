"""The built tykky.pyz as users get it: reproducible, runs from anywhere under any name, finds its
own Python, ignores the caller's Python settings, extracts once per user (also when many start at
once) and never into the current directory."""
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.helpers import REPO


def cache_entries(cache: Path) -> list:
    return sorted(p.name for p in cache.iterdir()) if cache.exists() else []


def source_snapshot(target: Path) -> Path:
    """The checkout's files as they are now, so that both builds see the same inputs."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, check=True,
                            capture_output=True, text=True).stdout.splitlines()
    for name in listed:
        if (REPO / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, target / name)
    return target


def test_build_is_reproducible(tmp_path):
    source = source_snapshot(tmp_path / "source")
    outputs = [tmp_path / "first.pyz", tmp_path / "second.pyz"]
    for output in outputs:
        subprocess.run([sys.executable, str(source / "build_zipapp.py"), "-o", str(output)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert outputs[0].read_bytes() == outputs[1].read_bytes()


def test_archive_is_an_sh_preamble_and_our_bootstrap(pyz):
    assert pyz.read_bytes().startswith(b"#!/bin/sh\n")
    with zipfile.ZipFile(pyz) as archive:
        names = archive.namelist()
        build_id = json.loads(archive.read("environment.json"))["build_id"]
        main = archive.read("__main__.py").decode()
    assert not any(name.startswith("_bootstrap/") for name in names)
    assert "site-packages/tykky/cli.py" in names and "site-packages/tykky_shell/tykky.sh" in names
    assert f'BUILD_ID = "{build_id}"' in main and "MINIMUM = (3, 6)" in main


def test_runs_from_any_path_under_any_name(pyz, tmp_path):
    elsewhere = tmp_path / "some dir" / "my tool"
    elsewhere.parent.mkdir()
    shutil.copy(pyz, elsewhere)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "TYKKY_CACHE_DIR": str(tmp_path / "cache")}
    completed = subprocess.run([str(elsewhere), "--version"], env=env, capture_output=True, text=True, check=True)
    assert completed.stdout.strip() == "tykky 0.1.0"
    command = tmp_path / "wrap-install"
    command.symlink_to(elsewhere)
    completed = subprocess.run([str(command), "--help"], env=env, capture_output=True, text=True, check=True)
    assert completed.stdout.startswith("usage: wrap-install [-h]")


def test_python_can_run_it_directly(pyz, tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "TYKKY_CACHE_DIR": str(tmp_path / "cache")}
    completed = subprocess.run(["/usr/bin/python3", str(pyz), "--version"], env=env, capture_output=True,
                               text=True, check=True)
    assert completed.stdout.strip() == "tykky 0.1.0"


def broken_python_path(root: Path) -> Path:
    """Packages that shadow tykky's own dependencies and fail on import."""
    for name in ("argparse", "yaml", "tykky"):
        package = root / name
        package.mkdir(parents=True)
        (package / "__init__.py").write_text(f"raise ImportError('the broken {name} from PYTHONPATH')\n")
    return root


def test_callers_python_settings_do_not_reach_it(pyz, tmp_path):
    broken = broken_python_path(tmp_path / "broken")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "TYKKY_CACHE_DIR": str(tmp_path / "cache"),
           "PYTHONPATH": str(broken), "PYTHONHOME": "/nonexistent", "PYTHONSTARTUP": str(broken / "x.py")}
    completed = subprocess.run([str(pyz), "info"], env=env, capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr
    assert "python chosen by: the newest suitable python3 on PATH and in /usr/bin" in completed.stdout


def test_many_first_starts_at_once_extract_once(pyz, tmp_path):
    cache = tmp_path / "cache"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "TYKKY_CACHE_DIR": str(cache)}
    processes = [subprocess.Popen([str(pyz), "--version"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for _ in range(8)]
    results = [process.communicate() + (process.returncode,) for process in processes]
    assert all(code == 0 and out.strip() == b"tykky 0.1.0" for out, _err, code in results), results
    entries = cache_entries(cache)
    extractions = [name for name in entries if not name.endswith(".lock")]
    assert len(extractions) == 1 and extractions[0].startswith("tykky-"), entries
    assert (cache / extractions[0] / "site-packages" / "tykky" / "cli.py").is_file()


def test_cache_never_goes_to_the_current_directory(pyz, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    home = tmp_path / "home"
    for relative_home in (".", "relative"):
        env = {"PATH": "/usr/bin:/bin", "HOME": relative_home, "XDG_CACHE_HOME": "cache",
               "TYKKY_CACHE_DIR": "cache"}
        completed = subprocess.run([str(pyz), "--version"], env=env, cwd=work, capture_output=True, text=True)
        assert completed.returncode == 0, completed.stderr
        assert list(work.iterdir()) == []
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home)}
    subprocess.run([str(pyz), "--version"], env=env, cwd=work, check=True, capture_output=True)
    assert list(work.iterdir()) == []
    assert cache_entries(home / ".cache" / "tykky")  # the default: ~/.cache/tykky


def test_non_root_user_extracts_into_its_own_cache(pyz, test_user, user_dirs):
    cache = user_dirs[test_user.name] / "pyz-cache"
    completed = test_user.run([pyz, "info"], env={"TYKKY_CACHE_DIR": str(cache), "CW_GLOBAL_YAML": ""})
    assert b"tykky:" in completed.stdout and b"site config:" in completed.stdout
    extractions = [p for p in cache.iterdir() if p.name.startswith("tykky-") and p.is_dir()]
    assert len(extractions) == 1
    assert extractions[0].stat().st_uid == test_user.uid
    assert (extractions[0].stat().st_mode & 0o077) == 0  # private to the user
    default = Path(test_user.home) / ".cache" / "tykky"
    test_user.run([pyz, "--version"])
    assert default.is_dir() and default.stat().st_uid == test_user.uid


def pyenv_python(version: str) -> Path:
    """An interpreter of another version, where this machine has one (pyenv builds)."""
    found = sorted(Path("/root/.pyenv/versions").glob(f"{version}.*/bin/python{version}"))
    if not found:
        pytest.skip(f"no Python {version} on this machine")
    return found[-1]


def test_one_archive_for_every_python_carries_no_compiled_module(pyz):
    with zipfile.ZipFile(pyz) as archive:
        names = archive.namelist()
    assert [name for name in names if name.endswith(".so")] == []
    assert "site-packages/yaml/__init__.py" in names
    # The backport is on sys.path only where the standard library lacks the module.
    assert "site-packages/backports-py36/dataclasses.py" in names and "site-packages/dataclasses.py" not in names


@pytest.mark.parametrize("version", ["3.6", "3.8", "3.11", "3.13"])
def test_every_supported_python_runs_it(pyz, tmp_path, version):
    python = pyenv_python(version)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "TYKKY_PYTHON": str(python)}
    completed = subprocess.run([str(pyz), "info"], env=env, capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr
    assert f"python:           {python} ({version}." in completed.stdout
    assert "site config:" in completed.stdout  # read with PyYAML, into the Config dataclass


def test_too_old_python_is_refused_with_advice(pyz, tmp_path):
    python = pyenv_python("2.7")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "TYKKY_PYTHON": str(python)}
    completed = subprocess.run([str(pyz), "--version"], env=env, capture_output=True, text=True)
    assert completed.returncode == 1
    assert completed.stderr.strip() == (f"tykky: {python} is Python 2.7, too old: tykky needs Python 3.6 or "
                                        "newer. Set TYKKY_PYTHON to a newer python3 (or load a newer Python "
                                        "module) and run it again.")
