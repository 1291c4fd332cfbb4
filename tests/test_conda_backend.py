"""The conda solver worker with real py-rattler on a small local channel (no container needed)."""
import os
import sys

import pytest

from tests.conda_channel import build_channel, channel_url, package_urls
from tykky import conda_backend
from tykky.conda_backend import Backend, SolverFailure, find_backend, run_worker
from tykky.config import Config
from tykky.errors import TykkyError

PREFIX = "/TYKKY/env1"


@pytest.fixture(scope="module")
def channel(tmp_path_factory):
    return build_channel(tmp_path_factory.mktemp("channel"), with_python=False)


@pytest.fixture
def backend():
    site = conda_backend.importable_rattler()
    assert site, "py-rattler is a test dependency"
    return Backend(python=sys.executable, site=site)


def request(channel, target, specs, **extra):
    values = {"channels": [channel_url(channel)], "channel_alias": "", "specs": specs, "explicit": [],
              "target_prefix": str(target), "alternative_target_prefix": PREFIX,
              "cache_dir": str(target.parent / "pkgs")}
    values.update(extra)
    return values


def test_solves_installs_and_patches_prefix_for_the_container(channel, backend, tmp_path):
    env = tmp_path / "env"
    response = run_worker(backend, request(channel, env, ["tykky-data", "tykky-hello"]), tmp_path / "w")
    names = sorted(p["name"] for p in response["packages"])
    assert names == ["libtykkyhello", "tykky-data", "tykky-hello", "tykky-where"]
    assert sorted(response["new"]) == names
    script = (env / "bin" / "tykky-where").read_text()
    assert f'installed at {PREFIX}"' in script and "placeholder" not in script
    assert (env / "share" / "tykky-where" / "where.txt").read_text() == f"data of {PREFIX}\n"
    assert (env / "lib" / "libtykkyhello.so").is_file()
    again = run_worker(backend, request(channel, env, ["tykky-data", "tykky-hello"]), tmp_path / "w")
    assert again["new"] == []


def test_missing_package_names_package_and_channel(channel, backend, tmp_path):
    with pytest.raises(SolverFailure) as caught:
        run_worker(backend, request(channel, tmp_path / "env", ["tykky-data", "no-such-tykky-package"]),
                   tmp_path / "w")
    assert caught.value.kind == "solve"
    assert "no-such-tykky-package" in caught.value.details
    assert not (tmp_path / "env" / "conda-meta").exists()


def test_missing_local_channel_is_named(channel, backend, tmp_path):
    missing = "file:///nonexistent/tykky-channel"
    with pytest.raises(SolverFailure) as caught:
        run_worker(backend, request(channel, tmp_path / "env", ["tykky-data"],
                                    channels=[channel_url(channel), missing]), tmp_path / "w")
    assert caught.value.kind == "channel"
    assert missing in caught.value.details


def test_unreachable_remote_channel_is_named(channel, backend, tmp_path):
    remote = "http://127.0.0.1:9/tykky-channel"  # loopback port 9: the connection is refused
    with pytest.raises(SolverFailure) as caught:
        run_worker(backend, request(channel, tmp_path / "env", ["tykky-data"], channels=[remote]), tmp_path / "w")
    assert caught.value.kind == "channel"
    assert f"Cannot read the channel {remote}" in caught.value.details


def test_explicit_list_installs_exactly_its_packages(channel, backend, tmp_path):
    urls = package_urls(channel, ["tykky-where", "tykky-data"])
    response = run_worker(backend, request(channel, tmp_path / "env", [], channels=[], explicit=urls),
                          tmp_path / "w")
    assert sorted(p["name"] for p in response["packages"]) == ["tykky-data", "tykky-where"]
    assert sorted(p["url"] for p in response["packages"]) == sorted(urls)


def test_explicit_url_missing_from_the_index(channel, backend, tmp_path):
    url = channel_url(channel) + "/noarch/tykky-gone-1.0-0.tar.bz2"
    with pytest.raises(SolverFailure) as caught:
        run_worker(backend, request(channel, tmp_path / "env", [], channels=[], explicit=[url]), tmp_path / "w")
    assert caught.value.kind == "explicit" and url in caught.value.details


def test_a_worker_that_dies_is_reported(channel, tmp_path):
    with pytest.raises(TykkyError, match="ended without an answer"):
        run_worker(Backend(python="/bin/false", site=""), request(channel, tmp_path / "env", ["x"]), tmp_path / "w")


def test_backend_prefers_a_configured_directory_and_never_reinstalls(tmp_path):
    site = tmp_path / "site"
    (site / "rattler").mkdir(parents=True)
    (site / "rattler" / "__init__.py").write_text("")
    backend = find_backend(Config(rattler_path=str(site)))
    assert backend.site == str(site)
    assert backend.python == sys.executable


def test_bundled_rattler_is_used_as_it_is():
    backend = find_backend(Config())
    assert backend.python == sys.executable
    assert os.path.isfile(os.path.join(backend.site, "rattler", "__init__.py"))


def test_a_too_old_solver_python_is_refused(tmp_path):
    old = tmp_path / "python3.8"
    old.write_text("#!/bin/sh\necho 3.8\n")
    old.chmod(0o755)
    with pytest.raises(TykkyError, match="not a Python >= 3.10"):
        conda_backend.solver_python(Config(rattler_python=str(old)))


def test_channel_names_resolve_through_the_site_channel_alias(channel, backend, tmp_path):
    """channel_alias points names at a mirror: here `tykky-mirror` under a local directory."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "tykky-mirror").symlink_to(channel)
    response = run_worker(backend, request(channel, tmp_path / "env", ["tykky-where"], channels=["tykky-mirror"],
                                           channel_alias=mirror.as_uri()), tmp_path / "w")
    assert [p["name"] for p in response["packages"]] == ["tykky-where"]
    assert response["packages"][0]["url"].startswith(mirror.as_uri() + "/tykky-mirror/")


def fake_python(path, version: str):  # type: ignore[no-untyped-def]
    """Answers the version question (the last line of its output) with `version`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\necho {version}\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def old_running_python(monkeypatch, tmp_path):  # type: ignore[no-untyped-def]
    """tykky running on a Python older than the solver needs (3.6), with a PATH of test directories."""
    monkeypatch.setattr(conda_backend, "running_python_can_solve", lambda: False)
    monkeypatch.setattr(conda_backend, "SYSTEM_DIRECTORIES", [str(tmp_path / "system")])
    return tmp_path


def test_an_old_running_python_finds_the_newest_solver_python_on_path(old_running_python, monkeypatch):
    root = old_running_python
    fake_python(root / "pyenv" / "shims" / "python3.13", "3.13")  # shims are never used
    fake_python(root / "a" / "python3.12", "3.9")  # a name that lies is checked
    fake_python(root / "a" / "python3.10", "3.10")
    chosen = fake_python(root / "b" / "python3.11", "3.11")
    fake_python(root / "system" / "python3.10", "3.10")
    monkeypatch.setenv("PATH", f"{root / 'pyenv' / 'shims'}:relative:{root / 'a'}:{root / 'b'}")
    assert conda_backend.solver_python(Config()) == str(chosen)


def test_the_system_directory_and_an_unversioned_python3_count(old_running_python, monkeypatch):
    root = old_running_python
    fake_python(root / "a" / "python3", "3.6")
    monkeypatch.setenv("PATH", str(root / "a"))
    system = fake_python(root / "system" / "python3", "3.12")
    assert conda_backend.solver_python(Config()) == str(system)


def test_rattler_python_wins_over_the_search(old_running_python, monkeypatch):
    fake_python(old_running_python / "a" / "python3.12", "3.12")
    configured = fake_python(old_running_python / "mine" / "python", "3.10")
    monkeypatch.setenv("PATH", str(old_running_python / "a"))
    assert conda_backend.solver_python(Config(rattler_python=str(configured))) == str(configured)


def test_no_solver_python_says_how_to_get_one(old_running_python, monkeypatch):
    fake_python(old_running_python / "a" / "python3.9", "3.9")
    monkeypatch.setenv("PATH", str(old_running_python / "a"))
    with pytest.raises(TykkyError) as caught:
        conda_backend.solver_python(Config())
    message = str(caught.value)
    assert "needs a Python >= 3.10" in message and "found no python3.10 or newer on PATH" in message
    assert "module load python" in message and "rattler_python" in message


def test_a_bundled_rattler_runs_with_the_solver_python_on_an_old_python(old_running_python, monkeypatch):
    solver = fake_python(old_running_python / "a" / "python3.12", "3.12")
    monkeypatch.setenv("PATH", str(old_running_python / "a"))
    backend = find_backend(Config())
    assert backend == Backend(python=str(solver), site=conda_backend.importable_rattler())
