"""conda mode's build steps with the solver and the container faked: what runs, in which order,
and what is kept in the image, for a new build, an unchanged update and an update over layers."""
import json
from pathlib import Path

import pytest

from tests.fake_runner import fake_runner
from tykky import conda_backend
from tykky.conda_backend import Backend, SolverFailure
from tykky.conda_env_file import parse_env_text
from tykky.config import Config
from tykky.container_exec import BuildContainer
from tykky.errors import NeedsRebuild, TykkyError
from tykky.modes.conda import CondaMode, CondaState
from tykky.runtime import Runtime

CONFIG = Config(default_channels=("site-forge",))
ENV_FILE = parse_env_text("env.yml", "channels: [file:///c]\ndependencies:\n  - python\n  - numpy\n")


class FakeSolver:
    """run_worker's stand-in: installs one record per spec into the target and answers."""

    def __init__(self, monkeypatch, tmp_path: Path, failure: str = "") -> None:  # type: ignore[no-untyped-def]
        self.tmp_path = tmp_path
        self.requests: list = []
        self.containers: list = []
        self.failure = failure
        monkeypatch.setattr(conda_backend, "find_backend", lambda config: Backend(python="/py", site="/s"))
        monkeypatch.setattr(conda_backend, "run_worker", self)

    def __call__(self, backend, request, workdir, container=None):  # type: ignore[no-untyped-def]
        self.requests.append(request)
        self.containers.append(container)
        if self.failure:
            raise SolverFailure(self.failure, "nothing provides numpy")
        target = Path(request["target_prefix"])
        if container is None:
            # A host-side install into anything but the build tree would write into the host.
            assert self.tmp_path in target.parents, f"the installer would write into {target} on the host"
            for spec in request["specs"]:
                (target / "conda-meta").mkdir(parents=True, exist_ok=True)
                (target / "conda-meta" / f"{spec}-1-0.json").write_text(json.dumps({"name": spec, "version": "1"}))
            (target / "bin").mkdir(exist_ok=True)
            (target / "bin" / "python").write_text("")
        return {"ok": True, "new": list(request["specs"]), "packages": [{"name": s} for s in request["specs"]]}


def new_container(tmp_path: Path, config: Config = CONFIG) -> BuildContainer:
    (tmp_path / "tree").mkdir()
    (tmp_path / "build" / "inputs").mkdir(parents=True)
    return BuildContainer(Runtime("apptainer", "/usr/bin/apptainer", (1, 4, 5)), tmp_path / "c.sif", config,
                          tmp_path / "tree", tmp_path / "build")


def phases(fake) -> list:  # type: ignore[no-untyped-def]
    """The conda_build.sh phases run in the container, in order."""
    return [argv[-1] for argv in fake.argvs if argv[-2].endswith("conda_build.sh")]


def test_a_new_build_solves_on_the_host_then_runs_the_post_phase_and_keeps_its_state(monkeypatch, tmp_path):
    solver, fake = FakeSolver(monkeypatch, tmp_path), fake_runner(monkeypatch)
    container = new_container(tmp_path)
    filled = CondaMode(ENV_FILE).fill_tree(CONFIG, container)
    (request,) = solver.requests
    assert request["specs"] == ["python", "numpy"] and request["channels"] == ["file:///c"]
    assert request["target_prefix"] == str(tmp_path / "tree" / "env1") and solver.containers == [None]
    assert phases(fake) == ["post"]  # no pre-install commands were staged
    post = fake.calls[-1]["env"]
    assert post["TYKKY_NEW_PACKAGES"] == "python numpy" and post["TYKKY_ENV"] == "/TYKKY/env1"
    assert CondaState.load(tmp_path / "tree") == CondaState(env_name="env1", channels=("file:///c",),
                                                            specs=("python", "numpy"))
    listing = (tmp_path / "tree" / "env1" / "bin" / "list-packages").read_text()
    assert "numpy" in listing and "# packages in environment at /TYKKY/env1:" in listing
    assert filled.python == "/TYKKY/env1/bin/python"


def test_pre_install_commands_run_before_the_solve(monkeypatch, tmp_path):
    order: list = []
    solver = FakeSolver(monkeypatch, tmp_path)

    def solve(*args, **kwargs):  # type: ignore[no-untyped-def]
        order.append("solve")
        return solver(*args, **kwargs)

    monkeypatch.setattr(conda_backend, "run_worker", solve)
    fake = fake_runner(monkeypatch, effect=lambda argv: order.append(argv[-1]))
    container = new_container(tmp_path)
    (tmp_path / "build" / "inputs" / "pre-install.sh").write_text("echo hi\n")
    CondaMode(ENV_FILE).fill_tree(CONFIG, container)
    assert order == ["pre", "solve", "post"]
    assert fake.calls[0]["env"]["TYKKY_PRE_INSTALL"] == str(tmp_path / "build" / "inputs" / "pre-install.sh")


def test_an_update_without_new_specs_keeps_the_environment(monkeypatch, tmp_path):
    solver, fake = FakeSolver(monkeypatch, tmp_path), fake_runner(monkeypatch)
    container = new_container(tmp_path)
    CondaState(env_name="env1", channels=("file:///c",), specs=("python", "numpy")).save(tmp_path / "tree")
    filled = CondaMode(None).fill_tree(CONFIG, container)
    assert solver.requests == [] and phases(fake) == ["post"]
    assert filled.python == ""  # an environment without Python: the prefix reads as no venv
    assert fake.calls[-1]["env"]["TYKKY_NEW_PACKAGES"] == ""


def test_an_update_cannot_rename_the_environment(monkeypatch, tmp_path):
    FakeSolver(monkeypatch, tmp_path), fake_runner(monkeypatch)
    container = new_container(tmp_path, CONFIG.with_values(env_name="other"))
    CondaState(env_name="env1").save(tmp_path / "tree")
    with pytest.raises(TykkyError, match="environment is env1, not other: do not change env_name"):
        CondaMode(ENV_FILE).fill_tree(container.config, container)


def test_a_failed_solve_names_the_file_and_channels(monkeypatch, tmp_path):
    FakeSolver(monkeypatch, tmp_path, failure="solve"), fake_runner(monkeypatch)
    with pytest.raises(TykkyError, match=r"of env.yml cannot be installed from the channels file:///c") as error:
        CondaMode(ENV_FILE).fill_tree(CONFIG, new_container(tmp_path))
    assert error.value.details == "    nothing provides numpy"


def test_an_overlay_that_cannot_remove_directories_makes_the_update_rebuild(monkeypatch, tmp_path):
    FakeSolver(monkeypatch, tmp_path, failure="needs-removals"), fake_runner(monkeypatch)
    with pytest.raises(NeedsRebuild):
        CondaMode(ENV_FILE).fill_tree(CONFIG, new_container(tmp_path))


def test_an_update_over_layers_reads_a_view_and_writes_into_the_writable_layer(monkeypatch, tmp_path):
    build_dir = tmp_path / "build"
    (build_dir / "inputs").mkdir(parents=True)
    upper = build_dir / "overlay" / "upper"
    (upper / "TYKKY").mkdir(parents=True)
    previous = CondaState(env_name="env1", channels=("file:///c",), specs=("python",))

    def container_side(argv):  # type: ignore[no-untyped-def]
        if "export_view" in argv:  # what the layers hold, as the export script copies it out
            view = Path(argv[argv.index("export_view") + 2])
            previous.save(view)
            (view / "env1" / "conda-meta").mkdir(parents=True)
            (view / "env1" / "conda-meta" / "python-1-0.json").write_text('{"name": "python", "version": "1"}')

    solver, fake = FakeSolver(monkeypatch, tmp_path), fake_runner(monkeypatch, effect=container_side)
    container = BuildContainer(Runtime("apptainer", "/usr/bin/apptainer", (1, 4, 5)), tmp_path / "c.sif", CONFIG,
                               None, build_dir, overlays=("/p/img.sqfs:ro", str(build_dir / "overlay")),
                               lower_removals=False)
    CondaMode(ENV_FILE).fill_tree(CONFIG, container)
    (request,) = solver.requests
    assert solver.containers == [container]  # the installer runs inside, over the layers
    assert request["target_prefix"] == "/TYKKY/env1" and request["keep_installed"] is True
    assert request["specs"] == ["python", "numpy"]
    # The view is read before the install (previous state) and again after it (records for the listing).
    assert [argv[-5:] for argv in fake.argvs if "export_view" in argv] == [
        ["export_view", "/TYKKY", str(build_dir / "view"), "env1", "base"]] * 2
    assert CondaState.load(upper / "TYKKY").specs == ("python", "numpy")
    assert (upper / "TYKKY" / "env1" / "bin" / "list-packages").is_file()
    assert not (tmp_path / "tree").exists()
