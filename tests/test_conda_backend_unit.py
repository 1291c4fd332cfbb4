"""Where the conda solver comes from and how its worker is run, with the runner seam faked."""
import json
import sys
from pathlib import Path

import pytest

from tests.fake_runner import fake_runner
from tykky import conda_backend, runner
from tykky.conda_backend import Backend, SolverFailure
from tykky.config import Config
from tykky.container_exec import BuildContainer
from tykky.errors import TykkyError
from tykky.runtime import Runtime


def test_the_cache_is_the_configured_directory_else_the_users_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert conda_backend.cache_directory(Config(rattler_path="~/site")) == tmp_path / "site"
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    version = conda_backend.RATTLER_VERSION
    assert conda_backend.cache_directory(Config()) == tmp_path / ".cache" / "tykky" / f"py-rattler-{version}"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert conda_backend.cache_directory(Config()) == tmp_path / "xdg" / "tykky" / f"py-rattler-{version}"


@pytest.mark.parametrize(("returncode", "output", "version"), [
    (0, "3.11\n", (3, 11)), (0, "a warning\n3.12\n", (3, 12)), (1, "3.11\n", None), (0, "", None), (0, "x\n", None),
])
def test_a_pythons_version_is_its_last_line_of_output(monkeypatch, returncode, output, version):
    fake = fake_runner(monkeypatch, returncode=returncode, output=output)
    assert conda_backend._version_of("/opt/py/bin/python3") == version
    assert fake.argvs[0][:2] == ["/opt/py/bin/python3", "-c"]


def test_a_configured_solver_python_of_a_good_version_is_used(monkeypatch):
    fake_runner(monkeypatch, output="3.10\n")
    assert conda_backend.solver_python(Config(rattler_python="/opt/py/bin/python3")) == "/opt/py/bin/python3"
    fake_runner(monkeypatch, returncode=127)
    with pytest.raises(TykkyError, match="rattler_python is /opt/py/bin/python3, which is not a Python >= 3.10"):
        conda_backend.solver_python(Config(rattler_python="/opt/py/bin/python3"))


@pytest.mark.skipif(sys.version_info < (3, 10), reason="the running Python is the solver's only from 3.10")
def test_without_a_setting_the_running_python_is_the_solvers(monkeypatch):
    fake = fake_runner(monkeypatch)
    assert conda_backend.solver_python(Config()) == sys.executable and fake.calls == []


def target_of(argv) -> Path:  # type: ignore[no-untyped-def]
    return Path(argv[argv.index("--target") + 1])


def make_rattler(directory: Path) -> None:
    (directory / "rattler").mkdir(parents=True)
    (directory / "rattler" / "__init__.py").write_text("")


def test_py_rattler_is_installed_beside_and_renamed_into_place(monkeypatch, tmp_path):
    fake = fake_runner(monkeypatch, effect=lambda argv: make_rattler(target_of(argv)))
    site = tmp_path / "cache" / "py-rattler"
    conda_backend.install_rattler("/opt/py/bin/python3", site)
    (argv,) = fake.argvs
    assert argv[:4] == ["/opt/py/bin/python3", "-m", "pip", "install"]
    assert argv[-1] == f"py-rattler=={conda_backend.RATTLER_VERSION}" and "--only-binary=:all:" in argv
    assert target_of(argv).parent == site.parent and target_of(argv) != site
    assert conda_backend.has_rattler(site) and sorted(p.name for p in site.parent.iterdir()) == ["py-rattler"]


def test_a_py_rattler_placed_first_by_another_build_is_kept(monkeypatch, tmp_path):
    site = tmp_path / "py-rattler"
    make_rattler(site)
    fake_runner(monkeypatch, effect=lambda argv: make_rattler(target_of(argv)))
    conda_backend.install_rattler("/opt/py/bin/python3", site)
    assert conda_backend.has_rattler(site) and [p.name for p in tmp_path.iterdir()] == ["py-rattler"]


def test_a_failed_install_says_how_to_install_it_by_hand(monkeypatch, tmp_path):
    def fail(argv, **_kwargs):  # type: ignore[no-untyped-def]
        make_rattler(target_of(argv))  # half installed
        raise TykkyError("pip failed", details="    ERROR: No matching distribution")

    monkeypatch.setattr(runner, "run", fail)
    site = tmp_path / "py-rattler"
    with pytest.raises(TykkyError, match=r"Install it yourself with `/py -m pip install --target .*rattler") as error:
        conda_backend.install_rattler("/py", site)
    assert error.value.details == "    ERROR: No matching distribution"
    assert list(tmp_path.iterdir()) == []


def test_an_unwritable_cache_says_to_set_rattler_path(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(TykkyError, match="Set rattler_path"):
        conda_backend.install_rattler("/py", tmp_path / "file" / "sub" / "py-rattler")


@pytest.mark.parametrize(("python", "site", "binds"), [
    ("/usr/bin/python3", "/s", ["/s"]), ("/opt/py/bin/python3", "/s", ["/opt/py", "/s"]),
    ("/opt/py/bin/python3", "", ["/opt/py"]),
])
def test_an_isolated_container_gets_the_workers_python_and_site(python, site, binds):
    assert conda_backend._backend_binds(Backend(python=python, site=site)) == binds


def answer(response: dict):  # type: ignore[no-untyped-def,type-arg]
    def write(argv):  # type: ignore[no-untyped-def]
        Path(argv[-1]).write_text(json.dumps(response))
    return write


def test_the_worker_gets_the_request_and_its_answer_is_returned(monkeypatch, tmp_path):
    fake = fake_runner(monkeypatch, effect=answer({"ok": True, "installed": 3}))
    backend = Backend(python="/opt/py/bin/python3", site="/s")
    assert conda_backend.run_worker(backend, {"specs": ["numpy"]}, tmp_path / "w") == {"ok": True, "installed": 3}
    (argv,) = fake.argvs
    assert argv == ["/opt/py/bin/python3", "-I", str(tmp_path / "w" / "conda_worker.py"),
                    str(tmp_path / "w" / "request.json"), str(tmp_path / "w" / "response.json")]
    assert json.loads((tmp_path / "w" / "request.json").read_text()) == {"specs": ["numpy"], "rattler_path": "/s"}
    assert (tmp_path / "w" / "conda_worker.py").read_text() == conda_backend.worker_source()


def test_a_stale_answer_is_not_taken_for_the_workers(monkeypatch, tmp_path):
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "response.json").write_text('{"ok": true}')
    fake_runner(monkeypatch, returncode=1, output="Killed\n")
    with pytest.raises(TykkyError, match=r"ended without an answer \(exit code 1\)") as error:
        conda_backend.run_worker(Backend(python="/py", site=""), {}, tmp_path / "w")
    assert "Killed" in error.value.details


def test_the_workers_own_failure_names_its_step(monkeypatch, tmp_path):
    fake_runner(monkeypatch, effect=answer({"ok": False, "kind": "solve", "message": "nothing provides x\n"}))
    with pytest.raises(SolverFailure, match=r"failed \(solve\)") as error:
        conda_backend.run_worker(Backend(python="/py", site=""), {}, tmp_path / "w")
    assert error.value.kind == "solve" and error.value.details == "    nothing provides x"


@pytest.mark.parametrize(("isolate", "bound"), [(True, True), (False, False)])
def test_in_a_container_the_worker_runs_inside_with_its_python_bound_when_isolated(monkeypatch, tmp_path,
                                                                                    isolate, bound):
    fake = fake_runner(monkeypatch, effect=answer({"ok": True}))
    container = BuildContainer(Runtime("apptainer", "/usr/bin/apptainer", (1, 4, 5)), tmp_path / "c.sif",
                               Config(isolate=isolate), None, tmp_path)
    conda_backend.run_worker(Backend(python="/opt/py/bin/python3", site="/s"), {}, tmp_path / "w", container)
    (argv,) = fake.argvs
    assert argv[:3] == ["/usr/bin/apptainer", "-q", "exec"]
    assert argv[-5:] == ["/opt/py/bin/python3", "-I", str(tmp_path / "w" / "conda_worker.py"),
                         str(tmp_path / "w" / "request.json"), str(tmp_path / "w" / "response.json")]
    binds = argv[argv.index("--bind") + 1].split(",")
    assert ("/opt/py" in binds and "/s" in binds) is bound
