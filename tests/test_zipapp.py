"""tykky.pyz's sh preamble (interpreter choice) and its __main__ (the per-user extraction cache).

The preamble runs for real under sh, with fake interpreters that print how they were called;
the system directory it searches is replaced by a temporary one.
"""
import importlib.util
import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers import REPO, TEST_USER, user_named

SYSTEM_DIRS_LINE = "_tykky_system_dirs=/usr/bin\n"


def load_build_script():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("build_zipapp", REPO / "build_zipapp.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_main():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("tykky_zipapp_main", REPO / "zipapp" / "main.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_python(path: Path, version_ok: bool = True) -> Path:
    """Prints how it was started; as an unversioned python3, answers the version check."""
    path.parent.mkdir(parents=True, exist_ok=True)
    check = f"case $* in *version_info*) exit {0 if version_ok else 1} ;; esac\n"
    path.write_text(f"#!/bin/sh\n{check}echo \"ran $0 with $*\"\n")
    path.chmod(0o755)
    return path


@pytest.fixture()
def preamble(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Writes the preamble (pinned to `pinned`) with `system` as its system directory."""
    system = tmp_path / "system"
    system.mkdir()

    def write(pinned: str = "") -> Path:
        text = load_build_script().preamble(pinned).decode()
        assert SYSTEM_DIRS_LINE in text
        script = tmp_path / "tykky.pyz"
        script.write_text(text.replace(SYSTEM_DIRS_LINE, f"_tykky_system_dirs={system}\n"))
        script.chmod(0o755)
        return script

    write.system = system  # type: ignore[attr-defined]
    return write


def run(script: Path, path: str, cwd: Path, shell: str = "", **extra: str) -> subprocess.CompletedProcess:
    env = {"PATH": path, "HOME": str(cwd), **extra}
    argv = ([shell] if shell else []) + [str(script), "info", "a b"]
    return subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True)


@pytest.mark.parametrize("shell", ["", "/bin/dash", "/bin/bash"])  # "": the kernel reads #!/bin/sh
def test_picks_the_newest_python3_x_and_runs_itself_isolated(preamble, tmp_path, shell):
    script = preamble()
    fake_python(tmp_path / "a" / "python3.9")
    newest = fake_python(tmp_path / "b" / "python3.12")
    fake_python(tmp_path / "b" / "python3.12-config")
    completed = run(script, f"{tmp_path / 'a'}:{tmp_path / 'b'}", tmp_path, shell=shell)
    assert completed.stdout.strip() == f"ran {newest} with -E -s -S {script} info a b"


def test_the_system_directory_is_searched_too(preamble, tmp_path):
    script = preamble()
    fake_python(tmp_path / "a" / "python3.9")
    system = fake_python(preamble.system / "python3.11")
    assert run(script, str(tmp_path / "a"), tmp_path).stdout.startswith(f"ran {system} ")


def test_shims_and_relative_path_entries_are_never_used(preamble, tmp_path):
    script = preamble()
    fake_python(tmp_path / ".pyenv" / "shims" / "python3.13")
    fake_python(tmp_path / "relative" / "python3.14")
    real = fake_python(tmp_path / "real" / "python3.10")
    completed = run(script, f"{tmp_path / '.pyenv' / 'shims'}:relative::{tmp_path / 'real'}", tmp_path)
    assert completed.stdout.startswith(f"ran {real} ")


def test_pinned_interpreter_wins_when_it_exists(preamble, tmp_path):
    pinned = fake_python(tmp_path / "pinned" / "python3")
    fake_python(tmp_path / "a" / "python3.12")
    completed = run(preamble(str(pinned)), str(tmp_path / "a"), tmp_path)
    assert completed.stdout.startswith(f"ran {pinned} ")


def test_missing_pinned_interpreter_falls_back_to_tykky_python(preamble, tmp_path):
    chosen = fake_python(tmp_path / "mine" / "python3.8")
    fake_python(tmp_path / "a" / "python3.12")
    completed = run(preamble(str(tmp_path / "gone" / "python3")), str(tmp_path / "a"), tmp_path,
                    TYKKY_PYTHON=str(chosen))
    assert completed.stdout.startswith(f"ran {chosen} ")


def test_tykky_python_that_is_not_executable_is_reported(preamble, tmp_path):
    completed = run(preamble(), str(tmp_path), tmp_path, TYKKY_PYTHON=str(tmp_path / "nope"))
    assert completed.returncode == 1
    assert f"TYKKY_PYTHON={tmp_path / 'nope'} is not an executable file" in completed.stderr


def test_unversioned_python3_is_used_when_it_is_recent_enough(preamble, tmp_path):
    python3 = fake_python(tmp_path / "a" / "python3", version_ok=True)
    assert run(preamble(), str(tmp_path / "a"), tmp_path).stdout.startswith(f"ran {python3} ")


def test_no_suitable_python_gives_one_message_naming_what_was_found(preamble, tmp_path):
    fake_python(tmp_path / "a" / "python3.5")
    fake_python(tmp_path / "a" / "python3", version_ok=False)
    completed = run(preamble(), str(tmp_path / "a"), tmp_path)
    assert completed.returncode == 1
    assert completed.stdout == ""
    message = completed.stderr.strip()
    assert message.count("\n") == 0
    assert "no Python 3.6 or newer" in message
    assert str(tmp_path / "a" / "python3.5") in message and str(tmp_path / "a" / "python3") in message
    assert "TYKKY_PYTHON" in message


def test_build_refuses_a_pinned_path_that_breaks_the_preamble():
    build = load_build_script()
    for bad in ("python3", "/opt/it's/python3"):
        with pytest.raises(SystemExit):
            build.preamble(bad)


def test_minimum_python_comes_from_pyproject():
    assert load_build_script().minimum_python() == (3, 6)
    assert load_main().MINIMUM == (3, 6)


def test_too_old_python_is_told_what_to_do(monkeypatch, capsys):
    main = load_main()
    monkeypatch.setattr(main, "MINIMUM", (3, 99))
    with pytest.raises(SystemExit) as exit_info:
        main.check_python()
    assert exit_info.value.code == 1
    assert "too old: tykky needs Python 3.99 or newer. Set TYKKY_PYTHON" in capsys.readouterr().err


@pytest.mark.parametrize("home", ["", ".", "relative/home", "/"])
def test_cache_is_never_relative_to_the_current_directory(monkeypatch, home):
    main = load_main()
    monkeypatch.setenv("HOME", home)
    monkeypatch.setenv("TYKKY_CACHE_DIR", "cache")
    monkeypatch.setenv("XDG_CACHE_HOME", "")
    roots = main.cache_roots()
    assert roots and all(os.path.isabs(root) for root in roots)
    assert roots[-1] == f"/tmp/tykky-{os.getuid()}"


def test_cache_location_follows_tykky_cache_dir_then_xdg(monkeypatch):
    main = load_main()
    monkeypatch.setenv("TYKKY_CACHE_DIR", "/c/mine")
    monkeypatch.setenv("XDG_CACHE_HOME", "/x")
    monkeypatch.setenv("HOME", "/h")
    assert main.cache_roots()[:3] == ["/c/mine", "/x/tykky", "/h/.cache/tykky"]


def test_shared_fallback_refuses_a_directory_of_another_user(tmp_path):
    if os.getuid() != 0:
        pytest.skip("needs root to plant a directory owned by another user")
    main = load_main()
    planted = tmp_path / "tykky-0"
    planted.mkdir(mode=0o700)
    os.chown(planted, user_named(TEST_USER).uid, -1)
    with pytest.raises(OSError, match="not a writable private directory"):
        main.usable_directory(str(planted), shared_parent=True)
    mine = tmp_path / "mine"
    assert main.usable_directory(str(mine), shared_parent=True) == str(mine)
    assert (mine.stat().st_mode & 0o777) == 0o700


def age(path: Path, days: float) -> None:
    stamp = time.time() - days * 86400
    os.utime(path, (stamp, stamp))


def test_prune_removes_only_old_extractions_and_leftovers(tmp_path):
    main = load_main()
    root = tmp_path / "cache"
    for name in ("tykky-current", "tykky-old", "tykky-recent", ".extract-crashed", "someone-else"):
        (root / name / "site-packages").mkdir(parents=True)
    (root / "tykky-old.lock").touch()
    for name, days in (("tykky-current", 30), ("tykky-old", 30), ("tykky-old.lock", 30), ("tykky-recent", 3),
                       (".extract-crashed", 2), ("someone-else", 30)):
        age(root / name, days)
    main.prune(str(root), str(root / "tykky-current"))
    assert sorted(p.name for p in root.iterdir()) == ["someone-else", "tykky-current", "tykky-recent"]


def test_backports_go_where_the_bootstrap_looks_for_them():
    assert load_build_script().BACKPORTS_DIRECTORY == load_main().BACKPORTS_36
